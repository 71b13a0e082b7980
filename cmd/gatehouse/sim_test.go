package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFleetReportsFileLineColumn(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, at, word string
	}{
		{"unknown field", "seed: 1\ngroups:\n  - kind: gate\n    count: 1\n    colour: red\n", ":5:5:", "colour"},
		{"bad duration", "groups:\n  - kind: gate\n    count: 1\n    keepalive: soon\n", ":4:", "soon"},
		{"unknown kind", "groups:\n  - kind: gate\n    count: 1\n  - kind: elevator\n    count: 2\n", ":4:", "elevator"},
		{"duplicate ids", "groups:\n  - {kind: gate, count: 2, id: g}\n", ":2:", `"g"`},
		{"bad broker", "broker: http://x:1\ngroups:\n  - {kind: gate, count: 1}\n", ":1:9:", "http://x:1"},
		{"no groups", "seed: 1\n", ":1:", "groups"},
		{"syntax", "groups: [\n", ":", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.yaml)
			_, err := loadFleet(p)
			if err == nil {
				t.Fatal("loadFleet accepted a bad file")
			}
			if !strings.HasPrefix(err.Error(), p+tc.at) || !strings.Contains(err.Error(), tc.word) {
				t.Fatalf("error %q, want it to start with %s%s and name %q", err, p, tc.at, tc.word)
			}
		})
	}
}

func TestLoadFleetReadsDurationsAndLists(t *testing.T) {
	p := writeFile(t, `broker: tcp://127.0.0.1:1
seed: 9
connect_rate: 50/s
groups:
  - {kind: gate, count: 2, id: "gate-{n:02}", role: exit, keepalive: 2s, hold_time: 1m}
  - {kind: turnstile, count: 1, cards: [A1, B2]}
`)
	s, err := loadFleet(p)
	if err != nil {
		t.Fatal(err)
	}
	g := s.Groups[0]
	if s.Seed != 9 || s.ConnectRate != 50 || g.Keepalive != 2*time.Second || g.HoldTime != time.Minute || g.Role != "exit" ||
		len(s.Groups[1].Cards) != 2 {
		t.Fatalf("decoded %+v", s)
	}
}

func TestParseShard(t *testing.T) {
	if i, n, err := parseShard("2/4"); err != nil || i != 2 || n != 4 {
		t.Fatalf("parseShard(2/4) = %d, %d, %v", i, n, err)
	}
	for _, bad := range []string{"4/4", "-1/2", "1", "a/b", "0/0"} {
		if _, _, err := parseShard(bad); err == nil {
			t.Errorf("parseShard(%q) accepted", bad)
		}
	}
}

func TestSimRunsAFleetAndStopsCleanlyOnInterrupt(t *testing.T) {
	b := brokertest.Start(t)
	p := writeFile(t, "seed: 3\ngroups:\n  - {kind: gate, count: 2, telemetry: -1s}\n  - {kind: camera, count: 2, telemetry: -1s}\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	// Shard 1/2: every second device, i.e. gate-002 and camera-002.
	rec := filepath.Join(t.TempDir(), "record.json")
	cmd.SetArgs([]string{"sim", "--fleet", p, "--broker", b.URL(), "--shard", "1/2", "--stats", "0", "--record", rec})
	cmd.SetOut(pw)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		_ = pw.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "fleet online: 2 devices (shard 1/2, seed 3)") {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sim printed nothing within 20s")
	}
	for _, topic := range []string{"acs/site-1/gate/gate-002/status", "acs/site-1/camera/camera-002/status"} {
		if _, err := b.Trace().Wait(5*time.Second, brokertest.All(brokertest.In(packet.TypePublish), brokertest.Topic(topic))); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
	}
	if n := b.Trace().Count(brokertest.All(brokertest.In(packet.TypePublish), brokertest.Topic("acs/site-1/gate/gate-001/status"))); n != 0 {
		t.Fatal("shard 1/2 ran gate-001, which belongs to shard 0/2")
	}
	cancel() // what SIGINT does through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sim returned %v after an interrupt, want a clean exit", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sim did not stop within 20s of the interrupt")
	}
	from := 0
	for i := range 2 {
		e, err := b.Trace().WaitAfter(from, 5*time.Second, brokertest.In(packet.TypeDisconnect))
		if err != nil {
			t.Fatalf("DISCONNECT %d of 2 (one per device): %v", i+1, err)
		}
		from = e.Seq + 1
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if len(rest) == 0 || rest[len(rest)-1] != "fleet stopped" {
		t.Fatalf("output after the interrupt: %q", rest)
	}
	var r struct {
		Shard, Shards int
		Devices       []string
		Counters      struct{ Devices, Connects int }
	}
	raw, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Shard != 1 || r.Shards != 2 || len(r.Devices) != 2 || r.Devices[0] != "gate-002" || r.Counters.Connects != 2 {
		t.Fatalf("record %s", raw)
	}
}

func TestSimWithoutBrokerFails(t *testing.T) {
	if code := run([]string{"sim", "--stats", "0"}); code != 2 {
		t.Fatalf("exit code %d without a broker, want 2", code)
	}
}
