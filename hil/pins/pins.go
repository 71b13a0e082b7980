// Package pins opens the GPIO pins a bench file names, by driver: the Linux GPIO character device
// (periph gpioioctl), the Raspberry Pi SoC (periph bcm283x and rpi), legacy sysfs, or the simulated
// bench (hil/sim). Every pin comes back as a periph gpio.PinIO, so the rest of the HIL code does not
// know which driver it runs on.
//
// A pin that cannot be opened is a *PinError that says what is missing and what to check on the
// machine — never a panic, never a pin that silently does nothing.
package pins

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3/gpioioctl"
	"periph.io/x/host/v3/rpi"
	"periph.io/x/host/v3/sysfs"

	// Registers the bcm283x driver (on ARM builds) that rpi's GPIOn pins come from.
	_ "periph.io/x/host/v3/bcm283x"
)

// ErrNoHardware is wrapped by every *PinError caused by hardware the machine does not have.
var ErrNoHardware = errors.New("GPIO hardware not found")

// PinError is a pin that could not be opened: which, why, and what to check.
type PinError struct {
	Driver bench.Driver
	Pin    string
	Err    error
	Check  string // what a person should look at, e.g. "run `ls /dev/gpiochip*`"
}

func (e *PinError) Error() string {
	msg := fmt.Sprintf("%s pin %s: %v", e.Driver, e.Pin, e.Err)
	if e.Check != "" {
		msg += ": " + e.Check
	}
	return msg
}

func (e *PinError) Unwrap() error { return e.Err }

// Opener opens bench pins. Sim is the simulated bench that driver sim pins come from; it may be
// nil when the bench has none.
type Opener struct {
	Sim *sim.Board
}

// Open returns the pin called pin of driver d.
func (o *Opener) Open(d bench.Driver, pin string) (gpio.PinIO, error) {
	switch d {
	case bench.Sim:
		if o.Sim == nil {
			return nil, &PinError{Driver: d, Pin: pin, Err: errors.New("no simulated bench is running"), Check: "sim pins exist only when the bench runs with its simulated controller (gatehouse hil starts it)"}
		}
		p, err := o.Sim.Pin(pin)
		if err != nil {
			return nil, &PinError{Driver: d, Pin: pin, Err: err}
		}
		return p, nil
	case bench.GPIOChip:
		return openGPIOChip(pin)
	case bench.RPi:
		return openRPi(pin)
	case bench.Sysfs:
		return openSysfs(pin)
	}
	return nil, &PinError{Driver: d, Pin: pin, Err: fmt.Errorf("unknown driver %q", d)}
}

var (
	hostOnce  sync.Once
	hostState *driverreg.State
	hostErr   error
)

// host loads periph's host drivers once per process (periph allows a single initialisation).
func host() (*driverreg.State, error) {
	hostOnce.Do(func() { hostState, hostErr = driverreg.Init() })
	return hostState, hostErr
}

// DriverState is one periph host driver and whether it loaded on this machine.
type DriverState struct {
	Name   string
	Loaded bool
	Reason string // why it was skipped or failed
}

// HostDrivers loads periph's host drivers (once) and reports each one's state, for the self-test.
func HostDrivers() ([]DriverState, error) {
	st, err := host()
	if err != nil {
		return nil, fmt.Errorf("load periph host drivers: %w", err)
	}
	var out []DriverState
	for _, d := range st.Loaded {
		out = append(out, DriverState{Name: d.String(), Loaded: true})
	}
	for _, f := range st.Skipped {
		out = append(out, DriverState{Name: f.D.String(), Reason: "skipped: " + f.Err.Error()})
	}
	for _, f := range st.Failed {
		out = append(out, DriverState{Name: f.D.String(), Reason: "failed: " + f.Err.Error()})
	}
	return out, nil
}

func openGPIOChip(spec string) (gpio.PinIO, error) {
	chipName, line, ok := strings.Cut(spec, "/")
	if !ok {
		return nil, &PinError{Driver: bench.GPIOChip, Pin: spec, Err: errors.New("expected gpiochipN/LINE")}
	}
	dev := "/dev/" + chipName
	if err := checkDevice(bench.GPIOChip, spec, dev); err != nil {
		return nil, err
	}
	if _, err := host(); err != nil {
		return nil, &PinError{Driver: bench.GPIOChip, Pin: spec, Err: fmt.Errorf("load periph host drivers: %w", err)}
	}
	for _, chip := range gpioioctl.Chips {
		if chip.Path() != dev && chip.Name() != chipName {
			continue
		}
		var l *gpioioctl.GPIOLine
		if n, err := strconv.Atoi(line); err == nil {
			if n < 0 || n >= chip.LineCount() {
				return nil, &PinError{Driver: bench.GPIOChip, Pin: spec, Err: fmt.Errorf("%s has %d lines (0-%d); line %d does not exist", chipName, chip.LineCount(), chip.LineCount()-1, n), Check: "run `gpioinfo " + chipName + "`"}
			}
			l = chip.ByNumber(n)
		} else {
			l = chip.ByName(line)
		}
		if l == nil {
			return nil, &PinError{Driver: bench.GPIOChip, Pin: spec, Err: fmt.Errorf("%s has no line named %q", chipName, line), Check: "run `gpioinfo " + chipName + "` for the line names"}
		}
		return l, nil
	}
	return nil, &PinError{Driver: bench.GPIOChip, Pin: spec, Err: fmt.Errorf("%s exists but periph's gpioioctl driver did not open it: %w", dev, ErrNoHardware), Check: "check that this user may read " + dev + " (group gpio) and run `gpioinfo " + chipName + "`"}
}

func openRPi(spec string) (gpio.PinIO, error) {
	if !rpi.Present() {
		return nil, &PinError{Driver: bench.RPi, Pin: spec, Err: fmt.Errorf("no Raspberry Pi detected (%s): %w", rpiAbsence(), ErrNoHardware), Check: "is this a Raspberry Pi running a 32- or 64-bit ARM build of gatehouse? run `cat /proc/device-tree/model`; on other boards use driver: gpiochip"}
	}
	if _, err := host(); err != nil {
		return nil, &PinError{Driver: bench.RPi, Pin: spec, Err: fmt.Errorf("load periph host drivers: %w", err)}
	}
	p := gpioreg.ByName(spec)
	if p == nil {
		return nil, &PinError{Driver: bench.RPi, Pin: spec, Err: fmt.Errorf("the Raspberry Pi drivers did not register %s: %w", spec, ErrNoHardware), Check: "check that the bcm283x-gpio driver loaded (gatehouse hil --selftest lists the drivers) and that this user may open /dev/gpiomem"}
	}
	return p, nil
}

func openSysfs(spec string) (gpio.PinIO, error) {
	if err := checkDevice(bench.Sysfs, spec, "/sys/class/gpio"); err != nil {
		return nil, err
	}
	if _, err := host(); err != nil {
		return nil, &PinError{Driver: bench.Sysfs, Pin: spec, Err: fmt.Errorf("load periph host drivers: %w", err)}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(spec, "GPIO"))
	if err != nil {
		return nil, &PinError{Driver: bench.Sysfs, Pin: spec, Err: errors.New("expected GPIOn or n")}
	}
	p, ok := sysfs.Pins[n]
	if !ok {
		return nil, &PinError{Driver: bench.Sysfs, Pin: spec, Err: fmt.Errorf("no GPIO %d under /sys/class/gpio: %w", n, ErrNoHardware), Check: "run `ls /sys/class/gpio` and check each gpiochip's base and ngpio"}
	}
	return p, nil
}
