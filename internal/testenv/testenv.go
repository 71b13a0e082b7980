// Package testenv finds the external tools and services that tests need (Debian's mosquitto,
// Chromium, a Docker daemon) and decides what happens when one is missing: in CI (CI=true) the test
// fails with the command that installs it; elsewhere it is skipped with the same instruction.
// A missing tool is never a silent skip.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the tests run in a CI pipeline, where a missing tool is a failure.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Missing reports a missing requirement: fatal in CI, a skip elsewhere, both naming what to install.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s is required by this test; install it with: %s", what, install)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Tool returns the path of an executable found on PATH or at one of the usual Debian locations,
// reporting it as missing with the install command otherwise.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := LookTool(name); err == nil {
		return p
	}
	Missing(t, name, install)
	return ""
}

// LookTool finds an executable on PATH or in /usr/sbin and /usr/bin (Debian installs mosquitto in
// /usr/sbin, which is not on every user's PATH).
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/sbin, /usr/bin", name)
}

// MosquittoInstall is the command that installs Debian's mosquitto broker and its clients.
const MosquittoInstall = "apt-get install -y mosquitto mosquitto-clients"

// Mosquitto returns the path of Debian's mosquitto broker binary.
func Mosquitto(t testing.TB) string { return Tool(t, "mosquitto", MosquittoInstall) }

// MosquittoPub returns the path of mosquitto_pub.
func MosquittoPub(t testing.TB) string { return Tool(t, "mosquitto_pub", MosquittoInstall) }

// MosquittoSub returns the path of mosquitto_sub.
func MosquittoSub(t testing.TB) string { return Tool(t, "mosquitto_sub", MosquittoInstall) }

// Chromium returns the path of a headless-capable Chromium.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := LookTool(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium", "apt-get install -y chromium")
	return ""
}

// Docker checks that a Docker daemon answers and sets the variables testcontainers-go needs on a
// machine without a registry or a reachable gateway.
func Docker(t testing.TB) {
	t.Helper()
	SetTestcontainersEnv()
	p, err := LookTool("docker")
	if err != nil {
		Missing(t, "docker (the Docker CLI and a running daemon)", "apt-get install -y docker.io && service docker start")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, p, "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		Missing(t, "a running Docker daemon ("+strings.TrimSpace(string(out))+")", "apt-get install -y docker.io && service docker start")
	}
}

// SetTestcontainersEnv sets TESTCONTAINERS_RYUK_DISABLED and TESTCONTAINERS_HOST_OVERRIDE unless the
// caller already chose values: there is no registry to pull the reaper image from, and containers
// are reached on loopback.
func SetTestcontainersEnv() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer listening on
// 127.0.0.1:0 directly; this is for programs that must be told a port (mosquitto).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MosquittoBroker is Debian's mosquitto running on a loopback port for the duration of a test.
type MosquittoBroker struct {
	Addr string // host:port
	Port int
	Conf string // path of the configuration file it runs with
	cmd  *exec.Cmd
	log  *lockedWriter
}

// URL returns the broker address as tcp://127.0.0.1:PORT (the form paho expects).
func (m *MosquittoBroker) URL() string { return "tcp://" + m.Addr }

// Log returns what mosquitto printed so far (useful in failure messages).
func (m *MosquittoBroker) Log() string { return m.log.String() }

// StartMosquitto starts mosquitto on a free loopback port with the given extra configuration lines
// (e.g. "allow_anonymous true", "password_file /path") and stops it when the test ends. It waits
// until the port accepts connections, with a deadline.
func StartMosquitto(t testing.TB, extraConf ...string) *MosquittoBroker {
	t.Helper()
	bin := Mosquitto(t)
	port := FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	lines := []string{"listener " + strconv.Itoa(port) + " 127.0.0.1"}
	if !hasDirective(extraConf, "allow_anonymous") {
		lines = append(lines, "allow_anonymous true")
	}
	// Run as root, mosquitto drops to the "mosquitto" user, which cannot read files in a test's
	// temporary directory (password and ACL files); keep the privileges it was started with.
	if os.Geteuid() == 0 && !hasDirective(extraConf, "user") {
		lines = append(lines, "user root")
	}
	lines = append(lines, extraConf...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: write mosquitto config: %v", err)
	}
	m := &MosquittoBroker{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Conf: conf, log: &lockedWriter{b: &strings.Builder{}}}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("testenv: start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("testenv: mosquitto exited before listening (%v): %s", err, m.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: mosquitto did not listen on %s within 10s: %s", m.Addr, m.Log())
		}
	}
}

// hasDirective reports whether a mosquitto configuration line sets the named option.
func hasDirective(lines []string, name string) bool {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}
