package rig

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"periph.io/x/conn/v3/gpio"
)

// Pulse energises the relay for d, then releases it. It returns early, released, when ctx ends.
func (rel *Relay) Pulse(ctx context.Context, d time.Duration) error {
	if err := rel.Set(true); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return rel.Set(false)
}

// historyLimit bounds the edges an input keeps; older ones are dropped and counted.
const historyLimit = 4096

// pollEvery bounds how long an input watcher waits for an edge before it checks whether the rig is
// closing, so that Close never waits on a driver that does not release WaitForEdge.
const pollEvery = 50 * time.Millisecond

// settleLimit bounds the edges a watcher swallows while a debounced input settles.
const settleLimit = 1000

// EdgeEvent is one debounced change of an input.
type EdgeEvent struct {
	Input  string
	Active bool       // the input's new state: the controller output it reads is on
	Level  gpio.Level // the pin level
	At     time.Time  // when the change began: its first edge after a quiet debounce time
}

// Input is one sense input.
type Input struct {
	rig  *Rig
	spec bench.Input
	pin  gpio.PinIn

	// Protected by rig.mu.
	state    bool
	settling bool // the watcher has taken an edge and is waiting out the debounce time
	history  []EdgeEvent
	dropped  int
	changed  chan struct{} // closed and replaced when an edge is recorded or settling ends
}

func newInput(r *Rig, spec bench.Input, p gpio.PinIn) *Input {
	return &Input{rig: r, spec: spec, pin: p, changed: make(chan struct{})}
}

// Name returns the input's name in the bench file.
func (in *Input) Name() string { return in.spec.Name }

// Spec returns the input as the bench file describes it.
func (in *Input) Spec() bench.Input { return in.spec }

// Active reports the input's debounced state.
func (in *Input) Active() bool {
	in.rig.mu.Lock()
	defer in.rig.mu.Unlock()
	return in.state
}

// Edges returns the debounced edges seen so far.
func (in *Input) Edges() []EdgeEvent {
	in.rig.mu.Lock()
	defer in.rig.mu.Unlock()
	return slices.Clone(in.history)
}

// WaitEdge waits for the first debounced edge to state active that began at or after since, and
// returns it; edges already recorded count, so an edge that came before the call is not missed.
func (in *Input) WaitEdge(ctx context.Context, since time.Time, active bool) (EdgeEvent, error) {
	for {
		in.rig.mu.Lock()
		for _, e := range in.history {
			if e.Active == active && !e.At.Before(since) {
				in.rig.mu.Unlock()
				return e, nil
			}
		}
		changed := in.changed
		in.rig.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return EdgeEvent{}, fmt.Errorf("input %s: no edge to %s since %s: %w", in.spec.Name, stateName(active), since.Format("15:04:05.000"), ctx.Err())
		}
	}
}

// WaitSettled waits until the input is in state active with no change in progress (no edge
// waiting out its debounce time). An action timed against an input must start from a settled
// one: edges of a change still bouncing when the action began are not the action's.
func (in *Input) WaitSettled(ctx context.Context, active bool) error {
	for {
		in.rig.mu.Lock()
		settling, state, changed := in.settling, in.state, in.changed
		in.rig.mu.Unlock()
		if !settling && state == active {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			now := "still " + stateName(state)
			if settling {
				now = "still changing"
			}
			return fmt.Errorf("input %s: not settled %s, %s: %w", in.spec.Name, stateName(active), now, ctx.Err())
		}
	}
}

func stateName(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

// timedPin is a pin that knows when each edge happened and to which level (the simulated pins
// do). Other drivers' edges are stamped when WaitForEdge returns, and their level is read after.
type timedPin interface {
	NextEdge(timeout time.Duration) (sim.Edge, bool)
}

func (in *Input) nextEdge(timeout time.Duration) (sim.Edge, bool) {
	if tp, ok := in.pin.(timedPin); ok {
		return tp.NextEdge(timeout)
	}
	if !in.pin.WaitForEdge(timeout) {
		return sim.Edge{}, false
	}
	return sim.Edge{At: time.Now()}, true
}

func (in *Input) stopping() bool {
	select {
	case <-in.rig.stop:
		return true
	default:
		return false
	}
}

// watch is the input's read loop: it waits for edges, lets the input settle for its debounce
// time, and records a change when the settled state differs from the last one.
//
// Changes are told apart by the edges' own times, not by when the loop happens to read them: a
// change begins at the first edge after the input was quiet for its debounce time. A loop that
// fell behind (a loaded machine) takes several changes' edges at once; judged by when it read
// them they look like one burst, and an off-on pair would vanish, or a change would be stamped
// with an earlier one's time, before the action that caused it.
func (in *Input) watch() {
	_, timed := in.pin.(timedPin)
	// With both edges reported by a timed pin, each edge carries the level it went to, so the
	// level a burst settled at is its last edge's; otherwise the pin is read once it is quiet.
	levels := timed && in.spec.Edge == gpio.BothEdges
	var start, last time.Time // the current change: its first edge and its latest
	for !in.stopping() {
		e, ok := in.nextEdge(pollEvery)
		if !ok {
			continue
		}
		if last.IsZero() || e.At.Sub(last) >= in.spec.Debounce {
			start = e.At
		}
		last = e.At
		level := e.Level
		if in.spec.Debounce > 0 {
			in.setSettling(true)
			deadline := time.Now().Add(in.spec.Debounce)
			for n := 0; n < settleLimit; {
				wait := time.Until(deadline)
				if wait <= 0 {
					break
				}
				e, ok := in.nextEdge(wait)
				if !ok {
					// Timed out, or woken by In or Halt without an edge: the debounce time is
					// waited out in full either way, unless the rig is closing.
					if in.stopping() {
						return
					}
					continue
				}
				n++
				if levels && e.At.Sub(last) >= in.spec.Debounce {
					in.record(level, start, false) // the earlier change had settled before this one began
					start = e.At
				}
				last, level = e.At, e.Level
				deadline = time.Now().Add(in.spec.Debounce)
			}
		}
		if !levels {
			level = in.pin.Read()
		}
		in.record(level, start, true)
	}
}

// setSettling marks the input as in the middle of a change (see WaitSettled).
func (in *Input) setSettling(on bool) {
	r := in.rig
	r.mu.Lock()
	defer r.mu.Unlock()
	in.settling = on
}

// record ends a change that began at time at and settled at level; settled says whether the input
// is quiet now (false when a later change is already under way).
func (in *Input) record(level gpio.Level, at time.Time, settled bool) {
	r := in.rig
	r.mu.Lock()
	defer r.mu.Unlock()
	notify := settled && in.settling
	if settled {
		in.settling = false
	}
	// The same state as before is a glitch shorter than the debounce time: nothing to record.
	if active := level == in.spec.Active; active != in.state {
		in.state = active
		if len(in.history) >= historyLimit {
			in.history = in.history[1:]
			in.dropped++
		}
		in.history = append(in.history, EdgeEvent{Input: in.spec.Name, Active: active, Level: level, At: at})
		if active {
			r.armInterlockCheckLocked(in)
		}
		notify = true
	}
	if notify {
		close(in.changed)
		in.changed = make(chan struct{})
	}
}

// armInterlockCheckLocked checks the input's interlocks once the other members have had their own
// debounce time to report a change: a controller that switches one motor off and the other on at
// the same instant (break before make) is not at fault, one that keeps both on is.
func (r *Rig) armInterlockCheckLocked(in *Input) {
	settle := 10 * time.Millisecond
	watched := false
	for _, il := range r.bench.Interlocks {
		if !slices.Contains(il.Inputs, in.spec.Name) {
			continue
		}
		watched = true
		for _, name := range il.Inputs {
			if o, ok := r.byName[name].(*Input); ok {
				settle = max(settle, 2*o.spec.Debounce+pollEvery/5)
			}
		}
	}
	if !watched || r.closed {
		return
	}
	r.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(settle, func() {
		defer r.wg.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.checks, t)
		if in.state {
			r.checkInputInterlocksLocked(in)
		}
	})
	r.checks[t] = struct{}{}
}

// checkInputInterlocksLocked: the controller has driven two outputs that must never be on together
// (e.g. motor_open and motor_close). The bench stops driving it: every relay is released.
func (r *Rig) checkInputInterlocksLocked(in *Input) {
	for _, il := range r.bench.Interlocks {
		if !slices.Contains(il.Inputs, in.spec.Name) {
			continue
		}
		for _, other := range il.Inputs {
			if o, ok := r.byName[other].(*Input); ok && o != in && o.state {
				r.recordLocked(InputInterlock, in.spec.Name, fmt.Sprintf("%s became active while %s is active: all relays released", in.spec.Name, other))
				_ = r.safeLocked()
				return
			}
		}
	}
}
