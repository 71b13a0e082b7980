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
	At     time.Time  // when the change began (the first edge of the burst)
}

// Input is one sense input.
type Input struct {
	rig  *Rig
	spec bench.Input
	pin  gpio.PinIn

	// Protected by rig.mu.
	state   bool
	history []EdgeEvent
	dropped int
	changed chan struct{} // closed and replaced on every recorded edge
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

func stateName(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

// timedPin is a pin that knows when each edge happened (the simulated pins do). Other drivers'
// edges are stamped when WaitForEdge returns.
type timedPin interface {
	NextEdge(timeout time.Duration) (sim.Edge, bool)
}

func (in *Input) nextEdge(timeout time.Duration) (time.Time, bool) {
	if tp, ok := in.pin.(timedPin); ok {
		e, ok := tp.NextEdge(timeout)
		return e.At, ok
	}
	if !in.pin.WaitForEdge(timeout) {
		return time.Time{}, false
	}
	return time.Now(), true
}

// watch is the input's read loop: it waits for edges, lets the input settle for its debounce time,
// and records a change when the settled state differs from the last one.
func (in *Input) watch() {
	for {
		select {
		case <-in.rig.stop:
			return
		default:
		}
		first, ok := in.nextEdge(pollEvery)
		if !ok {
			continue
		}
		if in.spec.Debounce > 0 {
			for range settleLimit {
				if _, more := in.nextEdge(in.spec.Debounce); !more {
					break
				}
			}
		}
		level := in.pin.Read()
		in.record(level, first)
	}
}

func (in *Input) record(level gpio.Level, at time.Time) {
	r := in.rig
	r.mu.Lock()
	defer r.mu.Unlock()
	active := level == in.spec.Active
	if active == in.state {
		return // a glitch shorter than the debounce time
	}
	in.state = active
	if len(in.history) >= historyLimit {
		in.history = in.history[1:]
		in.dropped++
	}
	in.history = append(in.history, EdgeEvent{Input: in.spec.Name, Active: active, Level: level, At: at})
	close(in.changed)
	in.changed = make(chan struct{})
	if active {
		r.armInterlockCheckLocked(in)
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
