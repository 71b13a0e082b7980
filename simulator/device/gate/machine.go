// Package gate simulates a vehicle gate (barrier) controller: the motor, the lock relay, the
// loop detector, the photo-eye, the push-buttons and, on an exit gate, the parking charge.
//
// Machine is the pure state machine (closed → opening → open → closing → closed). Gate is the
// device: a Machine in a device.Sim, plus the terminal contract a hardware bench wires to:
// SetInput for the inputs "open_button", "close_button", "loop", "photo_eye" and "power", and
// OnOutput for the outputs "motor_open", "motor_close" and "lock".
package gate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Positions of the barrier.
const (
	Closed  = "closed"
	Opening = "opening"
	Open    = "open"
	Closing = "closing"
)

// Modes reported in the state.
const (
	ModeNormal = "normal"
	ModeJammed = "jammed" // a mechanical jam stopped the barrier half way
	ModeFault  = "fault"  // a relay does not follow the controller (stuck_relay)
)

// Input terminals.
const (
	InOpenButton  = "open_button"
	InCloseButton = "close_button"
	InLoop        = "loop"      // active: a vehicle is on the loop detector
	InPhotoEye    = "photo_eye" // active: the beam is interrupted
	InPower       = "power"     // active: the supply is on
)

// Output terminals.
const (
	OutMotorOpen  = "motor_open"
	OutMotorClose = "motor_close"
	OutLock       = "lock" // active: the lock is released (energised), while opening and open
)

// Inputs and Outputs list the terminals.
var (
	Inputs  = []string{InOpenButton, InCloseButton, InLoop, InPhotoEye, InPower}
	Outputs = []string{OutMotorOpen, OutMotorClose, OutLock}
)

// Config is a gate's own configuration.
type Config struct {
	// Role is "entry" (default) or "exit"; an exit gate bills each passage.
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// TravelTime is how long the barrier takes to open or close, default 3s.
	TravelTime time.Duration `yaml:"travel_time,omitempty" json:"travel_time,omitempty"`
	// HoldTime is how long the barrier stays open before closing by itself (once the loop and
	// the photo-eye are clear), default 5s.
	HoldTime time.Duration `yaml:"hold_time,omitempty" json:"hold_time,omitempty"`
	// FeeMin and FeeMax bound the seeded parking fee of an exit passage, in cents: default 200, 1500.
	FeeMin int `yaml:"fee_min,omitempty" json:"fee_min,omitempty"`
	FeeMax int `yaml:"fee_max,omitempty" json:"fee_max,omitempty"`
	// Currency of the fee, default "EUR".
	Currency string `yaml:"currency,omitempty" json:"currency,omitempty"`
}

func (c Config) withDefaults() Config {
	if c.Role == "" {
		c.Role = "entry"
	}
	if c.TravelTime == 0 {
		c.TravelTime = 3 * time.Second
	}
	if c.HoldTime == 0 {
		c.HoldTime = 5 * time.Second
	}
	if c.FeeMin == 0 && c.FeeMax == 0 {
		c.FeeMin, c.FeeMax = 200, 1500
	}
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	return c
}

// Validate names the first problem of a gate configuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Role != "entry" && c.Role != "exit" {
		return fmt.Errorf("gate role %q: want entry or exit", c.Role)
	}
	if c.TravelTime < 0 || c.HoldTime < 0 {
		return fmt.Errorf("gate travel_time and hold_time must not be negative")
	}
	if c.FeeMin < 0 || c.FeeMax < c.FeeMin {
		return fmt.Errorf("gate fee range %d..%d cents is empty or negative", c.FeeMin, c.FeeMax)
	}
	return nil
}

// Machine is the gate controller's state machine. Its methods run on the device loop.
type Machine struct {
	cfg Config
	on  bool

	// The physical input levels: the world, kept across power cuts and read again at boot.
	inputs map[string]bool

	position   string
	hold       bool // hold_open: no auto-close until release
	jammed     bool
	stuck      string // the output relay that is stuck, "" when none
	stuckLevel bool
	outputs    map[string]bool // the levels the relays actually have
	passages   uint64

	bounceEdges    int
	bounceInterval time.Duration

	cancelMotion func()
	cancelClose  func()
}

var _ device.Machine = (*Machine)(nil)

// NewMachine returns a gate state machine.
func NewMachine(cfg Config) *Machine {
	return &Machine{cfg: cfg.withDefaults(), inputs: map[string]bool{InPower: true}, outputs: map[string]bool{}}
}

// Kind returns "gate".
func (m *Machine) Kind() string { return device.KindGate }

// Model returns the default model name.
func (m *Machine) Model() string { return "GH-BARRIER-" + strings.ToUpper(m.cfg.Role) }

// Boot starts closed with every relay released, then reads the inputs.
func (m *Machine) Boot(env device.Env) {
	m.on = true
	m.position = Closed
	m.hold, m.jammed, m.stuck = false, false, ""
	m.cancelMotion, m.cancelClose = nil, nil
	m.bounceEdges = 0
	m.applyOutputs(env)
}

// PowerOff releases every relay and forgets the state.
func (m *Machine) PowerOff(env device.Env) {
	m.on = false
	m.cancelMotion, m.cancelClose = nil, nil
	for _, t := range Outputs {
		m.setOutput(env, t, false)
	}
}

// State is the retained state.
func (m *Machine) State() map[string]any {
	st := map[string]any{
		"position":   m.position,
		"mode":       m.mode(),
		"hold_open":  m.hold,
		"vehicle":    m.inputs[InLoop],
		"obstructed": m.inputs[InPhotoEye],
		"role":       m.cfg.Role,
		"passages":   m.passages,
	}
	if m.stuck != "" {
		st["fault"] = "stuck_relay:" + m.stuck
	}
	return st
}

// Position returns the barrier position.
func (m *Machine) Position() string { return m.position }

// Output returns the level of an output relay.
func (m *Machine) Output(terminal string) bool { return m.outputs[terminal] }

func (m *Machine) mode() string {
	switch {
	case m.jammed:
		return ModeJammed
	case m.stuck != "":
		return ModeFault
	}
	return ModeNormal
}

// Command handles open, close, hold_open and release; reboot is the Sim's.
func (m *Machine) Command(env device.Env, cmd device.Command) {
	switch cmd.Name {
	case "open":
		m.ack(env, cmd, m.open(env))
	case "hold_open":
		m.hold = true
		m.stopAutoClose()
		m.ack(env, cmd, m.open(env))
		env.StateChanged()
	case "release":
		m.hold = false
		m.armAutoClose(env)
		env.StateChanged()
		env.Ack(cmd, device.OK, "")
	case "close":
		m.ack(env, cmd, m.close(env))
	case "allow_pass", "lock", "unlock", "free", "snapshot":
		env.Ack(cmd, device.Rejected, "command "+cmd.Name+" does not apply to a gate (it takes open, close, hold_open, release, reboot)")
	default:
		env.Ack(cmd, device.Rejected, "unknown command "+cmd.Name+" (a gate takes open, close, hold_open, release, reboot)")
	}
}

// outcome is the result of a requested movement.
type outcome struct {
	result device.Result
	reason string
}

var ok = outcome{result: device.OK}

func (m *Machine) ack(env device.Env, cmd device.Command, o outcome) {
	env.Ack(cmd, o.result, o.reason)
}

// open starts (or keeps) the barrier opening.
func (m *Machine) open(env device.Env) outcome {
	if m.stuck != "" {
		return outcome{device.Failed, "relay " + m.stuck + " stuck: contact feedback disagrees with the controller"}
	}
	switch m.position {
	case Open:
		m.armAutoClose(env)
		return ok
	case Opening:
		if m.jammed {
			return outcome{device.Failed, "mechanical jam: barrier stuck while opening"}
		}
		return ok
	}
	m.move(env, Opening)
	if m.jammed {
		return outcome{device.Failed, "mechanical jam: barrier stuck while opening"}
	}
	return ok
}

// close starts closing, unless something is under the barrier.
func (m *Machine) close(env device.Env) outcome {
	if m.stuck != "" {
		return outcome{device.Failed, "relay " + m.stuck + " stuck: contact feedback disagrees with the controller"}
	}
	if m.inputs[InLoop] {
		return outcome{device.Rejected, "vehicle on the loop detector: the barrier will not close on it"}
	}
	if m.inputs[InPhotoEye] {
		return outcome{device.Rejected, "photo-eye beam interrupted: the barrier will not close on an obstruction"}
	}
	m.hold = false
	switch m.position {
	case Closed:
		return ok
	case Closing:
		if m.jammed {
			return outcome{device.Failed, "mechanical jam: barrier stuck while closing"}
		}
		return ok
	}
	m.move(env, Closing)
	if m.jammed {
		return outcome{device.Failed, "mechanical jam: barrier stuck while closing"}
	}
	return ok
}

// move starts a movement: relays first, then the barrier travels unless jammed.
func (m *Machine) move(env device.Env, to string) {
	m.stopMotion()
	m.stopAutoClose()
	m.position = to
	m.applyOutputs(env)
	env.StateChanged()
	if !m.jammed {
		m.cancelMotion = env.After(m.cfg.TravelTime, func() { m.arrive(env) })
	}
}

// arrive ends a movement.
func (m *Machine) arrive(env device.Env) {
	m.cancelMotion = nil
	switch m.position {
	case Opening:
		m.position = Open
	case Closing:
		m.position = Closed
	default:
		return
	}
	m.applyOutputs(env)
	env.StateChanged()
	if m.position == Open {
		m.armAutoClose(env)
	}
}

// applyOutputs drives the relays for the current position: motor_open while opening,
// motor_close while closing, the lock released while opening and open. Relays switch break
// before make: everything that goes off does so before anything goes on, so the two motor
// relays are never energised together, and the lock releases before the motor pulls.
func (m *Machine) applyOutputs(env device.Env) {
	want := map[string]bool{
		OutLock:       m.position == Opening || m.position == Open,
		OutMotorOpen:  m.position == Opening && !m.jammed,
		OutMotorClose: m.position == Closing && !m.jammed,
	}
	for _, t := range []string{OutMotorOpen, OutMotorClose, OutLock} {
		if !want[t] {
			m.setOutput(env, t, false)
		}
	}
	for _, t := range []string{OutLock, OutMotorOpen, OutMotorClose} {
		if want[t] {
			m.setOutput(env, t, true)
		}
	}
}

func (m *Machine) setOutput(env device.Env, terminal string, active bool) {
	if terminal == m.stuck {
		active = m.stuckLevel
	}
	if m.outputs[terminal] == active {
		return
	}
	m.outputs[terminal] = active
	env.Output(terminal, active)
}

func (m *Machine) stopMotion() {
	if m.cancelMotion != nil {
		m.cancelMotion()
		m.cancelMotion = nil
	}
}

func (m *Machine) stopAutoClose() {
	if m.cancelClose != nil {
		m.cancelClose()
		m.cancelClose = nil
	}
}

// armAutoClose (re)starts the hold timer when the barrier is open, not held, and nothing is
// under it.
func (m *Machine) armAutoClose(env device.Env) {
	m.stopAutoClose()
	if m.position != Open || m.hold || m.inputs[InLoop] || m.inputs[InPhotoEye] || m.stuck != "" {
		return
	}
	m.cancelClose = env.After(m.cfg.HoldTime, func() {
		m.cancelClose = nil
		m.close(env)
	})
}

// Stimulate maps physical events to input edges.
func (m *Machine) Stimulate(env device.Env, s device.Stimulus) error {
	switch s.Kind {
	case device.StimVehicleArrive:
		return m.SetInput(env, InLoop, true)
	case device.StimVehicleLeave:
		return m.SetInput(env, InLoop, false)
	case device.StimPhotoEye:
		return m.SetInput(env, InPhotoEye, s.Active)
	case device.StimOpenButton:
		return m.press(env, InOpenButton)
	case device.StimCloseButton:
		return m.press(env, InCloseButton)
	case device.StimInput:
		if s.Terminal == InPower {
			return fmt.Errorf("gate: the power terminal is switched by the device, not the state machine")
		}
		return m.SetInput(env, s.Terminal, s.Active)
	}
	return fmt.Errorf("stimulus %q does not apply to a gate (want vehicle_arrive, vehicle_leave, photo_eye, open_button, close_button, input)", s.Kind)
}

func (m *Machine) press(env device.Env, terminal string) error {
	if err := m.SetInput(env, terminal, true); err != nil {
		return err
	}
	return m.SetInput(env, terminal, false)
}

// SetInput applies a level on an input terminal other than power. An edge bounces when the
// bounce fault is active.
func (m *Machine) SetInput(env device.Env, terminal string, active bool) error {
	if !slices.Contains(Inputs, terminal) || terminal == InPower {
		return fmt.Errorf("unknown gate input terminal %q (want %s)", terminal, strings.Join(Inputs, ", "))
	}
	if m.inputs[terminal] == active {
		return nil
	}
	m.edge(env, terminal, active)
	if m.bounceEdges > 0 && m.on {
		// Contact bounce: the contact opens and closes again a few times within milliseconds.
		for i := 1; i <= m.bounceEdges; i++ {
			at := time.Duration(2*i-1) * m.bounceInterval
			env.After(at, func() { m.edge(env, terminal, !active) })
			env.After(at+m.bounceInterval, func() { m.edge(env, terminal, active) })
		}
	}
	return nil
}

// edge records a level change and reacts to it.
func (m *Machine) edge(env device.Env, terminal string, active bool) {
	if m.inputs[terminal] == active {
		return
	}
	m.inputs[terminal] = active
	if !m.on {
		return
	}
	switch terminal {
	case InOpenButton:
		if active {
			m.open(env)
		}
	case InCloseButton:
		if active {
			m.close(env)
		}
	case InLoop:
		if active {
			m.stopAutoClose()
			if m.position == Closing && !m.jammed {
				// The loop is also a safety input: never close onto a vehicle.
				env.Event("obstruction", 1, "", map[string]any{"source": "loop", "position": Closing, "action": "reverse"})
				m.move(env, Opening)
				return
			}
			env.StateChanged()
			return
		}
		m.vehicleLeft(env)
	case InPhotoEye:
		if active {
			m.stopAutoClose()
			if m.position == Closing && !m.jammed {
				env.Event("obstruction", 1, "", map[string]any{"source": "photo_eye", "position": Closing, "action": "reverse"})
				m.move(env, Opening)
				return
			}
			env.StateChanged()
			return
		}
		env.StateChanged()
		m.armAutoClose(env)
	}
}

// vehicleLeft publishes the passage (and, on an exit gate, its charge) when the vehicle went
// through; a vehicle that backs off a closed barrier did not pass.
func (m *Machine) vehicleLeft(env device.Env) {
	if m.position == Closed {
		env.StateChanged()
		return
	}
	m.passages++
	dir := "in"
	if m.cfg.Role == "exit" {
		dir = "out"
	}
	seq := env.Event("passage", 1, "", map[string]any{"direction": dir, "role": m.cfg.Role, "count": m.passages})
	if m.cfg.Role == "exit" {
		cents := m.cfg.FeeMin
		if m.cfg.FeeMax > m.cfg.FeeMin {
			cents += env.Rand().IntN(m.cfg.FeeMax - m.cfg.FeeMin + 1)
		}
		// Billing is exactly-once: QoS 2, one charge per passage, identified by the passage.
		env.Event("charge", 2, "", map[string]any{
			"charge_id":    fmt.Sprintf("%s-%d", env.ID(), seq),
			"passage_seq":  seq,
			"amount_cents": cents,
			"amount":       float64(cents) / 100,
			"currency":     m.cfg.Currency,
		})
	}
	env.StateChanged()
	m.armAutoClose(env)
}

// Inject applies jam, stuck_relay and bounce.
func (m *Machine) Inject(env device.Env, f fault.Fault) (bool, error) {
	switch f.Kind {
	case fault.Jam:
		m.jammed = true
		m.stopMotion()
		m.applyOutputs(env)
		env.StateChanged()
	case fault.StuckRelay:
		t, err := f.StringParam("terminal", OutLock)
		if err != nil {
			return true, err
		}
		if !slices.Contains(Outputs, t) {
			return true, fmt.Errorf("fault stuck_relay: param terminal %q is not a gate output (want %s)", t, strings.Join(Outputs, ", "))
		}
		m.stuck, m.stuckLevel = t, m.outputs[t]
		m.stopAutoClose()
		env.StateChanged()
	case fault.Bounce:
		n, err := f.IntParam("edges", 2)
		if err != nil {
			return true, err
		}
		iv, err := f.DurationParam("interval", 3*time.Millisecond)
		if err != nil {
			return true, err
		}
		m.bounceEdges, m.bounceInterval = n, iv
	default:
		return false, nil
	}
	return true, nil
}

// Clear ends jam, stuck_relay and bounce.
func (m *Machine) Clear(env device.Env, kind string) {
	switch kind {
	case fault.Jam:
		m.jammed = false
		m.applyOutputs(env)
		if m.position == Opening || m.position == Closing {
			m.cancelMotion = env.After(m.cfg.TravelTime, func() { m.arrive(env) })
		}
		env.StateChanged()
	case fault.StuckRelay:
		m.stuck = ""
		m.applyOutputs(env)
		m.armAutoClose(env)
		env.StateChanged()
	case fault.Bounce:
		m.bounceEdges = 0
	}
}
