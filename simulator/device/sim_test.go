package device_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/devicetest"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)

func newGate(t *testing.T, cfg device.Config) (*gate.Gate, *clock.Fake, *devicetest.Recorder) {
	t.Helper()
	clk := clock.NewFake(epoch)
	rec := &devicetest.Recorder{}
	cfg.ID = "gate-01"
	g, err := gate.New(cfg, gate.Config{}, device.WithClock(clk), device.WithPublisher(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g, clk, rec
}

func TestTelemetryEveryPeriodAtQoS0(t *testing.T) {
	g, clk, rec := newGate(t, device.Config{Telemetry: 10 * time.Second})
	if err := devicetest.Advance(clk, 10*time.Second, g); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.On("/telemetry")); n != 1 {
		t.Fatalf("%d telemetry messages in the first period, want 1 (spread within the period)", n)
	}
	if err := devicetest.Advance(clk, 30*time.Second, g); err != nil {
		t.Fatal(err)
	}
	ms := rec.On("/telemetry")
	if len(ms) != 4 {
		t.Fatalf("%d telemetry messages in 40s at 10s, want 4", len(ms))
	}
	last := devicetest.Decode(ms[3].Payload)
	if ms[3].QoS != 0 || ms[3].Retain || last["temp_c"] == nil || last["supply_v"] == nil || last["uptime_s"].(float64) < 30 {
		t.Fatalf("telemetry %s qos=%d retain=%t", ms[3].Payload, ms[3].QoS, ms[3].Retain)
	}
}

func TestRebootAcksLosesStateAndBootsAgain(t *testing.T) {
	g, clk, rec := newGate(t, device.Config{Telemetry: -1})
	if _, err := g.Do(context.Background(), "hold_open", []byte(`{"corr":"h"}`)); err != nil {
		t.Fatal(err)
	}
	a, err := g.Do(context.Background(), "reboot", []byte(`{"corr":"r"}`))
	if err != nil || a.Result != device.OK || a.Corr != "r" {
		t.Fatalf("reboot ack %+v, %v", a, err)
	}
	if g.Snapshot().Powered {
		t.Fatal("rebooting device reports power")
	}
	rec.Reset()
	if err := devicetest.Advance(clk, time.Second, g); err != nil {
		t.Fatal(err)
	}
	snap := g.Snapshot()
	if !snap.Powered || snap.Boots != 2 || snap.State["hold_open"] != false || snap.State["position"] != gate.Closed {
		t.Fatalf("after the reboot: %+v", snap)
	}
	if st := rec.Last("/status"); st["online"] != true {
		t.Fatalf("status after reboot %v", st)
	}
}

func TestFaultWithDurationClearsItself(t *testing.T) {
	g, clk, _ := newGate(t, device.Config{Telemetry: -1})
	if err := g.Inject(fault.Fault{Kind: fault.PowerCut, Duration: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if s := g.Snapshot(); s.Powered || len(s.Faults) != 1 || s.Faults[0] != fault.PowerCut {
		t.Fatalf("during the cut: %+v", s)
	}
	if err := devicetest.Advance(clk, 5*time.Second, g); err != nil {
		t.Fatal(err)
	}
	if s := g.Snapshot(); !s.Powered || len(s.Faults) != 0 {
		t.Fatalf("after 5s: %+v", s)
	}
}

func TestInjectRejectsUnknownFaultsByName(t *testing.T) {
	g, _, _ := newGate(t, device.Config{Telemetry: -1})
	if err := g.Inject(fault.Fault{Kind: "lightning"}); err == nil {
		t.Fatal("unknown fault accepted")
	}
	if err := g.Clear("lightning"); err == nil {
		t.Fatal("clear of an unknown fault accepted")
	}
}

func TestEventsCarryIDSeqAndTimestamp(t *testing.T) {
	g, _, rec := newGate(t, device.Config{Telemetry: -1})
	if _, err := g.Do(context.Background(), "open", []byte(`{"corr":"1"}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := g.SetInput(gate.InLoop, true); err != nil {
			t.Fatal(err)
		}
		if err := g.SetInput(gate.InLoop, false); err != nil {
			t.Fatal(err)
		}
	}
	ps := rec.On("/evt/passage")
	if len(ps) != 2 {
		t.Fatalf("%d passages", len(ps))
	}
	a, b := devicetest.Decode(ps[0].Payload), devicetest.Decode(ps[1].Payload)
	if a["id"] != "gate-01" || a["ts"] != "2026-03-01T07:00:00.000Z" || b["seq"].(float64) != a["seq"].(float64)+1 {
		t.Fatalf("events %v then %v: want id, ts and consecutive seq", a, b)
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	for _, tc := range []struct {
		cfg  device.Config
		want string
	}{
		{device.Config{}, "device id is empty"},
		{device.Config{ID: "g", FailRate: 2}, "fail_rate 2 is outside 0..1"},
		{device.Config{ID: "g", Broker: "ws://h:1"}, `scheme "ws" is not supported`},
		{device.Config{ID: "g", Broker: "tcp://host"}, "want host:port"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestMachineDataDoesNotDependOnTelemetryTiming(t *testing.T) {
	fees := func(telemetry time.Duration, idle time.Duration) []any {
		clk := clock.NewFake(epoch)
		rec := &devicetest.Recorder{}
		g, err := gate.New(device.Config{ID: "gate-09", Seed: 3, Telemetry: telemetry}, gate.Config{Role: "exit"},
			device.WithClock(clk), device.WithPublisher(rec))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		defer g.Close(context.Background())
		if err := devicetest.Advance(clk, idle, g); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Do(context.Background(), "hold_open", []byte(`{"corr":"h"}`)); err != nil {
			t.Fatal(err)
		}
		var out []any
		for range 4 {
			_ = g.SetInput(gate.InLoop, true)
			_ = g.SetInput(gate.InLoop, false)
			out = append(out, rec.Last("/evt/charge")["amount_cents"])
		}
		return out
	}
	a, b := fees(-1, 0), fees(time.Second, time.Minute) // 60 telemetry draws before the first passage
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("fees %v without telemetry, %v after a minute of telemetry: the seed's data stream must not depend on it", a, b)
		}
	}
}
