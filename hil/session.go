// Package hil runs hardware-in-the-loop sessions: it opens a bench (hil/bench) through its pins
// (hil/pins, hil/rig), and for a simulated bench (driver: sim) starts what a real bench has
// physically — a broker and a gate controller, here the simulated gate of simulator/device/gate
// wired to the simulated pins (hil/sim) and speaking real MQTT. The HIL suite (hil/suite) then runs
// the same checks on either.
package hil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

// Options shape a session.
type Options struct {
	// Faults are deliberate defects of a simulated bench (ignored on a real one), used to show
	// that the suite catches them.
	Faults []sim.Fault
}

// Session is an open bench, ready for the suite.
type Session struct {
	Bench     *bench.Bench
	Rig       *rig.Rig
	Observer  *Observer
	BrokerURL string
	Board     *sim.Board // the simulated bench, nil on real hardware
	Gate      *gate.Gate // the simulated controller, nil on real hardware

	broker *runningBroker
}

// Simulated reports whether the session runs on the simulated bench.
func (s *Session) Simulated() bool { return s.Board != nil }

// Start opens the bench. Pins are opened first, so that a bench file naming hardware this machine
// does not have fails before anything touches the network. On failure everything already started
// is stopped again.
func Start(ctx context.Context, b *bench.Bench, opts Options) (s *Session, err error) {
	s = &Session{Bench: b}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	simulated := b.UsesDriver(bench.Sim)
	if simulated {
		if s.Board, err = sim.NewBoard(b, opts.Faults...); err != nil {
			return s, err
		}
	}
	if !simulated {
		// A real bench: open (and so check) every pin before anything else.
		if s.Rig, err = rig.Open(b, &pins.Opener{}); err != nil {
			return s, fmt.Errorf("open bench %s: %w", b.Path, err)
		}
	}
	s.BrokerURL = b.Controller.Broker
	switch b.Controller.Broker {
	case "embedded":
		s.broker, err = startReference(ctx)
	case "mosquitto":
		s.broker, err = startMosquitto(ctx)
	}
	if err != nil {
		return s, err
	}
	if s.broker != nil {
		s.BrokerURL = s.broker.url
	}
	if simulated {
		if err := s.startGate(ctx); err != nil {
			return s, err
		}
		if s.Rig, err = rig.Open(b, &pins.Opener{Sim: s.Board}); err != nil {
			return s, fmt.Errorf("open bench %s: %w", b.Path, err)
		}
	}
	observerID := "gatehouse-hil-" + strconv.Itoa(os.Getpid())
	if s.Observer, err = Connect(ctx, s.BrokerURL, observerID, b.Controller.Prefix()); err != nil {
		return s, err
	}
	return s, nil
}

// startGate starts the simulated gate controller and wires it to the simulated pins.
func (s *Session) startGate(ctx context.Context) error {
	c := s.Bench.Controller
	g, err := gate.New(device.Config{
		ID:           c.ID,
		Site:         c.Site,
		ClientID:     c.ClientID,
		Broker:       s.BrokerURL,
		Keepalive:    c.Keepalive,
		Telemetry:    -1,
		ReconnectMin: 100 * time.Millisecond,
		ReconnectMax: time.Second,
		Seed:         uint64(s.Bench.Sim.Seed),
	}, gate.Config{TravelTime: s.Bench.Sim.Travel})
	if err != nil {
		return fmt.Errorf("simulated controller: %w", err)
	}
	if err := g.Start(); err != nil {
		return fmt.Errorf("simulated controller: %w", err)
	}
	s.Gate = g
	s.Board.Attach(g)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.WaitOnline(wctx); err != nil {
		return fmt.Errorf("simulated controller: %w", err)
	}
	return nil
}

// Close releases the relays and stops everything the session started, in reverse order.
func (s *Session) Close() error {
	var errs []error
	if s.Observer != nil {
		s.Observer.Close()
	}
	if s.Rig != nil {
		errs = append(errs, s.Rig.Close())
	}
	if s.Gate != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, s.Gate.Close(ctx))
		cancel()
	}
	if s.Board != nil {
		errs = append(errs, s.Board.Close())
	}
	if s.broker != nil {
		s.broker.stop()
	}
	return errors.Join(errs...)
}
