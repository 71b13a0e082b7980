package hil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
)

// MosquittoInstall is the command that installs the broker a simulated bench runs against.
const MosquittoInstall = "apt-get install -y mosquitto"

// runningBroker is a broker started for a run: the reference broker in process, or Debian's
// mosquitto as a child process.
type runningBroker struct {
	url  string
	ref  *broker.Broker
	cmd  *exec.Cmd
	dir  string
	done chan error

	mu  sync.Mutex // protects out
	out strings.Builder
}

func (b *runningBroker) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *runningBroker) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// startReference starts Gatehouse's reference broker in process on a free loopback port, for a
// bench whose file says broker: embedded.
func startReference(ctx context.Context) (*runningBroker, error) {
	b, err := broker.New(broker.Config{
		AllowAnonymous: true,
		Listeners:      []broker.Listener{{Name: "tcp", Kind: broker.TCP, Addr: "127.0.0.1:0"}},
	})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker: start the reference broker: %w", err)
	}
	return &runningBroker{url: "tcp://" + b.Addr("tcp").String(), ref: b}, nil
}

// startMosquitto starts Debian's mosquitto on a free loopback port, for a bench whose file says
// broker: mosquitto (the independent peer broker). It returns once the port accepts connections.
func startMosquitto(ctx context.Context) (*runningBroker, error) {
	bin, err := lookMosquitto()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("broker: find a free loopback port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "gatehouse-hil-broker-")
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+strconv.Itoa(port)+" 127.0.0.1\nallow_anonymous true\npersistence false\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("broker: write config: %w", err)
	}
	b := &runningBroker{url: "tcp://127.0.0.1:" + strconv.Itoa(port), dir: dir, done: make(chan error, 1)}
	b.cmd = exec.Command(bin, "-c", conf)
	b.cmd.Stdout, b.cmd.Stderr = b, b
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("broker: start %s: %w", bin, err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return b, nil
		}
		select {
		case err := <-b.done:
			b.done <- err
			b.stop()
			return nil, fmt.Errorf("broker: mosquitto exited before listening (%v): %s", err, b.log())
		case <-deadline.C:
			b.stop()
			return nil, fmt.Errorf("broker: mosquitto did not listen on %s within 10s: %s", addr, b.log())
		case <-ctx.Done():
			b.stop()
			return nil, fmt.Errorf("broker: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *runningBroker) stop() {
	if b.ref != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.ref.Shutdown(ctx)
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	os.RemoveAll(b.dir)
}

func lookMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("broker: the bench says broker: mosquitto and mosquitto was not found on PATH or in /usr/sbin: install it with: %s: %w", MosquittoInstall, ErrMissingTool)
}

// ErrMissingTool is wrapped when a program the run needs is not installed.
var ErrMissingTool = errors.New("required tool missing")
