// Package turnstile simulates a pedestrian turnstile controller with a card reader: locked by
// default, one passage allowed for a window after cmd/allow_pass, free in fire mode, a lockdown
// mode, tailgating alarms and in/out counters.
package turnstile

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Modes reported in the state.
const (
	ModeNormal = "normal" // locked arms, one passage per allow_pass
	ModeLocked = "locked" // lockdown: allow_pass is refused
	ModeFree   = "free"   // fire mode: every passage allowed
	ModeJammed = "jammed" // the arm does not turn
	ModeFault  = "fault"  // the lock solenoid relay is stuck
)

// Arm positions reported in the state.
const (
	ArmLocked  = "locked"
	ArmAllowed = "allowed"
	ArmFree    = "free"
)

// Config is a turnstile's own configuration.
type Config struct {
	// PassWindow is how long one allowed passage stays allowed, default 5s.
	PassWindow time.Duration `yaml:"pass_window,omitempty" json:"pass_window,omitempty"`
	// Cards are the card numbers swipes pick from (seeded); default eight generated numbers.
	Cards []string `yaml:"cards,omitempty" json:"cards,omitempty"`
}

// Machine is the turnstile state machine.
type Machine struct {
	cfg Config

	mode       string
	arm        string
	jammed     bool
	stuck      bool
	in, out    uint64
	tamper     uint64
	allowCorr  string
	allowDir   string
	stopWindow func()
}

var _ device.Machine = (*Machine)(nil)

// NewMachine returns a turnstile state machine.
func NewMachine(cfg Config) *Machine {
	if cfg.PassWindow == 0 {
		cfg.PassWindow = 5 * time.Second
	}
	return &Machine{cfg: cfg}
}

// New builds a turnstile device.
func New(cfg device.Config, tc Config, opts ...device.Option) (*device.Sim, error) {
	if tc.PassWindow < 0 {
		return nil, fmt.Errorf("device %s: turnstile pass_window %s is negative", cfg.ID, tc.PassWindow)
	}
	return device.New(cfg, NewMachine(tc), opts...)
}

// Kind returns "turnstile".
func (m *Machine) Kind() string { return device.KindTurnstile }

// Model returns the default model name.
func (m *Machine) Model() string { return "GH-TRIPOD-2" }

// Boot starts locked, counters at zero (they are volatile).
func (m *Machine) Boot(env device.Env) {
	m.mode, m.arm = ModeNormal, ArmLocked
	m.jammed, m.stuck = false, false
	m.in, m.out, m.tamper = 0, 0, 0
	m.stopWindow = nil
	if len(m.cfg.Cards) == 0 {
		for range 8 {
			m.cfg.Cards = append(m.cfg.Cards, fmt.Sprintf("%08X", env.Rand().Uint32()))
		}
	}
}

// PowerOff forgets the state.
func (m *Machine) PowerOff(device.Env) { m.stopWindow = nil }

// State is the retained state.
func (m *Machine) State() map[string]any {
	mode := m.mode
	switch {
	case m.jammed:
		mode = ModeJammed
	case m.stuck:
		mode = ModeFault
	}
	return map[string]any{"mode": mode, "arm": m.arm, "in": m.in, "out": m.out, "tamper": m.tamper}
}

// Command handles allow_pass, lock, unlock and free.
func (m *Machine) Command(env device.Env, cmd device.Command) {
	switch cmd.Name {
	case "allow_pass":
		dir := ""
		if raw, ok := cmd.Args["direction"]; ok {
			if err := json.Unmarshal(raw, &dir); err != nil || (dir != "in" && dir != "out") {
				env.Ack(cmd, device.Rejected, `malformed payload: field direction must be "in" or "out"`)
				return
			}
		}
		switch {
		case m.jammed:
			env.Ack(cmd, device.Failed, "mechanical jam: the arm does not turn")
		case m.stuck:
			env.Ack(cmd, device.Failed, "relay lock stuck: the solenoid does not follow the controller")
		case m.mode == ModeLocked:
			env.Ack(cmd, device.Rejected, "turnstile is locked down: unlock it first")
		case m.mode == ModeFree:
			env.Ack(cmd, device.OK, "already free (fire mode)")
		default:
			m.allow(env, cmd.Corr, dir)
			env.Ack(cmd, device.OK, "")
		}
	case "lock":
		m.closeWindow()
		m.mode, m.arm = ModeLocked, ArmLocked
		env.StateChanged()
		env.Ack(cmd, device.OK, "")
	case "unlock":
		m.closeWindow()
		m.mode, m.arm = ModeNormal, ArmLocked
		env.StateChanged()
		env.Ack(cmd, device.OK, "")
	case "free":
		m.closeWindow()
		m.mode, m.arm = ModeFree, ArmFree
		env.StateChanged()
		env.Ack(cmd, device.OK, "")
	case "open", "close", "hold_open", "release", "snapshot":
		env.Ack(cmd, device.Rejected, "command "+cmd.Name+" does not apply to a turnstile (it takes allow_pass, lock, unlock, free, reboot)")
	default:
		env.Ack(cmd, device.Rejected, "unknown command "+cmd.Name+" (a turnstile takes allow_pass, lock, unlock, free, reboot)")
	}
}

// allow opens a window for one passage; a new allow_pass restarts it.
func (m *Machine) allow(env device.Env, corr, dir string) {
	m.closeWindow()
	m.arm, m.allowCorr, m.allowDir = ArmAllowed, corr, dir
	m.stopWindow = env.After(m.cfg.PassWindow, func() {
		m.stopWindow = nil
		m.arm = ArmLocked
		env.Event("timeout", 1, m.allowCorr, map[string]any{"window_ms": m.cfg.PassWindow.Milliseconds()})
		env.StateChanged()
	})
	env.StateChanged()
}

func (m *Machine) closeWindow() {
	if m.stopWindow != nil {
		m.stopWindow()
		m.stopWindow = nil
	}
}

// Stimulate handles card swipes and passages.
func (m *Machine) Stimulate(env device.Env, s device.Stimulus) error {
	switch s.Kind {
	case device.StimCard:
		card := s.Card
		if card == "" {
			card = m.cfg.Cards[env.Rand().IntN(len(m.cfg.Cards))]
		}
		env.Event("card", 1, "", map[string]any{"card": card})
		return nil
	case device.StimPassage:
		dir := s.Direction
		if dir == "" {
			dir = "in"
		}
		if dir != "in" && dir != "out" {
			return fmt.Errorf("passage direction %q: want in or out", dir)
		}
		if m.jammed {
			return fmt.Errorf("passage: the arm is jammed, nobody can pass")
		}
		m.pass(env, dir)
		return nil
	}
	return fmt.Errorf("stimulus %q does not apply to a turnstile (want card, passage)", s.Kind)
}

func (m *Machine) pass(env device.Env, dir string) {
	allowed := m.arm == ArmFree || (m.arm == ArmAllowed && (m.allowDir == "" || m.allowDir == dir))
	if !allowed {
		// Someone went through a locked arm: tailgating (or climbing) raises the alarm.
		m.tamper++
		env.Event("tamper", 1, "", map[string]any{"reason": "tailgating", "direction": dir})
		env.StateChanged()
		return
	}
	corr := ""
	if m.arm == ArmAllowed {
		corr = m.allowCorr
		m.closeWindow()
		m.arm = ArmLocked
	}
	if dir == "in" {
		m.in++
	} else {
		m.out++
	}
	env.Event("passage", 1, corr, map[string]any{"direction": dir})
	env.StateChanged()
}

// Inject applies jam and stuck_relay (the lock solenoid).
func (m *Machine) Inject(env device.Env, f fault.Fault) (bool, error) {
	switch f.Kind {
	case fault.Jam:
		m.jammed = true
	case fault.StuckRelay:
		m.stuck = true
	default:
		return false, nil
	}
	m.closeWindow()
	if m.arm == ArmAllowed {
		m.arm = ArmLocked
	}
	env.StateChanged()
	return true, nil
}

// Clear ends jam and stuck_relay.
func (m *Machine) Clear(env device.Env, kind string) {
	switch kind {
	case fault.Jam:
		m.jammed = false
	case fault.StuckRelay:
		m.stuck = false
	}
	env.StateChanged()
}
