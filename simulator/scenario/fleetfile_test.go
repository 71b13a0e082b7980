package scenario

import (
	"strings"
	"testing"
	"time"
)

func TestParseFleet(t *testing.T) {
	spec, err := ParseFleet("f.yaml", []byte(`broker: mqtt://127.0.0.1:1883
seed: 9
connect_rate: 50/s
groups:
  - {kind: gate, count: 2, id: "gate-{n:02}", role: exit, keepalive: 2s, hold_time: 1m}
  - {kind: turnstile, cards: [A1, B2]}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := spec.Groups[0]
	if spec.Broker != "tcp://127.0.0.1:1883" || spec.Seed != 9 || spec.ConnectRate != 50 || g.Count != 2 || g.Keepalive != 2*time.Second ||
		g.HoldTime != time.Minute || g.Role != "exit" || spec.Groups[1].Count != 1 || len(spec.Groups[1].Cards) != 2 {
		t.Fatalf("decoded %+v", spec)
	}
	for _, c := range []struct{ src, want string }{
		{"groups:\n  - kind: gate\n    colour: red\n", "f.yaml:3:5: unknown key \"colour\" in fleet group"},
		{"groups:\n  - {kind: elevator}\n", "f.yaml:2:12: fleet group: kind \"elevator\" is not a device kind"},
		{"groups:\n  - {kind: gate, keepalive: soon}\n", "f.yaml:2:29: keepalive: \"soon\" is not a duration"},
		{"broker: http://x:1\ngroups: [{kind: gate}]\n", "f.yaml:1:9: broker: \"http://x:1\": want mqtt://host:port"},
		{"seed: 1\n", "f.yaml:1:1: fleet file: missing key \"groups\""},
		{"groups:\n  - {kind: gate, count: 2, id: g}\n", "f.yaml:2:32: id: \"g\" names 2 devices the same"},
	} {
		_, err := ParseFleet("f.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFleet(%q) = %v, want %q", c.src, err, c.want)
		}
	}
}
