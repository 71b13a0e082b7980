// Package scenario reads, plans and runs Gatehouse scenarios: a fleet of simulated devices, the
// traffic and faults applied to it on one timeline, and the expectations that judge what the
// devices and the broker did — reproducible from a seed.
//
// A scenario file is decoded strictly (Parse, Load): every unknown key, wrong type, unknown device
// and impossible timing is an error naming file:line:column and what was expected there. Plan turns
// a scenario and its seed into the exact list of timed actions, so that the same file and seed
// always do the same thing. Run carries the plan out against a broker with a real fleet, records
// every message an observer client sees, judges each expectation against that record and returns a
// report.Record. The format is documented in README.md beside this file.
package scenario

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// Pos is where something was written in a scenario file.
type Pos struct {
	Line, Column int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// Scenario is a decoded, validated scenario file.
type Scenario struct {
	File        string
	Name        string
	Description string
	Seed        uint64
	// Outcome is the verdict the file says the scenario has against a correct fleet and broker:
	// pass for the scenarios that describe how things should go, fail for the ones written to show
	// a defect being caught.
	Outcome report.Outcome
	Broker  Broker
	// ConnectRate bounds the fleet's connections per second at start-up (0: as fast as it can).
	ConnectRate float64
	// Requires lists the broker lifecycle controls the scenario needs (e.g. broker_restart): the
	// ones declared under requires plus the ones its steps use.
	Requires []string
	// Duration is when the scenario ends, measured from the fleet's start: the declared duration,
	// or the end of the last step's action and expectation windows.
	Duration time.Duration
	Fleet    []Group
	React    []Rule
	Steps    []Step

	devices map[string]DeviceRef // every device id the fleet templates expand to
	order   []string             // the same ids in fleet order
}

// DeviceRef says where a device id comes from.
type DeviceRef struct {
	ID    string
	Kind  string
	Site  string
	Group int // index into Fleet
}

// Devices returns every device id of the fleet, in fleet order.
func (s *Scenario) Devices() []string { return append([]string(nil), s.order...) }

// Device looks up a device id of the fleet.
func (s *Scenario) Device(id string) (DeviceRef, bool) {
	d, ok := s.devices[id]
	return d, ok
}

// DevicesOfKind returns the fleet's devices of one kind, in fleet order.
func (s *Scenario) DevicesOfKind(kind string) []string {
	var out []string
	for _, id := range s.order {
		if s.devices[id].Kind == kind {
			out = append(out, id)
		}
	}
	return out
}

// Broker says which broker a scenario runs against; the command line may override it.
type Broker struct {
	Kind  string // BrokerEmbedded, BrokerURL or BrokerImage
	URL   string // for BrokerURL: mqtt://host:port or tcp://host:port
	Image string // for BrokerImage: a locally built image started through testcontainers
	// Faults are fault modes of the embedded reference broker ("no-will", "duplicate-qos2",
	// optionally "@CLIENTID"): a scenario run against a broker that misbehaves on purpose shows
	// which defects the scenario catches.
	Faults []string
}

// Broker kinds.
const (
	BrokerEmbedded = "embedded"
	BrokerURL      = "url"
	BrokerImage    = "image"
)

// Device kinds of the fleet.
var deviceKinds = []string{"gate", "turnstile", "camera"}

// Group is one line of the fleet: a fleet.Group (kind, count, id template, site, settings) and
// where it was written.
type Group struct {
	Pos Pos
	fleet.Group
}

// Broker lifecycle controls a scenario may need from its target. They are faults of the broker
// rather than of a device, scripted like device faults: fault: {kind: broker_restart}.
const (
	BrokerRestart    = "broker_restart"    // stop and start again on the same address, sessions kept
	BrokerCrash      = "broker_crash"      // stop without a clean shutdown
	BrokerPause      = "broker_pause"      // stop serving for a while without closing connections
	NetworkPartition = "network_partition" // cut the broker from the network for a while
)

var brokerFaults = []string{BrokerRestart, BrokerCrash, BrokerPause, NetworkPartition}

// Step is one point of the timeline: at most one action, and the expectations judged from then on.
type Step struct {
	Index  int // 1-based, as people count steps in the file
	Pos    Pos
	At     time.Duration
	Name   string
	Action Action // nil for a step that only expects
	Expect []Expectation
}

// Label names the step in messages: "step 3 (at 5s)" or "step 3 "power cut" (at 5s)".
func (s *Step) Label() string {
	if s.Name != "" {
		return fmt.Sprintf("step %d %q (at %s)", s.Index, s.Name, fmtDur(s.At))
	}
	return fmt.Sprintf("step %d (at %s)", s.Index, fmtDur(s.At))
}

// Action is what a step does: a command, a stimulus, a fault, a fault cleared, a load phase.
type Action interface {
	// String describes the action for timelines and messages.
	String() string
	action()
}

// Targets selects devices: one, a list, or every device of a kind.
type Targets struct {
	Device  string
	Devices []string
	Every   string // a device kind
}

func (t Targets) String() string {
	switch {
	case t.Every != "":
		return "every " + t.Every
	case len(t.Devices) > 0:
		return strings.Join(t.Devices, ", ")
	}
	return t.Device
}

// Resolve lists the device ids the targets select, in fleet order for Every.
func (t Targets) Resolve(s *Scenario) []string {
	switch {
	case t.Every != "":
		return s.DevicesOfKind(t.Every)
	case len(t.Devices) > 0:
		return append([]string(nil), t.Devices...)
	case t.Device != "":
		return []string{t.Device}
	}
	return nil
}

// Command is sent by the scenario's controller client to {prefix}/{kind}/{id}/cmd/{name} with a
// fresh corr; its ack is awaited and recorded.
type Command struct {
	Targets
	Name string
	Args map[string]any
}

func (c *Command) String() string { return fmt.Sprintf("command %s to %s", c.Name, c.Targets) }
func (*Command) action()          {}

// Stimulus is something that happens in the physical world at a device: a card swiped, a vehicle
// arriving, a person passing, motion in front of a camera, a button pressed.
type Stimulus struct {
	Targets
	Name   string // swipe, pass, arrive, leave, motion, plate, button, photo_eye, …
	Params map[string]any
}

func (s *Stimulus) String() string { return fmt.Sprintf("stimulus %s at %s", s.Name, s.Targets) }
func (*Stimulus) action()          {}

// Fault injects a named device fault (simulator/fault), or a broker fault when Broker is set.
type Fault struct {
	Targets
	Fault  fault.Fault
	Broker bool // Fault.Kind is one of the broker lifecycle controls
}

func (f *Fault) String() string {
	if f.Broker {
		return "broker fault " + f.Fault.String()
	}
	return fmt.Sprintf("fault %s on %s", f.Fault, f.Targets)
}
func (*Fault) action() {}

// Clear ends a device fault (power back, network back, jam freed).
type Clear struct {
	Targets
	Kind string
}

func (c *Clear) String() string { return fmt.Sprintf("clear %s on %s", c.Kind, c.Targets) }
func (*Clear) action()          {}

// LoadPhase is a traffic phase: Rate actions per second for For, spread over the devices of a kind
// (or a list of them), each a stimulus or a command.
type LoadPhase struct {
	Kind     string   // device kind
	Devices  []string // optional subset of that kind
	Stimulus string   // the stimulus applied, or
	Command  string   // the command sent
	Params   map[string]any
	Rate     float64 // actions per second
	For      time.Duration
}

func (l *LoadPhase) String() string {
	what := l.Stimulus
	if l.Command != "" {
		what = "command " + l.Command
	}
	return fmt.Sprintf("load %s on %s at %s/s for %s", what, l.Kind, trimFloat(l.Rate), fmtDur(l.For))
}
func (*LoadPhase) action() {}

// Count is how many actions the phase makes.
func (l *LoadPhase) Count() int {
	n := int(l.Rate*l.For.Seconds() + 1e-9)
	if n < 1 {
		n = 1
	}
	return n
}

// ExpectKind names what an expectation checks.
type ExpectKind string

// The expectations.
const (
	ExpectPublish   ExpectKind = "publish"   // a matching message is published within the window
	ExpectRetained  ExpectKind = "retained"  // a fresh subscription receives matching retained messages
	ExpectAbsent    ExpectKind = "absent"    // no matching message during the whole window
	ExpectOrder     ExpectKind = "order"     // matching messages in this order within the window
	ExpectAck       ExpectKind = "ack"       // every command of the step is acked with this result
	ExpectDelivered ExpectKind = "delivered" // every action of the step produced its event, once
	ExpectLatency   ExpectKind = "latency"   // a percentile of action → event latency stays under a limit
)

// Expectation is one check of a step, judged over the window [step start, step start + Within].
type Expectation struct {
	Pos     Pos
	Kind    ExpectKind
	Within  time.Duration
	Match   Match   // publish, retained, absent
	Count   int     // publish, retained: at least this many matching messages (default 1)
	Exactly int     // publish, retained: exactly this many by the end of the window; -1 when unset
	Order   []Match // order
	Result  string  // ack: ok, rejected or failed
	// Percentile and Limit are set for latency: e.g. 99 and 50ms.
	Percentile float64
	Limit      time.Duration
}

// String describes the expectation as the file states it.
func (e *Expectation) String() string {
	switch e.Kind {
	case ExpectPublish, ExpectRetained, ExpectAbsent:
		s := fmt.Sprintf("%s %s", e.Kind, e.Match)
		if e.Exactly >= 0 {
			s += fmt.Sprintf(" exactly %d", e.Exactly)
		} else if e.Count > 1 {
			s += fmt.Sprintf(" count %d", e.Count)
		}
		return s + " within " + fmtDur(e.Within)
	case ExpectOrder:
		parts := make([]string, len(e.Order))
		for i, m := range e.Order {
			parts[i] = m.String()
		}
		return "order [" + strings.Join(parts, " → ") + "] within " + fmtDur(e.Within)
	case ExpectAck:
		return fmt.Sprintf("ack %s within %s", e.Result, fmtDur(e.Within))
	case ExpectDelivered:
		return "delivered all within " + fmtDur(e.Within)
	case ExpectLatency:
		return fmt.Sprintf("p%s latency ≤ %s", trimFloat(e.Percentile), fmtDur(e.Limit))
	}
	return string(e.Kind)
}

// Match selects messages: a topic filter (with + and #) and an optional JSON payload subset.
type Match struct {
	Topic      string
	Payload    any  // decoded YAML: map[string]any, []any, string, float64, bool, nil
	HasPayload bool // Payload was given (a null payload is then a real constraint)
	QoS        int  // -1 when any QoS is accepted
	Retained   *bool
	snapshot   bool // judged against a retained snapshot: every message there is a replay
}

func (m Match) String() string {
	s := m.Topic
	if m.HasPayload {
		s += " " + compactJSON(m.Payload)
	}
	if m.QoS >= 0 {
		s += fmt.Sprintf(" qos %d", m.QoS)
	}
	if m.Retained != nil {
		s += fmt.Sprintf(" retained=%t", *m.Retained)
	}
	return s
}

// Rule makes the scenario's controller react to what it observes, as the platform under test
// would: when a message matches On, the rule sends its command or applies its stimulus.
// "{device}", "{kind}" and "{site}" in the target and in string arguments stand for the parts of
// the matched topic; "{payload.NAME}" for a field of the matched payload.
type Rule struct {
	Pos      Pos
	Name     string
	On       Match
	Command  *Command
	Stimulus *Stimulus
	Delay    time.Duration
	Max      int // fire at most this often; 0 means no limit
}

// Label names the rule in messages.
func (r *Rule) Label() string {
	if r.Name != "" {
		return fmt.Sprintf("react rule %q", r.Name)
	}
	return fmt.Sprintf("react rule at line %d", r.Pos.Line)
}

// RequiresCapability reports whether the scenario needs a broker lifecycle control.
func (s *Scenario) RequiresCapability(c string) bool {
	for _, r := range s.Requires {
		if r == c {
			return true
		}
	}
	return false
}

func sortedUnique(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, s := range in {
		if i == 0 || s != in[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// fmtDur prints a duration the way scenario files write it: 0s, 1.5s, 250ms, 2m0s.
func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.3f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
