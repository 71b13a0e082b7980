package main

import (
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestParseCase(t *testing.T) {
	good := map[string]benchCase{
		"fan-in q0":  {kind: "fan-in", qos: 0},
		"fan-out q1": {kind: "fan-out", qos: 1},
		"latency q2": {kind: "latency", qos: packet.QoS(2)},
		"idle":       {kind: "idle"},
	}
	for in, want := range good {
		got, err := parseCase(in)
		if err != nil || got != want {
			t.Errorf("parseCase(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"fan-in q3", "fan-in", "fanin q1", "latency qx", "idle q0", ""} {
		if _, err := parseCase(in); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("parseCase(%q) = %v, want an error saying what is accepted", in, err)
		}
	}
}

// Consecutive runs connect from different loopback addresses, so that sockets of the previous run
// in TIME_WAIT never exhaust the ephemeral ports of the next.
func TestSourcesChangeFromRunToRun(t *testing.T) {
	a, b := sources(1), sources(2)
	seen := map[string]bool{}
	for _, ip := range a {
		if !ip.IsLoopback() {
			t.Fatalf("source %s is not a loopback address", ip)
		}
		seen[ip.String()] = true
	}
	for _, ip := range b {
		if seen[ip.String()] {
			t.Fatalf("runs 1 and 2 share source address %s", ip)
		}
	}
}
