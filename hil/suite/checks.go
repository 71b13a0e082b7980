package suite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/internal/report"
)

// Check is one HIL check. The Ginkgo suite runs each as a spec; tests run them directly against
// deliberately faulty simulated benches to see each one fail.
type Check struct {
	Name    string
	Relays  []string // relays the check needs on the bench
	Inputs  []string // inputs the check needs on the bench
	Run     func(ctx context.Context, s *hil.Session) Result
	Timeout time.Duration
}

// Result is what a check saw: measurements judged against the bench's limits, the evidence, and
// Err when what it waited for never happened.
type Result struct {
	Measurements []report.Measurement
	Evidence     []report.Evidence
	Err          error
}

// Failed reports whether the check did not hold.
func (r Result) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, m := range r.Measurements {
		if m.Outcome.Failed() {
			return true
		}
	}
	return false
}

// Problem describes why the check failed.
func (r Result) Problem() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	for _, m := range r.Measurements {
		if m.Outcome.Failed() {
			return fmt.Sprintf("%s = %.1f %s, outside its limit of %s", m.Name, m.Value, m.Unit, limitText(m))
		}
	}
	return ""
}

func limitText(m report.Measurement) string {
	switch {
	case m.Low != nil && m.High != nil:
		return fmt.Sprintf("%g..%g %s", *m.Low, *m.High, m.Unit)
	case m.High != nil:
		return fmt.Sprintf("at most %g %s", *m.High, m.Unit)
	case m.Low != nil:
		return fmt.Sprintf("at least %g %s", *m.Low, m.Unit)
	}
	return "none"
}

// Checks lists the HIL checks in the order a bench runs them.
var Checks = []Check{
	{Name: "an open command over MQTT releases the lock within its limit", Inputs: []string{"lock"}, Run: commandToLock, Timeout: 30 * time.Second},
	{Name: "a pulse on the open-button relay makes the controller publish its new state", Relays: []string{"open_button"}, Inputs: []string{"motor_open"}, Run: openButton, Timeout: 30 * time.Second},
	{Name: "cutting power through the power relay makes the broker publish the will within its limit", Relays: []string{"power"}, Run: powerCutWill, Timeout: 45 * time.Second},
	{Name: "the photo-eye reverses a closing gate", Relays: []string{"photo_eye"}, Inputs: []string{"motor_open", "motor_close"}, Run: photoEyeReverses, Timeout: 45 * time.Second},
}

var corrSeq atomic.Uint64

func nextCorr(what string) string {
	return "hil-" + what + "-" + strconv.FormatUint(corrSeq.Add(1), 10)
}

// driveTo commands the gate to a rest position (open or closed) and waits for the state.
func driveTo(ctx context.Context, s *hil.Session, position string) error {
	if m, ok := s.Observer.Latest("state"); ok && hil.FieldIs("position", position)(m) {
		return nil
	}
	cmd := "close"
	if position == "open" {
		cmd = "open"
	}
	t0 := time.Now()
	if err := s.Observer.Publish(ctx, cmd, nextCorr(cmd)); err != nil {
		return err
	}
	if _, err := s.Observer.WaitFor(ctx, t0, "state", hil.FieldIs("position", position)); err != nil {
		return fmt.Errorf("bring the gate to %s: %w", position, err)
	}
	return nil
}

// within bounds a wait to a limit plus a margin, so that a check that cannot pass fails soon
// after its limit instead of at the spec timeout.
func within(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, limit+2*time.Second)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func evidence(s *hil.Session, since time.Time, edges ...*rig.Input) []report.Evidence {
	var msgs []string
	for _, m := range s.Observer.Since(since) {
		msgs = append(msgs, m.String())
	}
	ev := []report.Evidence{report.Text("MQTT messages from the controller", msgs...)}
	var lines []string
	for _, in := range edges {
		for _, e := range in.Edges() {
			if !e.At.Before(since) {
				lines = append(lines, fmt.Sprintf("%s %s active=%v level=%v", e.At.Format("15:04:05.000000"), e.Input, e.Active, e.Level))
			}
		}
	}
	if len(lines) > 0 {
		ev = append(ev, report.Text("sense input edges", lines...))
	}
	return ev
}

func commandToLock(ctx context.Context, s *hil.Session) (res Result) {
	lim := s.Bench.Limits.CommandToLock
	lock, _ := s.Rig.Input("lock")
	if err := driveTo(ctx, s, "closed"); err != nil {
		return Result{Err: err}
	}
	corr := nextCorr("open")
	t0 := time.Now()
	defer func() { res.Evidence = evidence(s, t0, lock) }()
	if err := s.Observer.Publish(ctx, "open", corr); err != nil {
		return Result{Err: err}
	}
	wctx, cancel := within(ctx, lim)
	defer cancel()
	edge, err := lock.WaitEdge(wctx, t0, true)
	if err != nil {
		return Result{Err: fmt.Errorf("open command published, lock output never released: %w", err)}
	}
	res.Measurements = append(res.Measurements, report.MeasureDuration("command_to_lock", edge.At.Sub(t0), report.AtMost(ms(lim))))
	if _, err := s.Observer.WaitFor(wctx, t0, "cmd/open/ack", hil.FieldIs("corr", corr)); err != nil {
		res.Err = fmt.Errorf("open command not acknowledged: %w", err)
		return res
	}
	if err := driveTo(ctx, s, "closed"); err != nil {
		res.Err = err
	}
	return res
}

func openButton(ctx context.Context, s *hil.Session) (res Result) {
	lim := s.Bench.Limits.ButtonToEvent
	button, _ := s.Rig.Relay("open_button")
	motor, _ := s.Rig.Input("motor_open")
	if err := driveTo(ctx, s, "closed"); err != nil {
		return Result{Err: err}
	}
	t0 := time.Now()
	defer func() { res.Evidence = evidence(s, t0, motor) }()
	if err := button.Pulse(ctx, s.Bench.Limits.Pulse); err != nil {
		return Result{Err: fmt.Errorf("pulse open_button: %w", err)}
	}
	wctx, cancel := within(ctx, lim)
	defer cancel()
	st, err := s.Observer.WaitFor(wctx, t0, "state", hil.FieldIs("position", "opening"))
	if err != nil {
		return Result{Err: fmt.Errorf("open button pulsed, no state \"opening\" published: %w", err)}
	}
	res.Measurements = append(res.Measurements, report.MeasureDuration("button_to_state", st.At.Sub(t0), report.AtMost(ms(lim))))
	if _, err := motor.WaitEdge(wctx, t0, true); err != nil {
		res.Err = fmt.Errorf("open button pulsed, motor_open output never ran: %w", err)
		return res
	}
	if _, err := s.Observer.WaitFor(ctx, t0, "state", hil.FieldIs("position", "open")); err != nil {
		res.Err = fmt.Errorf("gate never reached open: %w", err)
		return res
	}
	if err := driveTo(ctx, s, "closed"); err != nil {
		res.Err = err
	}
	return res
}

func powerCutWill(ctx context.Context, s *hil.Session) (res Result) {
	keepalive := s.Bench.Controller.Keepalive
	lim := time.Duration(s.Bench.Limits.WillFactor * float64(keepalive))
	power, _ := s.Rig.Relay("power")
	if _, err := s.Observer.WaitFor(ctx, time.Time{}, "status", hil.FieldIs("online", true)); err != nil {
		return Result{Err: fmt.Errorf("controller not online before the power cut: %w", err)}
	}
	t0 := time.Now()
	defer func() { res.Evidence = evidence(s, t0) }()
	if err := power.Set(true); err != nil {
		return Result{Err: fmt.Errorf("cut power: %w", err)}
	}
	wctx, cancel := within(ctx, lim)
	will, err := s.Observer.WaitFor(wctx, t0, "status", hil.FieldIs("online", false))
	cancel()
	// Taken before power returns: the online message is stamped when it arrives, which on a
	// loaded machine may be before a time taken after Set returns.
	t1 := time.Now()
	restoreErr := power.Set(false)
	if err != nil {
		return Result{Err: fmt.Errorf("power cut, no will {\"online\":false} published: %w", err)}
	}
	res.Measurements = append(res.Measurements, report.MeasureDuration("power_cut_to_will", will.At.Sub(t0), report.AtMost(ms(lim))))
	if restoreErr != nil {
		res.Err = fmt.Errorf("restore power: %w", restoreErr)
		return res
	}
	if _, err := s.Observer.WaitFor(ctx, t1, "status", hil.FieldIs("online", true)); err != nil {
		res.Err = fmt.Errorf("controller did not come back online after power was restored: %w", err)
	}
	return res
}

func photoEyeReverses(ctx context.Context, s *hil.Session) (res Result) {
	lim := s.Bench.Limits.PhotoEyeReverse
	eye, _ := s.Rig.Relay("photo_eye")
	mOpen, _ := s.Rig.Input("motor_open")
	mClose, _ := s.Rig.Input("motor_close")
	if err := driveTo(ctx, s, "open"); err != nil {
		return Result{Err: err}
	}
	start := time.Now()
	defer func() { res.Evidence = evidence(s, start, mOpen, mClose) }()
	if err := s.Observer.Publish(ctx, "close", nextCorr("close")); err != nil {
		return Result{Err: err}
	}
	cctx, cancel := within(ctx, time.Second)
	_, err := mClose.WaitEdge(cctx, start, true)
	cancel()
	if err != nil {
		return Result{Err: fmt.Errorf("close command published, motor_close never ran: %w", err)}
	}
	t0 := time.Now()
	if err := eye.Set(true); err != nil {
		return Result{Err: fmt.Errorf("break the photo-eye beam: %w", err)}
	}
	wctx, cancel := within(ctx, lim)
	defer cancel()
	rev, err := mOpen.WaitEdge(wctx, t0, true)
	releaseErr := eye.Set(false)
	if err != nil {
		return Result{Err: fmt.Errorf("photo-eye broken while closing, the motor never reversed: %w", err)}
	}
	res.Measurements = append(res.Measurements, report.MeasureDuration("photo_eye_to_reverse", rev.At.Sub(t0), report.AtMost(ms(lim))))
	if _, err := mClose.WaitEdge(wctx, t0, false); err != nil {
		res.Err = fmt.Errorf("photo-eye broken: motor_close kept running: %w", err)
		return res
	}
	if _, err := s.Observer.WaitFor(wctx, t0, "evt/obstruction", nil); err != nil {
		res.Err = fmt.Errorf("photo-eye reversed the gate without an evt/obstruction: %w", err)
		return res
	}
	res.Err = errors.Join(releaseErr, driveTo(ctx, s, "closed"))
	return res
}
