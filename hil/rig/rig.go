// Package rig drives a bench: its relays and sense inputs, opened through hil/pins, with the safety
// rules kept in code whatever the bench file says.
//
//   - Relays start released and return to their safe (released) level on Close, on SIGINT/SIGTERM
//     (HandleSignals) and on panic (defer RestoreOnPanic).
//   - Interlocks between relays are enforced: a Set that would energise two members of one interlock
//     fails with an *InterlockError and changes no pin.
//   - A relay held longer than its max_pulse is released by a watchdog, recorded as a safety event.
//   - Interlocks between inputs are watched: the controller driving two members at once is a safety
//     event, and every relay is released.
//
// Inputs are debounced and keep a history of edges with their times, so that the HIL suite can
// measure from an action to the edge it caused.
package rig

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"periph.io/x/conn/v3/gpio"
)

// ErrHalted is returned by a Set that would energise a relay after the rig was halted by a signal
// or closed.
var ErrHalted = errors.New("rig halted: relays stay released")

// InterlockError is a relay Set refused because another member of one of its interlocks is active.
type InterlockError struct {
	Relay  string
	Active string // the member already energised
}

func (e *InterlockError) Error() string {
	return fmt.Sprintf("interlock: %s may not be energised while %s is energised", e.Relay, e.Active)
}

// SafetyEventKind names what the safety layer did or saw.
type SafetyEventKind string

// Safety events.
const (
	MaxPulse       SafetyEventKind = "max-pulse"       // the watchdog released a relay held too long
	RelayInterlock SafetyEventKind = "relay-interlock" // a Set was refused by an interlock
	InputInterlock SafetyEventKind = "input-interlock" // the controller drove two interlocked outputs at once
	Signal         SafetyEventKind = "signal"          // SIGINT/SIGTERM: relays released, rig halted
	Panic          SafetyEventKind = "panic"           // a panic unwound through RestoreOnPanic
)

// SafetyEvent is one thing the safety layer did or saw.
type SafetyEvent struct {
	At     time.Time
	Kind   SafetyEventKind
	Name   string // relay or input concerned
	Detail string
}

func (e SafetyEvent) String() string {
	return fmt.Sprintf("%s %s %s: %s", e.At.Format("15:04:05.000"), e.Kind, e.Name, e.Detail)
}

// Rig is an open bench.
type Rig struct {
	bench  *bench.Bench
	relays []*Relay
	inputs []*Input
	byName map[string]any

	wg sync.WaitGroup // every goroutine and armed watchdog the rig starts

	mu     sync.Mutex // protects events, halted, closed and every Relay's active/since/watchdog/gen
	events []SafetyEvent
	halted bool
	closed bool
	stop   chan struct{}            // closed by Close: input watchers and the signal handler return
	checks map[*time.Timer]struct{} // armed input interlock checks
}

// Open opens every relay and input of b through o. Relays are set to their safe level as they are
// opened. If any pin cannot be opened, every problem is returned (one *pins.PinError each) and the
// pins already opened are released.
func Open(b *bench.Bench, o *pins.Opener) (*Rig, error) {
	r := &Rig{bench: b, byName: map[string]any{}, stop: make(chan struct{}), checks: map[*time.Timer]struct{}{}}
	var errs []error
	for _, spec := range b.Relays {
		p, err := o.Open(spec.Driver, spec.Pin)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %s: %w", spec.Name, err))
			continue
		}
		rel := &Relay{rig: r, spec: spec, pin: p}
		if err := p.Out(spec.Safe()); err != nil {
			errs = append(errs, fmt.Errorf("relay %s: set pin %s to its safe level %s: %w", spec.Name, spec.Pin, spec.Safe(), err))
			continue
		}
		r.relays = append(r.relays, rel)
		r.byName[spec.Name] = rel
	}
	for _, spec := range b.Inputs {
		p, err := o.Open(spec.Driver, spec.Pin)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s: %w", spec.Name, err))
			continue
		}
		in := newInput(r, spec, p)
		if err := p.In(spec.Pull, spec.Edge); err != nil {
			errs = append(errs, fmt.Errorf("input %s: configure pin %s (pull %s, %s): %w", spec.Name, spec.Pin, spec.Pull, spec.Edge, err))
			continue
		}
		in.state = p.Read() == spec.Active
		r.inputs = append(r.inputs, in)
		r.byName[spec.Name] = in
	}
	if len(errs) > 0 {
		r.closeOpened()
		return nil, errors.Join(errs...)
	}
	for _, in := range r.inputs {
		r.goFn(in.watch)
	}
	return r, nil
}

// goFn starts fn in a goroutine counted by the rig's WaitGroup, registering it before it starts.
func (r *Rig) goFn(fn func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
}

// Bench returns the bench the rig was opened from.
func (r *Rig) Bench() *bench.Bench { return r.bench }

// Relay returns the relay called name.
func (r *Rig) Relay(name string) (*Relay, error) {
	if rel, ok := r.byName[name].(*Relay); ok {
		return rel, nil
	}
	return nil, fmt.Errorf("rig: no relay %q on bench %q", name, r.bench.Name)
}

// Input returns the input called name.
func (r *Rig) Input(name string) (*Input, error) {
	if in, ok := r.byName[name].(*Input); ok {
		return in, nil
	}
	return nil, fmt.Errorf("rig: no input %q on bench %q", name, r.bench.Name)
}

// Relays returns the relays in bench file order.
func (r *Rig) Relays() []*Relay { return slices.Clone(r.relays) }

// Inputs returns the inputs in bench file order.
func (r *Rig) Inputs() []*Input { return slices.Clone(r.inputs) }

// Events returns the safety events so far.
func (r *Rig) Events() []SafetyEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *Rig) recordLocked(kind SafetyEventKind, name, detail string) {
	r.events = append(r.events, SafetyEvent{At: time.Now(), Kind: kind, Name: name, Detail: detail})
}

// SafeState releases every relay (each pin to its safe level) and disarms the watchdogs. It tries
// every relay even if one fails, and returns every failure.
func (r *Rig) SafeState() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.safeLocked()
}

func (r *Rig) safeLocked() error {
	var errs []error
	for _, rel := range r.relays {
		if err := rel.releaseLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Halt releases every relay and refuses to energise any again: what a signal does.
func (r *Rig) Halt(kind SafetyEventKind, detail string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halted = true
	r.recordLocked(kind, "", detail)
	return r.safeLocked()
}

// RestoreOnPanic, deferred directly (defer rig.RestoreOnPanic()), releases every relay when a panic
// unwinds through it, records it, and panics again with the same value.
func (r *Rig) RestoreOnPanic() {
	if p := recover(); p != nil {
		r.mu.Lock()
		r.halted = true
		r.recordLocked(Panic, "", fmt.Sprint(p))
		_ = r.safeLocked()
		r.mu.Unlock()
		panic(p)
	}
}

// Close releases every relay, stops the input watchers and the watchdogs, and halts the pins.
func (r *Rig) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.halted = true
	err := r.safeLocked()
	close(r.stop)
	for t := range r.checks {
		if t.Stop() {
			r.wg.Done()
		}
		delete(r.checks, t)
	}
	r.mu.Unlock()
	for _, in := range r.inputs {
		_ = in.pin.Halt() // releases a WaitForEdge in progress
	}
	r.wg.Wait()
	return err
}

// closeOpened releases what Open managed to open before it failed.
func (r *Rig) closeOpened() {
	r.mu.Lock()
	_ = r.safeLocked()
	r.closed, r.halted = true, true
	close(r.stop)
	r.mu.Unlock()
}

// Relay is one relay channel.
type Relay struct {
	rig  *Rig
	spec bench.Relay
	pin  gpio.PinOut

	// Protected by rig.mu.
	active   bool
	since    time.Time
	watchdog *time.Timer
	gen      uint64 // which energising the armed watchdog belongs to
}

// Name returns the relay's name in the bench file.
func (rel *Relay) Name() string { return rel.spec.Name }

// Spec returns the relay as the bench file describes it.
func (rel *Relay) Spec() bench.Relay { return rel.spec }

// Active reports whether the relay is energised.
func (rel *Relay) Active() bool {
	rel.rig.mu.Lock()
	defer rel.rig.mu.Unlock()
	return rel.active
}

// Set energises (true) or releases (false) the relay. Energising checks the interlocks first and
// arms the max-pulse watchdog; a refused Set changes no pin.
func (rel *Relay) Set(active bool) error {
	r := rel.rig
	r.mu.Lock()
	defer r.mu.Unlock()
	if !active {
		return rel.releaseLocked()
	}
	if r.halted {
		return fmt.Errorf("energise %s: %w", rel.spec.Name, ErrHalted)
	}
	if rel.active {
		return nil
	}
	for _, il := range r.bench.Interlocks {
		if !slices.Contains(il.Relays, rel.spec.Name) {
			continue
		}
		for _, other := range il.Relays {
			if o, ok := r.byName[other].(*Relay); ok && o != rel && o.active {
				err := &InterlockError{Relay: rel.spec.Name, Active: other}
				r.recordLocked(RelayInterlock, rel.spec.Name, err.Error())
				return err
			}
		}
	}
	if err := rel.pin.Out(rel.spec.Active); err != nil {
		return fmt.Errorf("energise %s (pin %s %s): %w", rel.spec.Name, rel.spec.Pin, rel.spec.Active, err)
	}
	rel.active = true
	rel.since = time.Now()
	rel.gen++
	gen := rel.gen
	r.wg.Add(1)
	rel.watchdog = time.AfterFunc(rel.spec.MaxPulse, func() {
		defer r.wg.Done()
		rel.expire(gen)
	})
	return nil
}

// expire is the watchdog: it releases the relay if it is still the same energising.
func (rel *Relay) expire(gen uint64) {
	r := rel.rig
	r.mu.Lock()
	defer r.mu.Unlock()
	if !rel.active || rel.gen != gen {
		return
	}
	rel.watchdog = nil // this timer has fired; releaseLocked must not count it again
	held := time.Since(rel.since)
	err := rel.releaseLocked()
	detail := fmt.Sprintf("held %v, longer than its max_pulse %v: released", held.Round(time.Millisecond), rel.spec.MaxPulse)
	if err != nil {
		detail += fmt.Sprintf(" (release failed: %v)", err)
	}
	r.recordLocked(MaxPulse, rel.spec.Name, detail)
}

// releaseLocked drives the pin to its safe level, whatever the relay's recorded state, and disarms
// the watchdog.
func (rel *Relay) releaseLocked() error {
	if rel.watchdog != nil {
		if rel.watchdog.Stop() {
			rel.rig.wg.Done()
		}
		rel.watchdog = nil
	}
	rel.active = false
	if err := rel.pin.Out(rel.spec.Safe()); err != nil {
		return fmt.Errorf("release %s (pin %s to %s): %w", rel.spec.Name, rel.spec.Pin, rel.spec.Safe(), err)
	}
	return nil
}
