//go:build !linux

package pins

import (
	"fmt"
	"runtime"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
)

// checkDevice: GPIO through gpiochip and sysfs exists only on Linux.
func checkDevice(d bench.Driver, pin, path string) error {
	return &PinError{Driver: d, Pin: pin, Err: fmt.Errorf("%s: the %s driver needs Linux, this is %s: %w", path, d, runtime.GOOS, ErrNoHardware), Check: "run the bench on a Linux board, or use driver: sim"}
}

func rpiAbsence() string { return "this is a " + runtime.GOOS + " build" }
