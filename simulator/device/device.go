// Package device is the common part of every simulated access-control device: the contract
// (topics, payload envelopes, acks), the configuration, the single-owner event loop that holds a
// kind's state machine, and the MQTT adapter that makes the device a real client.
//
// A kind (simulator/device/gate, turnstile, camera) is a Machine: a pure state machine that reads
// time and publishes only through the Env it is given. The Sim runs one Machine in one goroutine;
// MQTT messages, stimuli from the physical world, faults and timer expiries all enter that
// goroutine as functions on its inbox, so the state is never shared. Time comes from an injectable
// clock, so that a test drives a device with a fake clock and a recording Publisher and never
// sleeps.
package device

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device/link"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// The device kinds.
const (
	KindGate      = "gate"
	KindTurnstile = "turnstile"
	KindCamera    = "camera"
)

// Kinds lists the device kinds.
var Kinds = []string{KindGate, KindTurnstile, KindCamera}

// ErrClosed is returned by operations on a device whose loop has stopped.
var ErrClosed = errors.New("device is closed")

// ErrPoweredOff is returned by stimuli and commands given to a device without power.
var ErrPoweredOff = errors.New("device is powered off")

// Device is what every simulated device offers its owner (a fleet, a scenario, a bench).
type Device interface {
	// ID is the device identifier, also its MQTT client identifier unless configured otherwise.
	ID() string
	// Kind is "gate", "turnstile" or "camera".
	Kind() string
	// Topics names the device's topics.
	Topics() Topics
	// Start powers the device on and connects it; it returns once the loop runs, not when the
	// device is online (see WaitOnline).
	Start() error
	// WaitOnline returns when the device is connected (or, with a Publisher, booted).
	WaitOnline(ctx context.Context) error
	// Online reports whether the device is connected.
	Online() bool
	// Stimulate applies an event of the physical world: a card, a vehicle, a passage, motion.
	Stimulate(s Stimulus) error
	// Inject applies a fault; a positive Duration clears it by itself.
	Inject(f fault.Fault) error
	// Clear ends an active fault of the given kind (no error if it is not active).
	Clear(kind string) error
	// Do executes a command as if it had arrived on the command topic and returns its ack.
	Do(ctx context.Context, name string, payload []byte) (Ack, error)
	// Snapshot returns the device's state as its loop sees it.
	Snapshot() Snapshot
	// Stats returns the device's counters.
	Stats() Stats
	// Close disconnects cleanly (status offline, DISCONNECT) and stops the loop.
	Close(ctx context.Context) error
}

// Stimulus is an event of the physical world. Which kinds apply depends on the device kind.
type Stimulus struct {
	// Kind is one of the Stim* constants.
	Kind string `yaml:"kind" json:"kind"`
	// Card is the card number of a swipe; empty picks one of the configured cards (seeded).
	Card string `yaml:"card,omitempty" json:"card,omitempty"`
	// Plate is the plate a camera reads; empty picks one of the configured plates (seeded).
	Plate string `yaml:"plate,omitempty" json:"plate,omitempty"`
	// Direction of a passage: "in" (default) or "out".
	Direction string `yaml:"direction,omitempty" json:"direction,omitempty"`
	// Terminal and Active set a gate input terminal (Kind "input").
	Terminal string `yaml:"terminal,omitempty" json:"terminal,omitempty"`
	// Active is the level for "input" and "photo_eye" (true: beam interrupted).
	Active bool `yaml:"active,omitempty" json:"active,omitempty"`
	// Duration of motion in front of a camera; zero uses the configured motion time.
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
}

// Stimulus kinds.
const (
	StimCard          = "card"           // turnstile: a card is swiped
	StimPassage       = "passage"        // turnstile: a person goes through (Direction)
	StimVehicleArrive = "vehicle_arrive" // gate: a vehicle stops on the loop detector
	StimVehicleLeave  = "vehicle_leave"  // gate: the vehicle leaves the loop
	StimPhotoEye      = "photo_eye"      // gate: the photo-eye beam is interrupted (Active) or clear
	StimOpenButton    = "open_button"    // gate: the open push-button is pressed and released
	StimCloseButton   = "close_button"   // gate: the close push-button is pressed and released
	StimInput         = "input"          // gate: a terminal (Terminal) goes to a level (Active)
	StimMotion        = "motion"         // camera: something moves in view for Duration
	StimPlate         = "plate"          // camera: a vehicle's plate comes into view (Plate)
)

// Snapshot is a device's state at one moment of its loop.
type Snapshot struct {
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Powered bool           `json:"powered"`
	Online  bool           `json:"online"`
	Seq     uint64         `json:"seq"`   // the last event sequence number used
	Boots   int            `json:"boots"` // power-ons so far
	Faults  []string       `json:"faults,omitempty"`
	State   map[string]any `json:"state"` // what the retained state topic carries
}

// Stats counts what a device did. Fleet.Stats adds them up.
type Stats struct {
	Connects         uint64    `json:"connects"`          // successful connections, the first included
	Reconnects       uint64    `json:"reconnects"`        // successful connections after a loss
	ConnectFailures  uint64    `json:"connect_failures"`  // attempts that failed
	ConnectionsLost  uint64    `json:"connections_lost"`  // established connections that dropped
	Published        [3]uint64 `json:"published"`         // messages handed to the client, by QoS
	Commands         uint64    `json:"commands"`          // commands received
	AcksOK           uint64    `json:"acks_ok"`           // acks sent, by result
	AcksRejected     uint64    `json:"acks_rejected"`     //
	AcksFailed       uint64    `json:"acks_failed"`       //
	Events           uint64    `json:"events"`            // events published or queued
	Queued           uint64    `json:"queued"`            // QoS 1/2 messages kept while offline
	Dropped          uint64    `json:"dropped"`           // QoS 1/2 messages dropped: offline queue full or power lost
	TelemetryDropped uint64    `json:"telemetry_dropped"` // QoS 0 telemetry not sent while offline
	fault.WireStats
	Link link.Stats `json:"link"` // the keepalive and QoS 2 session kept below the MQTT client
}

// Add adds o's counters to s.
func (s *Stats) Add(o Stats) {
	s.Connects += o.Connects
	s.Reconnects += o.Reconnects
	s.ConnectFailures += o.ConnectFailures
	s.ConnectionsLost += o.ConnectionsLost
	for i := range s.Published {
		s.Published[i] += o.Published[i]
	}
	s.Commands += o.Commands
	s.AcksOK += o.AcksOK
	s.AcksRejected += o.AcksRejected
	s.AcksFailed += o.AcksFailed
	s.Events += o.Events
	s.Queued += o.Queued
	s.Dropped += o.Dropped
	s.TelemetryDropped += o.TelemetryDropped
	s.PingreqsDropped += o.PingreqsDropped
	s.DupsCleared += o.DupsCleared
	s.Resets += o.Resets
	s.Link.Add(o.Link)
}
