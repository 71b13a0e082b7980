// Package sim is the simulated bench: wired fake GPIO pins (implementing periph's gpio.PinIO) with a
// transition log, modelled wire propagation delay and seeded contact bounce, connected to a
// controller's terminals the way a bench file wires relays and sense inputs. With a simulated gate
// controller behind it, the HIL suite runs in CI exactly as it runs on a real bench.
package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"periph.io/x/conn/v3/gpio"
)

// Controller is what the board wires to: a device with named input terminals (driven by relays)
// and output terminals (read by sense inputs). The simulated gate controller satisfies it.
type Controller interface {
	SetInput(terminal string, active bool) error
	OnOutput(fn func(terminal string, active bool, at time.Time))
}

// Transition is one level change of one pin.
type Transition struct {
	Pin   string
	Level gpio.Level
	At    time.Time
	Cause string // "out" (written by the rig), "driven" (by a wire), "in" (reconfigured as input)
}

func (t Transition) String() string {
	return fmt.Sprintf("%s %s %s (%s)", t.At.Format("15:04:05.000000"), t.Pin, t.Level, t.Cause)
}

// FaultKind names a deliberate bench defect.
type FaultKind string

// Bench defects the board can simulate, so that the HIL suite can be seen to catch them.
const (
	BrokenWire  FaultKind = "broken-wire"  // nothing travels along the wire
	SlowWire    FaultKind = "slow-wire"    // the wire adds Delay to every change
	StuckOutput FaultKind = "stuck-output" // the relay pin accepts writes and never changes
)

// Fault is one defect: Wire is a controller terminal (the wire landed on it), a loopback relay
// name, or for StuckOutput the relay's pin.
type Fault struct {
	Kind  FaultKind
	Wire  string
	Delay time.Duration
}

// Board holds the simulated pins of a bench and their wires.
type Board struct {
	bench *bench.Bench
	opts  bench.SimOptions
	sched scheduler

	mu       sync.Mutex // protects the fields below and every Pin's mutable fields
	closed   bool
	pins     map[string]*Pin // by pin name (e.g. R1, S3)
	log      []Transition
	rng      *rand.Rand
	broken   map[string]bool
	slow     map[string]time.Duration
	stuck    map[string]bool
	contacts map[string]bool // by loopback relay name: whether its contact is closed
	wireErrs []error
}

// NewBoard creates the simulated pins of every relay and input of b that uses driver sim, and wires
// loopback pairs. Faults, if any, are applied from the start.
func NewBoard(b *bench.Bench, faults ...Fault) (*Board, error) {
	bd := &Board{
		bench:    b,
		opts:     b.Sim,
		pins:     map[string]*Pin{},
		rng:      rand.New(rand.NewPCG(uint64(b.Sim.Seed), 0x9e3779b97f4a7c15)),
		broken:   map[string]bool{},
		slow:     map[string]time.Duration{},
		stuck:    map[string]bool{},
		contacts: map[string]bool{},
	}
	for _, f := range faults {
		switch f.Kind {
		case BrokenWire:
			bd.broken[f.Wire] = true
		case SlowWire:
			bd.slow[f.Wire] = f.Delay
		case StuckOutput:
			bd.stuck[f.Wire] = true
		default:
			return nil, fmt.Errorf("sim: unknown fault kind %q", f.Kind)
		}
	}
	n := 0
	add := func(name string) {
		if _, ok := bd.pins[name]; ok {
			return
		}
		bd.pins[name] = &Pin{board: bd, name: name, number: n, edges: make(chan Edge, edgeQueue), wake: make(chan struct{}), pull: gpio.Float, lane: bd.sched.newLane()}
		n++
	}
	for _, r := range b.Relays {
		if r.Driver == bench.Sim {
			add(r.Pin)
		}
	}
	for _, in := range b.Inputs {
		if in.Driver == bench.Sim {
			add(in.Pin)
		}
	}
	for _, lb := range b.Loopbacks {
		r, _ := b.Relay(lb.Relay)
		in, _ := b.Input(lb.Input)
		if r.Driver != bench.Sim || in.Driver != bench.Sim {
			continue
		}
		out, sense := bd.pins[r.Pin], bd.pins[in.Pin]
		wire := bd.sched.newLane()
		relay := lb.Relay
		out.onChange = append(out.onChange, func(l gpio.Level, at time.Time) {
			closed := l == r.Active
			// The contact starts open: a relay pin first configured at its released level moves
			// nothing, so nothing travels and nothing bounces. Sending that non-change made the
			// input bounce just as a self-test energised the relay, and the two bursts were
			// debounced as one change stamped before the relay was energised.
			bd.mu.Lock()
			moved := bd.contacts[relay] != closed
			bd.contacts[relay] = closed
			bd.mu.Unlock()
			if !moved {
				return
			}
			level := in.Active
			if !closed {
				level = !in.Active
			}
			bd.send(wire, relay, at, func(at time.Time) { bd.bounce(sense, level, at) })
		})
	}
	return bd, nil
}

// Pin returns the simulated pin called name.
func (b *Board) Pin(name string) (*Pin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pins[name]
	if !ok {
		var names []string
		for n := range b.pins {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("sim: no pin %q on the simulated bench (pins: %v)", name, names)
	}
	return p, nil
}

// Attach wires the controller's terminals to the board as the bench file says: relays drive its
// inputs, its outputs drive the sense inputs. Sense inputs start at their inactive level (the
// controller's outputs off) until the controller reports otherwise.
func (b *Board) Attach(c Controller) {
	for _, w := range b.bench.Drive {
		r, _ := b.bench.Relay(w.Relay)
		if r.Driver != bench.Sim {
			continue
		}
		p := b.pins[r.Pin]
		wire := b.sched.newLane()
		w := w
		p.onChange = append(p.onChange, func(l gpio.Level, at time.Time) {
			active := (l == r.Active) != (w.Contact == bench.NormallyClosed)
			b.send(wire, w.Terminal, at, func(time.Time) {
				if err := c.SetInput(w.Terminal, active); err != nil {
					b.mu.Lock()
					b.wireErrs = append(b.wireErrs, fmt.Errorf("sim: set controller input %s: %w", w.Terminal, err))
					b.mu.Unlock()
				}
			})
		})
	}
	sense := map[string]struct {
		pin *Pin
		in  bench.Input
	}{}
	now := b.now()
	for _, w := range b.bench.Sense {
		in, _ := b.bench.Input(w.Input)
		if in.Driver != bench.Sim {
			continue
		}
		p := b.pins[in.Pin]
		sense[w.Terminal] = struct {
			pin *Pin
			in  bench.Input
		}{p, in}
		p.drive(!in.Active, now)
	}
	lanes := map[string]*lane{}
	for t := range sense {
		lanes[t] = b.sched.newLane()
	}
	c.OnOutput(func(terminal string, active bool, at time.Time) {
		s, ok := sense[terminal]
		if !ok {
			return
		}
		level := s.in.Active
		if !active {
			level = !s.in.Active
		}
		b.send(lanes[terminal], terminal, at, func(at time.Time) { b.bounce(s.pin, level, at) })
	})
}

// send carries a change along a wire: propagation delay, plus any fault on that wire.
func (b *Board) send(wire *lane, name string, at time.Time, deliver func(at time.Time)) {
	b.mu.Lock()
	broken, extra := b.broken[name], b.slow[name]
	b.mu.Unlock()
	if broken {
		return
	}
	wire.at(at.Add(b.opts.Propagation+extra), deliver)
}

// bounce drives an input to level at time at, followed by the board's seeded contact bounce: each
// bounce is a brief return to the old level within BounceSpan, and the input settles at level. A
// newer change of the same input supersedes what is left of an older change's bounce, as a contact
// that moves again stops bouncing where it was.
func (b *Board) bounce(p *Pin, level gpio.Level, at time.Time) {
	b.mu.Lock()
	p.gen++
	gen := p.gen
	p.genAt = at
	var offsets []time.Duration
	if b.opts.Bounce > 0 && b.opts.BounceSpan > 0 {
		offsets = make([]time.Duration, 2*b.opts.Bounce)
		for i := range offsets {
			offsets[i] = 1 + time.Duration(b.rng.Int64N(int64(b.opts.BounceSpan)))
		}
	}
	b.mu.Unlock()
	deliver := func(l gpio.Level) func(time.Time) {
		return func(t time.Time) {
			b.mu.Lock()
			if gen != p.gen && !t.Before(p.genAt) {
				b.mu.Unlock()
				return // superseded by a newer change
			}
			b.mu.Unlock()
			p.drive(l, t)
		}
	}
	p.lane.at(at, deliver(level))
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	for i, off := range offsets {
		l := level
		if i%2 == 0 {
			l = !level
		}
		p.lane.at(at.Add(off), deliver(l))
	}
}

// now is the board's clock. It is the wall clock (the fake one inside a testing/synctest bubble).
func (b *Board) now() time.Time { return time.Now() }

func (b *Board) logLocked(pin string, l gpio.Level, at time.Time, cause string) {
	b.log = append(b.log, Transition{Pin: pin, Level: l, At: at, Cause: cause})
}

// Log returns every pin transition so far, in the order they happened.
func (b *Board) Log() []Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// Level returns the current level of the pin called name.
func (b *Board) Level(name string) (gpio.Level, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pins[name]
	if !ok {
		return gpio.Low, false
	}
	return p.level, true
}

// WireErrors returns the errors the controller returned for changes delivered to it.
func (b *Board) WireErrors() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.wireErrs)
}

// Close stops every wire, releases waiting readers and waits for changes in flight; pins fail after.
func (b *Board) Close() error {
	b.sched.close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, p := range b.pins {
		p.wakeLocked()
	}
	return nil
}
