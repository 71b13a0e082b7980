package sim

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// edgeQueue bounds the edges a pin keeps for WaitForEdge; a reader that falls further behind loses
// the oldest edges, and the pin counts them.
const edgeQueue = 256

// Edge is one edge seen on a simulated input pin, with the modelled time it happened.
type Edge struct {
	Level gpio.Level
	At    time.Time
}

// Pin is a simulated GPIO pin on a Board. It implements gpio.PinIO: as an output it drives what it
// is wired to; as an input it is driven by the board (a controller output or a loopback relay) and
// reports edges with their modelled times.
type Pin struct {
	board  *Board
	name   string
	number int

	// The fields below are protected by board.mu.
	out      bool       // configured as an output
	level    gpio.Level // current level, driven or pulled
	driven   bool       // something on the board drives this input
	pull     gpio.Pull
	edge     gpio.Edge
	edges    chan Edge     // edges not yet taken by WaitForEdge
	wake     chan struct{} // closed by In to release a waiting WaitForEdge
	dropped  int           // edges lost because the queue was full
	onChange []func(gpio.Level, time.Time)
	lane     *lane     // orders the edges driven into this pin
	gen      uint64    // the latest change driven into this pin
	genAt    time.Time // when the latest change begins
}

var (
	_ gpio.PinIO  = (*Pin)(nil)
	_ pin.PinFunc = (*Pin)(nil)
)

// errHalted is returned by a pin used after its board closed.
var errHalted = errors.New("sim: board closed")

// String implements conn.Resource.
func (p *Pin) String() string { return fmt.Sprintf("sim/%s", p.name) }

// Halt implements conn.Resource; it releases a waiting WaitForEdge.
func (p *Pin) Halt() error {
	p.board.mu.Lock()
	defer p.board.mu.Unlock()
	p.wakeLocked()
	return nil
}

// Name implements pin.Pin.
func (p *Pin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *Pin) Number() int { return p.number }

// Function implements pin.Pin.
func (p *Pin) Function() string { return string(p.Func()) }

// Func implements pin.PinFunc.
func (p *Pin) Func() pin.Func {
	p.board.mu.Lock()
	defer p.board.mu.Unlock()
	if p.out {
		if p.level {
			return gpio.OUT_HIGH
		}
		return gpio.OUT_LOW
	}
	if p.level {
		return gpio.IN_HIGH
	}
	return gpio.IN_LOW
}

// SupportedFuncs implements pin.PinFunc.
func (p *Pin) SupportedFuncs() []pin.Func { return []pin.Func{gpio.IN, gpio.OUT} }

// SetFunc implements pin.PinFunc.
func (p *Pin) SetFunc(f pin.Func) error {
	switch f {
	case gpio.IN:
		return p.In(gpio.PullNoChange, gpio.NoEdge)
	case gpio.OUT_HIGH:
		return p.Out(gpio.High)
	case gpio.OUT, gpio.OUT_LOW:
		return p.Out(gpio.Low)
	}
	return fmt.Errorf("sim: pin %s: unsupported function %s", p.name, f)
}

// In implements gpio.PinIn. It empties the edge queue and releases a waiting WaitForEdge, as the
// real drivers do.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	b := p.board
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errHalted
	}
	wasOut := p.out
	p.out = false
	if pull != gpio.PullNoChange {
		p.pull = pull
	}
	p.edge = edge
	if !p.driven {
		p.level = p.pull == gpio.PullUp
	}
	for len(p.edges) > 0 {
		<-p.edges
	}
	p.wakeLocked()
	if wasOut {
		b.logLocked(p.name, p.level, b.now(), "in")
	}
	return nil
}

func (p *Pin) wakeLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Read implements gpio.PinIn.
func (p *Pin) Read() gpio.Level {
	p.board.mu.Lock()
	defer p.board.mu.Unlock()
	return p.level
}

// WaitForEdge implements gpio.PinIn.
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	_, ok := p.NextEdge(timeout)
	return ok
}

// NextEdge waits up to timeout (a negative timeout waits until In or Halt is called) for the next
// edge and returns it with the time it happened, so that edge timestamps are the modelled ones
// rather than the time the reader woke up.
func (p *Pin) NextEdge(timeout time.Duration) (Edge, bool) {
	p.board.mu.Lock()
	edges, wake := p.edges, p.wake
	p.board.mu.Unlock()
	select {
	case e := <-edges:
		return e, true
	default:
	}
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case e := <-edges:
		return e, true
	case <-wake:
		return Edge{}, false
	case <-expire:
		return Edge{}, false
	}
}

// Dropped returns how many edges this pin lost because nobody took them.
func (p *Pin) Dropped() int {
	p.board.mu.Lock()
	defer p.board.mu.Unlock()
	return p.dropped
}

// Pull implements gpio.PinIn.
func (p *Pin) Pull() gpio.Pull {
	p.board.mu.Lock()
	defer p.board.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn.
func (p *Pin) DefaultPull() gpio.Pull { return gpio.Float }

// Out implements gpio.PinOut: the level is logged and travels along the pin's wires.
func (p *Pin) Out(l gpio.Level) error {
	b := p.board
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errHalted
	}
	if b.stuck[p.name] {
		b.mu.Unlock()
		return nil // a stuck output driver accepts the write and changes nothing
	}
	changed := !p.out || p.level != l
	p.out = true
	p.level = l
	at := b.now()
	var listeners []func(gpio.Level, time.Time)
	if changed {
		b.logLocked(p.name, l, at, "out")
		listeners = append(listeners, p.onChange...)
	}
	b.mu.Unlock()
	for _, fn := range listeners {
		fn(l, at)
	}
	return nil
}

// PWM implements gpio.PinOut; simulated pins have no PWM.
func (p *Pin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("sim: pin %s: PWM is not simulated", p.name)
}

// drive sets an input pin's level at time at, queueing an edge if the pin watches for it.
func (p *Pin) drive(l gpio.Level, at time.Time) {
	b := p.board
	b.mu.Lock()
	if b.closed || p.out || p.level == l {
		// No level change, no edge: an input that starts driven at the level its pull already
		// held reports nothing, as a real pin would not.
		p.driven = true
		b.mu.Unlock()
		return
	}
	p.driven = true
	p.level = l
	b.logLocked(p.name, l, at, "driven")
	want := p.edge == gpio.BothEdges || (p.edge == gpio.RisingEdge && l == gpio.High) || (p.edge == gpio.FallingEdge && l == gpio.Low)
	if want {
		select {
		case p.edges <- Edge{Level: l, At: at}:
		default:
			<-p.edges // drop the oldest: the newest edge says where the level is now
			p.dropped++
			p.edges <- Edge{Level: l, At: at}
		}
	}
	b.mu.Unlock()
}
