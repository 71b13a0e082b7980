package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// startBrokerCmd runs `gatehouse broker args...` in process until the test ends and returns the
// address of its first listener.
func startBrokerCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"broker"}, args...))
	cmd.SetOut(pw)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gatehouse broker: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("gatehouse broker did not stop within 15s of cancel")
		}
	})
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("gatehouse broker exited early: %v", <-done)
		}
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "listening" {
			t.Fatalf("first line %q, want \"listening NAME KIND ADDR\"", l)
		}
		go func() {
			for range lines {
			}
		}()
		return f[3]
	case <-time.After(10 * time.Second):
		t.Fatal("gatehouse broker printed no listener within 10s")
	}
	return ""
}

func TestBrokerCommandServesMQTT(t *testing.T) {
	addr := startBrokerCmd(t, "--listen", "127.0.0.1:0", "--allow-anonymous", "--log-level", "warn")
	got := make(chan string, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("cli-test").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Subscribe("cli/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("cli/x", 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}

func TestBrokerCommandAppliesFaultFlag(t *testing.T) {
	addr := startBrokerCmd(t, "--listen", "127.0.0.1:0", "--allow-anonymous", "--fault", "no-retain", "--log-level", "error")
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("f").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	c.Publish("r", 1, true, "kept?").WaitTimeout(5 * time.Second)
	got := make(chan string, 1)
	c.Subscribe("r", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }).WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		t.Fatalf("retained message %q delivered with --fault no-retain", m)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestBrokerCommandRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("allow_anonymous: true\nmax_conections: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--config", bad}, "bad.yaml:2:1: unknown key"},
		{[]string{"--fault", "drop-everything"}, `unknown fault mode "drop-everything"`},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--tls-listen", "127.0.0.1:0"}, "--tls-listen"},
		{[]string{"--password-file", filepath.Join(dir, "missing")}, "--password-file"},
		{[]string{"--data-dir", filepath.Join(bad, "data")}, "--data-dir: data directory " + filepath.Join(bad, "data")},
	}
	for _, tc := range cases {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"broker", "--listen", "127.0.0.1:0"}, tc.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("gatehouse broker %v: error %v, want it to say %q", tc.args, err, tc.want)
		}
	}
}

func TestBrokerHelpDocumentsEveryFlag(t *testing.T) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"broker", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--config", "--listen", "--ws-listen", "--tls-listen", "--tls-cert", "--tls-key",
		"--tls-client-ca", "--allow-anonymous", "--password-file", "--acl-file", "--metrics-listen", "--fault",
		"--log-level", "--data-dir", "--max-connections", "--max-packet-size", "drop-puback", "slow-connack"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("broker --help does not document %s", flag)
		}
	}
}
