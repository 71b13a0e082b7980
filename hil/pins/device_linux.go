//go:build linux

package pins

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
)

// checkDevice says plainly what is missing when the device node or directory a driver needs is
// absent, before periph is asked for anything.
func checkDevice(d bench.Driver, pin, path string) error {
	_, err := os.Stat(path)
	if err == nil {
		return nil
	}
	pe := &PinError{Driver: d, Pin: pin}
	switch {
	case errors.Is(err, fs.ErrNotExist) && d == bench.GPIOChip:
		pe.Err = fmt.Errorf("%s not found: %w", path, ErrNoHardware)
		pe.Check = "is this a Raspberry Pi or another board with GPIO / is the gpio character device enabled (CONFIG_GPIO_CDEV)? run `ls /dev/gpiochip*`"
	case errors.Is(err, fs.ErrNotExist):
		pe.Err = fmt.Errorf("%s not found: %w", path, ErrNoHardware)
		pe.Check = "is the legacy sysfs GPIO interface enabled in this kernel (CONFIG_GPIO_SYSFS)? run `ls /sys/class/gpio`; newer kernels have only the character device: use driver: gpiochip"
	case errors.Is(err, fs.ErrPermission):
		pe.Err = fmt.Errorf("%s: permission denied", path)
		pe.Check = "add this user to the gpio group or run as root"
	default:
		pe.Err = err
	}
	return pe
}

// rpiAbsence says why periph's rpi driver does not see a Raspberry Pi here.
func rpiAbsence() string {
	if runtime.GOARCH != "arm" && runtime.GOARCH != "arm64" {
		return "this build is for " + runtime.GOARCH + "; the Raspberry Pi drivers exist only in arm and arm64 builds"
	}
	if model, err := os.ReadFile("/proc/device-tree/model"); err == nil {
		return "/proc/device-tree/model says " + strings.TrimRight(string(model), "\x00\n")
	}
	return "/sys/bus/platform/drivers/raspberrypi-firmware is absent"
}
