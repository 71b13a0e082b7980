package device

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
)

// Profile is what the certifier knows about a kind of device: which requirements apply, how to
// make the device publish (a command every such device answers, the physical events that make it
// report), and which of its events answer which command.
type Profile struct {
	Name string
	// Kind is the {kind} level of the device's topics; empty for the protocol profile.
	Kind string
	// Contract is set for profiles that follow the device contract; the protocol profile judges
	// only the MQTT requirements.
	Contract bool
	// Command is a command the device carries out in any normal state and answers "ok"; the
	// certifier sends it to measure the round trip and to make the device publish at QoS 1.
	Command string
	// Follow are commands sent once after Command; their acks must carry their corr, and the
	// events of Answers must follow.
	Follow []string
	// Answers maps a command to the event type that answers it and must carry its corr.
	Answers map[string]string
	// Stimuli are physical events the certifier applies when it can reach the device's physical
	// side (a HIL bench, a simulated device in process), each with the events it must produce.
	Stimuli []Stimulus
}

// Stimulus is a physical sequence and the events it must produce.
type Stimulus struct {
	Name string
	// Needs is a command that brings the device into the state the sequence needs (a gate must be
	// open for a vehicle to pass), and Ready recognises that state in the device's state payload.
	Needs string
	Ready func(state map[string]any) bool
	Do    []device.Stimulus
	// Events are the event types the sequence must produce. A device may publish more (an exit
	// gate bills each passage at QoS 2).
	Events []string
}

// ProfileProtocol judges any MQTT client on the protocol alone.
const ProfileProtocol = "protocol"

var profiles = map[string]Profile{
	device.KindGate: {
		Name: device.KindGate, Kind: device.KindGate, Contract: true,
		Command: "open",
		Stimuli: []Stimulus{{
			Name:  "a vehicle passes the open gate",
			Needs: "open",
			Ready: func(st map[string]any) bool { return st["position"] == "open" },
			Do:    []device.Stimulus{{Kind: device.StimVehicleArrive}, {Kind: device.StimVehicleLeave}},
			// An exit gate also bills the passage: evt/charge at QoS 2.
			Events: []string{"passage"},
		}},
	},
	device.KindTurnstile: {
		Name: device.KindTurnstile, Kind: device.KindTurnstile, Contract: true,
		Command: "unlock",
		Follow:  []string{"allow_pass"},
		Answers: map[string]string{"allow_pass": "timeout"},
		Stimuli: []Stimulus{{Name: "a card is swiped", Do: []device.Stimulus{{Kind: device.StimCard}}, Events: []string{"card"}}},
	},
	device.KindCamera: {
		Name: device.KindCamera, Kind: device.KindCamera, Contract: true,
		Command: "snapshot",
		Answers: map[string]string{"snapshot": "snapshot"},
		Stimuli: []Stimulus{{Name: "something moves in view", Do: []device.Stimulus{{Kind: device.StimMotion}}, Events: []string{"motion"}}},
	},
	ProfileProtocol: {Name: ProfileProtocol},
}

// Profiles returns the profile names, sorted.
func Profiles() []string {
	out := make([]string, 0, len(profiles))
	for name := range profiles {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// LookupProfile returns the profile of that name.
func LookupProfile(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("profile %q is unknown (want one of %s)", name, strings.Join(Profiles(), ", "))
	}
	return p, nil
}

// Applies reports whether requirement r is judged under the profile.
func (p Profile) Applies(r Requirement) bool {
	return r.Scope == Protocol || p.Contract
}

// Physical is the device's physical side, when the certifier can act on it: the relays of a
// hardware-in-the-loop bench, or a simulated device in the same process. Without one, the
// requirements that need a power cut or a physical event are reported as not exercised.
type Physical interface {
	// Power switches the device's supply: off is a power cut, on boots it again.
	Power(ctx context.Context, on bool) error
	// Stimulate applies an event of the physical world (a vehicle on the loop, a card, motion).
	Stimulate(ctx context.Context, s device.Stimulus) error
}

// Stimulable is a device that takes physical events directly, as the simulated devices do.
type Stimulable interface {
	Stimulate(s device.Stimulus) error
}

// Powered is a device whose supply can be switched, as the simulated devices' can.
type Powered interface {
	SetPower(on bool) error
}

// SimulatedPhysical is the physical side of a simulated device running in this process.
func SimulatedPhysical(d interface {
	Stimulable
	Powered
}) Physical {
	return simPhysical{d}
}

type simPhysical struct {
	d interface {
		Stimulable
		Powered
	}
}

func (p simPhysical) Power(_ context.Context, on bool) error { return p.d.SetPower(on) }

func (p simPhysical) Stimulate(_ context.Context, s device.Stimulus) error { return p.d.Stimulate(s) }
