// Package selftest is the bench preflight: which periph host drivers loaded, which pins answer,
// and, where the bench wires a relay straight to an input, whether a pulse on the relay comes back
// on the input. A bench engineer runs it before trusting a suite result.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
)

// PinResult is one pin of the bench: whether it opened, and its level if it did.
type PinResult struct {
	Role   string // "relay" or "input"
	Name   string
	Driver bench.Driver
	Pin    string
	Level  string
	Err    error
}

// LoopResult is one loopback pair: the time from energising the relay to the input's edge.
type LoopResult struct {
	Relay, Input string
	Delay        time.Duration
	Err          error
}

// Report is the preflight's findings.
type Report struct {
	Drivers []pins.DriverState
	Pins    []PinResult
	Loops   []LoopResult
}

// OK reports whether every pin answered and every loopback came back.
func (r *Report) OK() bool {
	for _, p := range r.Pins {
		if p.Err != nil {
			return false
		}
	}
	for _, l := range r.Loops {
		if l.Err != nil {
			return false
		}
	}
	return true
}

// Err summarises the failures, nil when OK.
func (r *Report) Err() error {
	n := 0
	var first error
	for _, p := range r.Pins {
		if p.Err != nil {
			n++
			if first == nil {
				first = fmt.Errorf("%s %s: %w", p.Role, p.Name, p.Err)
			}
		}
	}
	for _, l := range r.Loops {
		if l.Err != nil {
			n++
			if first == nil {
				first = fmt.Errorf("loopback %s → %s: %w", l.Relay, l.Input, l.Err)
			}
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("self-test: %d problem(s); first: %w", n, first)
}

// CheckPins opens each pin of the bench on its own and reads it, so that every missing pin is
// reported, not only the first. Drivers lists periph's host drivers when the bench uses any.
func CheckPins(b *bench.Bench, o *pins.Opener) *Report {
	rep := &Report{}
	if b.UsesDriver(bench.GPIOChip) || b.UsesDriver(bench.RPi) || b.UsesDriver(bench.Sysfs) {
		ds, err := pins.HostDrivers()
		if err != nil {
			rep.Pins = append(rep.Pins, PinResult{Role: "host", Name: "periph", Err: err})
		}
		rep.Drivers = ds
	}
	for _, r := range b.Relays {
		res := PinResult{Role: "relay", Name: r.Name, Driver: r.Driver, Pin: r.Pin}
		p, err := o.Open(r.Driver, r.Pin)
		if err == nil {
			// An output pin answers by taking its safe level.
			err = p.Out(r.Safe())
			res.Level = r.Safe().String()
		}
		res.Err = err
		rep.Pins = append(rep.Pins, res)
	}
	for _, in := range b.Inputs {
		res := PinResult{Role: "input", Name: in.Name, Driver: in.Driver, Pin: in.Pin}
		p, err := o.Open(in.Driver, in.Pin)
		if err == nil {
			if err = p.In(in.Pull, in.Edge); err == nil {
				res.Level = p.Read().String()
			}
		}
		res.Err = err
		rep.Pins = append(rep.Pins, res)
	}
	return rep
}

// CheckLoopbacks energises each loopback relay and waits for its input to become active, then
// releases it and waits for the input to fall back. Each pulse starts from a settled, inactive
// input: an input still changing when the relay is energised (the bench just opened, a relay left
// energised by an earlier run now released) would mix that change's edges into the measurement.
func CheckLoopbacks(ctx context.Context, r *rig.Rig) []LoopResult {
	var out []LoopResult
	for _, lb := range r.Bench().Loopbacks {
		res := LoopResult{Relay: lb.Relay, Input: lb.Input}
		res.Delay, res.Err = loop(ctx, r, lb)
		out = append(out, res)
	}
	return out
}

func loop(ctx context.Context, r *rig.Rig, lb bench.Loopback) (time.Duration, error) {
	rel, err := r.Relay(lb.Relay)
	if err != nil {
		return 0, err
	}
	in, err := r.Input(lb.Input)
	if err != nil {
		return 0, err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = in.WaitSettled(sctx, false)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("relay released, input not settled inactive (check the loopback wire and the input's active level and pull): %w", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// Each wait counts only edges that began after its action, and an edge is stamped with when
	// it happened: t0 and t1 are taken before the relay moves, not after Set returns.
	t0 := time.Now()
	if err := rel.Set(true); err != nil {
		return 0, err
	}
	e, err := in.WaitEdge(ctx, t0, true)
	t1 := time.Now()
	rerr := rel.Set(false)
	if err != nil {
		return 0, errors.Join(fmt.Errorf("relay energised, input never became active (check the loopback wire and the input's active level): %w", err), rerr)
	}
	if rerr != nil {
		return e.At.Sub(t0), rerr
	}
	if _, err := in.WaitEdge(ctx, t1, false); err != nil {
		return e.At.Sub(t0), fmt.Errorf("relay released, input stayed active: %w", err)
	}
	return e.At.Sub(t0), nil
}

// Write prints the report for a person.
func (r *Report) Write(w io.Writer) {
	if len(r.Drivers) > 0 {
		fmt.Fprintln(w, "periph host drivers:")
		for _, d := range r.Drivers {
			state := "loaded"
			if !d.Loaded {
				state = d.Reason
			}
			fmt.Fprintf(w, "  %-16s %s\n", d.Name, state)
		}
	}
	fmt.Fprintln(w, "pins:")
	for _, p := range r.Pins {
		if p.Err != nil {
			fmt.Fprintf(w, "  FAIL %-6s %-14s %v\n", p.Role, p.Name, p.Err)
			continue
		}
		fmt.Fprintf(w, "  ok   %-6s %-14s %s %s (level %s)\n", p.Role, p.Name, p.Driver, p.Pin, p.Level)
	}
	if len(r.Loops) > 0 {
		fmt.Fprintln(w, "loopbacks:")
		for _, l := range r.Loops {
			if l.Err != nil {
				fmt.Fprintf(w, "  FAIL %s → %s: %v\n", l.Relay, l.Input, l.Err)
				continue
			}
			fmt.Fprintf(w, "  ok   %s → %s in %v\n", l.Relay, l.Input, l.Delay.Round(10*time.Microsecond))
		}
	}
}
