package gate

import (
	"fmt"
	"strings"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
)

// Gate is a simulated gate controller: a device.Sim running a Machine, with its terminals.
type Gate struct {
	*device.Sim
	m *Machine
}

var _ device.Device = (*Gate)(nil)

// New builds a gate device. It is started with Start and stopped with Close.
func New(cfg device.Config, gc Config, opts ...device.Option) (*Gate, error) {
	if err := gc.Validate(); err != nil {
		return nil, fmt.Errorf("device %s: %w", cfg.ID, err)
	}
	m := NewMachine(gc)
	s, err := device.New(cfg, m, opts...)
	if err != nil {
		return nil, err
	}
	return &Gate{Sim: s, m: m}, nil
}

// SetInput sets an input terminal: "open_button", "close_button", "loop", "photo_eye" or "power"
// (active = supply on; inactive is a power cut). It returns once the controller has reacted,
// or at once when called from an output callback. An unknown terminal is an error naming it.
func (g *Gate) SetInput(terminal string, active bool) error {
	switch terminal {
	case InPower:
		return g.SetPower(active)
	case InOpenButton, InCloseButton, InLoop, InPhotoEye:
		return g.Exec(func(env device.Env) error { return g.m.SetInput(env, terminal, active) })
	}
	return fmt.Errorf("gate %s: unknown input terminal %q (want %s)", g.ID(), terminal, strings.Join(Inputs, ", "))
}

// Stimulate applies a physical event; an "input" stimulus on the power terminal switches the supply.
func (g *Gate) Stimulate(s device.Stimulus) error {
	if s.Kind == device.StimInput && s.Terminal == InPower {
		return g.SetPower(s.Active)
	}
	return g.Sim.Stimulate(s)
}

// Output returns the current level of an output terminal ("motor_open", "motor_close", "lock").
func (g *Gate) Output(terminal string) (bool, error) {
	var level bool
	err := g.Exec(func(device.Env) error {
		for _, t := range Outputs {
			if t == terminal {
				level = g.m.Output(terminal)
				return nil
			}
		}
		return fmt.Errorf("gate %s: unknown output terminal %q (want %s)", g.ID(), terminal, strings.Join(Outputs, ", "))
	})
	return level, err
}
