package device

import (
	"log/slog"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
)

// Option changes how a Sim is built.
type Option func(*Sim)

// WithClock sets the clock (default clock.Real()).
func WithClock(c clock.Clock) Option { return func(s *Sim) { s.clk = c } }

// WithPublisher replaces the MQTT client with p: the device has no network.
func WithPublisher(p Publisher) Option { return func(s *Sim) { s.pub = p } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Sim) { s.log = l } }

// WithObserver calls fn for every message the device hands to its client or publisher (from the
// device's loop: fn must not block). Scenarios and tests use it as evidence of what the device
// meant to send, to compare with what the broker delivered.
func WithObserver(fn func(Message)) Option { return func(s *Sim) { s.observe = fn } }
