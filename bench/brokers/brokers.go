// Package brokers starts the brokers that the benchmark compares, each as a fresh process on a
// free loopback port: the reference broker (`gatehouse broker`), Debian's mosquitto with a
// generated configuration, and mochi-mqtt embedded in a tiny main (bench/cmd/mochibroker).
//
// A Process reports what the benchmark reads from the outside: resident memory (VmRSS) and CPU
// time from /proc, so every broker is measured the same way whatever its language.
package brokers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind names a broker under test.
type Kind string

// The brokers the benchmark knows.
const (
	Gatehouse Kind = "gatehouse"
	Mosquitto Kind = "mosquitto"
	Mochi     Kind = "mochi"
)

// Spec says how to start one broker.
type Spec struct {
	Kind Kind
	// Bin is the executable: the gatehouse binary, /usr/sbin/mosquitto, or the mochibroker binary.
	Bin string
	// CPUs, when set, pins the broker with taskset (e.g. "0").
	CPUs string
	// Dir holds generated files (mosquitto.conf); a temporary directory when empty.
	Dir string
	// Inflight is the outgoing QoS 1/2 window per client where the broker lets it be set
	// (gatehouse --config max_inflight_messages, mosquitto max_inflight_messages); 0 leaves the
	// broker's default. mochi keeps its defaults.
	Inflight int
}

// Process is a running broker.
type Process struct {
	Kind Kind
	Addr string
	PID  int

	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{}
	err    error // set before done is closed
	dir    string
	tmp    bool
}

// readyTimeout bounds how long a broker may take to start listening.
const readyTimeout = 15 * time.Second

// Start starts a fresh broker process listening on a free port of 127.0.0.1 and returns once it
// accepts connections.
func Start(ctx context.Context, s Spec) (*Process, error) {
	dir, tmp := s.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "brokerbench-")
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", s.Kind, err)
		}
		dir, tmp = d, true
	}
	p := &Process{Kind: s.Kind, dir: dir, tmp: tmp, stderr: &tail{max: 4096}, done: make(chan struct{})}
	args, err := p.command(s)
	if err != nil {
		p.cleanup()
		return nil, err
	}
	if s.CPUs != "" {
		args = append([]string{"taskset", "-c", s.CPUs}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = p.stderr
	cmd.Dir = dir
	// Own process group, so that a Ctrl-C of the benchmark does not reach the broker before the
	// benchmark stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.cleanup()
		return nil, fmt.Errorf("broker %s: %w", s.Kind, err)
	}
	if err := cmd.Start(); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("broker %s: start %s: %w", s.Kind, args[0], err)
	}
	p.cmd, p.PID = cmd, cmd.Process.Pid
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx, lines); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// command returns the command line of the broker and writes its configuration when it needs one.
// The address of gatehouse and mochi comes from their "listening" line; mosquitto gets a port
// picked here.
func (p *Process) command(s Spec) ([]string, error) {
	switch s.Kind {
	case Gatehouse:
		args := []string{s.Bin, "broker", "--listen", "127.0.0.1:0", "--allow-anonymous", "--log-level", "error"}
		if s.Inflight > 0 {
			conf := filepath.Join(p.dir, "gatehouse.yaml")
			body := fmt.Sprintf("max_inflight_messages: %d\n", s.Inflight)
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				return nil, fmt.Errorf("broker %s: config: %w", s.Kind, err)
			}
			args = append(args, "--config", conf)
		}
		return args, nil
	case Mochi:
		return []string{s.Bin, "--listen", "127.0.0.1:0"}, nil
	case Mosquitto:
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", s.Kind, err)
		}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(p.dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(MosquittoConfig(port, s.Inflight)), 0o600); err != nil {
			return nil, fmt.Errorf("broker %s: config: %w", s.Kind, err)
		}
		return []string{s.Bin, "-c", conf}, nil
	}
	return nil, fmt.Errorf("broker %q: unknown kind (want gatehouse, mosquitto or mochi)", s.Kind)
}

// MosquittoConfig is the configuration the benchmark gives mosquitto: one loopback listener,
// anonymous clients, no persistence, no logging, and no bound on queued QoS 1/2 messages (as the
// reference broker: a QoS 1/2 message is never dropped for a full queue), so that mosquitto is
// measured without losing messages. inflight > 0 sets max_inflight_messages.
func MosquittoConfig(port, inflight int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	b.WriteString("allow_anonymous true\npersistence false\nlog_type none\nlog_dest none\n")
	b.WriteString("max_queued_messages 0\nmax_connections -1\n")
	if inflight > 0 {
		fmt.Fprintf(&b, "max_inflight_messages %d\n", inflight)
	}
	return b.String()
}

func (p *Process) waitReady(ctx context.Context, lines <-chan string) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	if p.Addr == "" {
		// gatehouse prints "listening <name> <kind> <address>", mochibroker "listening <address>".
		for p.Addr == "" {
			select {
			case l := <-lines:
				f := strings.Fields(l)
				if len(f) >= 2 && f[0] == "listening" {
					p.Addr = f[len(f)-1]
				}
			case <-p.done:
				return fmt.Errorf("broker %s exited before listening: %v: %s", p.Kind, p.err, p.stderr)
			case <-deadline.C:
				return fmt.Errorf("broker %s: no listening line within %s: %s", p.Kind, readyTimeout, p.stderr)
			case <-ctx.Done():
				return fmt.Errorf("broker %s: %w", p.Kind, ctx.Err())
			}
		}
	}
	// Every broker: wait until the port accepts a connection.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-tick.C:
		case <-p.done:
			return fmt.Errorf("broker %s exited before accepting connections: %v: %s", p.Kind, p.err, p.stderr)
		case <-deadline.C:
			return fmt.Errorf("broker %s: %s not accepting connections within %s: %w", p.Kind, p.Addr, readyTimeout, err)
		case <-ctx.Done():
			return fmt.Errorf("broker %s: %w", p.Kind, ctx.Err())
		}
	}
}

// stopTimeout is how long a broker has to exit after SIGTERM before it is killed.
const stopTimeout = 30 * time.Second

// Stop terminates the broker (SIGTERM, then SIGKILL after stopTimeout) and removes its files.
// A broker that had already died is reported with its standard error.
func (p *Process) Stop() error {
	defer p.cleanup()
	select {
	case <-p.done:
		return fmt.Errorf("broker %s exited during the run: %v: %s", p.Kind, p.err, p.stderr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("broker %s: still running %s after SIGTERM; killed", p.Kind, stopTimeout)
	}
}

func (p *Process) cleanup() {
	if p.tmp {
		_ = os.RemoveAll(p.dir)
	}
}

// RSS returns the broker's resident set size in bytes (VmRSS of /proc/PID/status).
func (p *Process) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return 0, fmt.Errorf("broker %s: %w", p.Kind, err)
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q: want \"<n> kB\"", strings.TrimSpace(string(line)))
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS value: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS line in /proc status")
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
const clockTicks = 100

// CPUTime returns the user and system CPU time the broker has used (utime and stime of
// /proc/PID/stat, every thread included).
func (p *Process) CPUTime() (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, 0, fmt.Errorf("broker %s: %w", p.Kind, err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(stat []byte) (user, sys time.Duration, err error) {
	// The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("/proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15): indexes 11 and 12 here.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc stat utime: %w", err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc stat stime: %w", err)
	}
	tick := time.Second / clockTicks
	return time.Duration(ut) * tick, time.Duration(st) * tick, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it (a broker's standard error, for error messages).
type tail struct {
	max int
	mu  sync.Mutex // protects b
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output on standard error)"
	}
	return s
}
