package device_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

// closedPort returns a loopback address nobody listens on: connections are refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// backoffs records the delays a device waits between failed connection attempts, read from the
// fake clock's pending timer after each failure.
func backoffs(t *testing.T, seed uint64, addr string, n int) []time.Duration {
	t.Helper()
	clk := clock.NewFake(epoch)
	g, err := gate.New(device.Config{ID: "gate-01", Seed: seed, Broker: "tcp://" + addr, Telemetry: -1,
		ConnectTimeout: time.Second, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second},
		gate.Config{}, device.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []time.Duration
	for range n {
		if err := clk.WaitPending(ctx, 1); err != nil {
			t.Fatalf("no reconnection scheduled after %d failures: %v", len(out), err)
		}
		next, _ := clk.Next()
		out = append(out, next.Sub(clk.Now()))
		clk.Set(next)
	}
	if f := g.Stats().ConnectFailures; f < uint64(n) {
		t.Fatalf("%d connect failures counted, want at least %d", f, n)
	}
	return out
}

func TestReconnectBackoffIsExponentialJitteredAndSeeded(t *testing.T) {
	addr := closedPort(t)
	a := backoffs(t, 7, addr, 7)
	for k, d := range a {
		ceiling := min(100*time.Millisecond<<k, time.Second)
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("backoff %d = %s, want within [%s, %s] (equal jitter of min(100ms*2^k, 1s)); all: %v", k, d, ceiling/2, ceiling, a)
		}
	}
	b := backoffs(t, 7, addr, 7)
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("same seed, different backoffs: %v then %v", a, b)
		}
	}
	c := backoffs(t, 8, addr, 7)
	same := true
	for k := range a {
		same = same && a[k] == c[k]
	}
	if same {
		t.Fatalf("seeds 7 and 8 gave the same jitter %v", a)
	}
}
