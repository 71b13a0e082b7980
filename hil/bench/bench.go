// Package bench reads bench files: the YAML description of a hardware-in-the-loop bench — which
// relay drives which terminal of the controller under test, which sense input reads which of its
// outputs, active levels, pulse limits, debounce, interlocks, loopback pairs for the self-test, and
// the controller's MQTT identity.
//
// Decoding is strict: an unknown key, a wrong type, an unknown driver, a pin used twice, wiring to a
// terminal the controller does not have or an interlock naming an unknown relay is an *Error that
// names file:line:column and what was expected there.
package bench

import (
	"fmt"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Driver names the GPIO driver that opens a pin.
type Driver string

// The drivers a bench file may name.
const (
	GPIOChip Driver = "gpiochip" // Linux GPIO character device (/dev/gpiochipN), periph gpioioctl
	RPi      Driver = "rpi"      // Raspberry Pi SoC registers, periph bcm283x + rpi
	Sysfs    Driver = "sysfs"    // legacy /sys/class/gpio, periph sysfs
	Sim      Driver = "sim"      // simulated wired pins in process (hil/sim), for CI
)

// Drivers lists every driver name, in the order they are documented.
var Drivers = []Driver{GPIOChip, RPi, Sysfs, Sim}

// Contact is the relay contact a wire is landed on.
type Contact string

// Relay contacts.
const (
	NormallyOpen   Contact = "no" // terminal active while the relay is energised
	NormallyClosed Contact = "nc" // terminal active while the relay is released
)

// Bench is a decoded, validated bench file.
type Bench struct {
	Name       string
	Path       string // the file it was read from
	Controller Controller
	Relays     []Relay
	Inputs     []Input
	Drive      []DriveWire // relay contact → controller input terminal
	Sense      []SenseWire // controller output terminal → sense input
	Interlocks []Interlock
	Loopbacks  []Loopback
	Limits     Limits
	Sim        SimOptions
}

// Controller is the device under test and its MQTT identity.
type Controller struct {
	Kind      string // "gate"
	Site      string
	ID        string // device id in its topics: acs/{site}/{kind}/{id}/...
	ClientID  string // MQTT client id; defaults to ID
	Broker    string // "embedded" (the reference broker, in process), "mosquitto" (Debian's, started for the run) or mqtt://host:port, tcp://host:port
	Keepalive time.Duration
}

// Prefix is the controller's topic prefix, acs/{site}/{kind}/{id}.
func (c Controller) Prefix() string { return "acs/" + c.Site + "/" + c.Kind + "/" + c.ID }

// Relay is one relay channel driven by a GPIO output.
type Relay struct {
	Name     string
	Driver   Driver
	Pin      string
	Active   gpio.Level    // the pin level that energises the relay; the other level is safe
	MaxPulse time.Duration // the longest the relay may stay energised before the watchdog releases it
}

// Safe is the pin level that leaves the relay released.
func (r Relay) Safe() gpio.Level { return !r.Active }

// Input is one sense input read through a GPIO input.
type Input struct {
	Name     string
	Driver   Driver
	Pin      string
	Active   gpio.Level // the pin level that means the controller output is on
	Pull     gpio.Pull  // gpio.PullUp, gpio.PullDown or gpio.Float
	Debounce time.Duration
	Edge     gpio.Edge // gpio.RisingEdge, gpio.FallingEdge or gpio.BothEdges
}

// DriveWire lands a relay contact on a controller input terminal.
type DriveWire struct {
	Relay    string
	Terminal string
	Contact  Contact
}

// SenseWire lands a controller output terminal on a sense input.
type SenseWire struct {
	Terminal string
	Input    string
}

// Interlock forbids any two of its members being active together. Between relays it is enforced:
// a Set that would break it fails and changes no pin. Between inputs it is watched: the controller
// breaking it is a safety event.
type Interlock struct {
	Relays []string // set when the members are relays
	Inputs []string // set when the members are inputs
}

// Loopback is a relay wired straight to a sense input, for the self-test.
type Loopback struct {
	Relay string
	Input string
}

// Limits bound the timings the HIL suite measures.
type Limits struct {
	CommandToLock   time.Duration // open command published → lock output edge
	ButtonToEvent   time.Duration // open-button pulse → evt and new state published
	PhotoEyeReverse time.Duration // photo-eye broken while closing → motor reverses
	WillFactor      float64       // power cut → will published within WillFactor × keepalive
	Pulse           time.Duration // length of a button pulse
}

// Default limits, used where the bench file does not set them.
var DefaultLimits = Limits{
	CommandToLock:   time.Second,
	ButtonToEvent:   2 * time.Second,
	PhotoEyeReverse: 2 * time.Second,
	WillFactor:      1.5,
	Pulse:           300 * time.Millisecond,
}

// SimOptions shape the simulated bench (pins with driver sim).
type SimOptions struct {
	Seed        int64         // seeds contact bounce; logged with every run so that it can be replayed
	Propagation time.Duration // wire delay between a pin and a controller terminal
	Bounce      int           // extra edges of contact bounce on each sense input change
	BounceSpan  time.Duration // the bounce edges fall within this time after the change
	Travel      time.Duration // gate travel time, open ↔ closed, of the simulated controller
}

// DefaultSim is used where the bench file has no sim section.
var DefaultSim = SimOptions{Seed: 1, Propagation: time.Millisecond, Bounce: 2, BounceSpan: time.Millisecond, Travel: 2 * time.Second}

// Load reads and validates the bench file at path.
func Load(path string) (*Bench, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bench file: %w", err)
	}
	return Parse(path, data)
}

// UsesDriver reports whether any relay or input of the bench is opened with driver d.
func (b *Bench) UsesDriver(d Driver) bool {
	for _, r := range b.Relays {
		if r.Driver == d {
			return true
		}
	}
	for _, in := range b.Inputs {
		if in.Driver == d {
			return true
		}
	}
	return false
}

// Relay returns the relay called name.
func (b *Bench) Relay(name string) (Relay, bool) {
	for _, r := range b.Relays {
		if r.Name == name {
			return r, true
		}
	}
	return Relay{}, false
}

// Input returns the input called name.
func (b *Bench) Input(name string) (Input, bool) {
	for _, in := range b.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// RelayFor returns the relay wired to a controller input terminal.
func (b *Bench) RelayFor(terminal string) (DriveWire, bool) {
	for _, w := range b.Drive {
		if w.Terminal == terminal {
			return w, true
		}
	}
	return DriveWire{}, false
}

// InputFor returns the sense input wired to a controller output terminal.
func (b *Bench) InputFor(terminal string) (SenseWire, bool) {
	for _, w := range b.Sense {
		if w.Terminal == terminal {
			return w, true
		}
	}
	return SenseWire{}, false
}

// Terminals are the terminals of a controller kind.
type Terminals struct {
	Inputs  []string // driven by relays
	Outputs []string // read by sense inputs
}

// ControllerKinds lists the terminals of each controller kind a bench may wire to.
var ControllerKinds = map[string]Terminals{
	"gate": {
		Inputs:  []string{"open_button", "close_button", "loop", "photo_eye", "power"},
		Outputs: []string{"motor_open", "motor_close", "lock"},
	},
}
