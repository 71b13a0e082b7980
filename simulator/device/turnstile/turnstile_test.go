package turnstile_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/devicetest"
	"github.com/gatehouse-iot/gatehouse/simulator/device/turnstile"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rig struct {
	t   *testing.T
	d   *device.Sim
	clk *clock.Fake
	rec *devicetest.Recorder
}

func newRig(t *testing.T, tc turnstile.Config) *rig {
	r := &rig{t: t, clk: clock.NewFake(time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)), rec: &devicetest.Recorder{}}
	d, err := turnstile.New(device.Config{ID: "ts-1", Seed: 5, Telemetry: -1}, tc, device.WithClock(r.clk), device.WithPublisher(r.rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	r.d = d
	return r
}

func (r *rig) do(name, payload string) device.Ack {
	r.t.Helper()
	a, err := r.d.Do(context.Background(), name, []byte(payload))
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func (r *rig) stim(s device.Stimulus) {
	r.t.Helper()
	if err := r.d.Stimulate(s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	if err := devicetest.Advance(r.clk, d, r.d); err != nil {
		r.t.Fatal(err)
	}
}

func TestCardAllowPassPassageCountsAndRelocks(t *testing.T) {
	r := newRig(t, turnstile.Config{Cards: []string{"C1"}})
	r.stim(device.Stimulus{Kind: device.StimCard})
	if c := r.rec.Last("/evt/card"); c["card"] != "C1" || c["id"] != "ts-1" || c["seq"] != float64(1) {
		t.Fatalf("card event %v", c)
	}
	if a := r.do("allow_pass", `{"corr":"a1"}`); a.Result != device.OK {
		t.Fatalf("allow_pass %+v", a)
	}
	if st := r.rec.Last("/state"); st["arm"] != "allowed" {
		t.Fatalf("state after allow_pass %v", st)
	}
	r.stim(device.Stimulus{Kind: device.StimPassage, Direction: "out"})
	p := r.rec.Last("/evt/passage")
	if p["corr"] != "a1" || p["direction"] != "out" {
		t.Fatalf("passage %v", p)
	}
	st := r.rec.Last("/state")
	if st["arm"] != "locked" || st["out"] != float64(1) || st["in"] != float64(0) {
		t.Fatalf("state after passage %v", st)
	}
	r.stim(device.Stimulus{Kind: device.StimPassage})
	if tp := r.rec.Last("/evt/tamper"); tp["reason"] != "tailgating" {
		t.Fatalf("a second passage on one allow_pass gave %v, want a tailgating alarm", tp)
	}
}

func TestAllowPassTimesOut(t *testing.T) {
	r := newRig(t, turnstile.Config{PassWindow: 3 * time.Second})
	r.do("allow_pass", `{"corr":"a2"}`)
	r.advance(2999 * time.Millisecond)
	if len(r.rec.On("/evt/timeout")) != 0 {
		t.Fatal("timeout before the window ended")
	}
	r.advance(time.Millisecond)
	to := r.rec.Last("/evt/timeout")
	if to["corr"] != "a2" || to["window_ms"] != float64(3000) {
		t.Fatalf("timeout event %v", to)
	}
	if st := r.rec.Last("/state"); st["arm"] != "locked" {
		t.Fatalf("state after the timeout %v", st)
	}
}

func TestFireModeLockdownAndFaults(t *testing.T) {
	r := newRig(t, turnstile.Config{})
	r.do("free", `{"corr":"f"}`)
	for range 3 {
		r.stim(device.Stimulus{Kind: device.StimPassage})
	}
	if st := r.rec.Last("/state"); st["mode"] != "free" || st["in"] != float64(3) || st["tamper"] != float64(0) {
		t.Fatalf("fire mode state %v", st)
	}
	r.do("lock", `{"corr":"l"}`)
	if a := r.do("allow_pass", `{"corr":"x"}`); a.Result != device.Rejected {
		t.Fatalf("allow_pass in lockdown: %+v", a)
	}
	r.do("unlock", `{"corr":"u"}`)
	if err := r.d.Inject(fault.Fault{Kind: fault.Jam}); err != nil {
		t.Fatal(err)
	}
	if a := r.do("allow_pass", `{"corr":"j"}`); a.Result != device.Failed {
		t.Fatalf("allow_pass while jammed: %+v", a)
	}
	if st := r.rec.Last("/state"); st["mode"] != "jammed" {
		t.Fatalf("state while jammed %v", st)
	}
	if err := r.d.Clear(fault.Jam); err != nil {
		t.Fatal(err)
	}
	if a := r.do("allow_pass", `{"corr":"k","direction":"sideways"}`); a.Result != device.Rejected {
		t.Fatalf("allow_pass with a bad direction: %+v", a)
	}
	if a := r.do("open", `{"corr":"o"}`); a.Result != device.Rejected {
		t.Fatalf("open on a turnstile: %+v", a)
	}
	if err := r.d.Stimulate(device.Stimulus{Kind: device.StimMotion}); err == nil {
		t.Fatal("motion accepted by a turnstile")
	}
}

func TestSameSeedSameCards(t *testing.T) {
	cards := func() []any {
		r := newRig(t, turnstile.Config{})
		var out []any
		for range 5 {
			r.stim(device.Stimulus{Kind: device.StimCard})
			out = append(out, r.rec.Last("/evt/card")["card"])
		}
		return out
	}
	a, b := cards(), cards()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed gave cards %v then %v", a, b)
		}
	}
}
