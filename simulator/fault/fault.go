// Package fault names the faults a simulated device can suffer and implements the ones that live on
// the wire. A Fault is data (a kind, an optional duration and parameters), so that scenario files
// can script it; the device event loop applies the behavioural ones (power cut, slow acks, clock
// skew, jam, stuck relay, contact bounce, wrong will) and a Wire, wrapped around every connection
// the device's MQTT client opens, applies the network and firmware ones (silent drop, reset,
// dropped PINGREQ, missing DUP).
package fault

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind names a fault.
type Kind = string

// The faults a device can suffer. Each is independent of the others, so they compose: a device
// can be jammed, slow to ack and behind a dropped network at once.
const (
	// PowerCut closes the socket without DISCONNECT (the broker publishes the will) and loses the
	// device's volatile state; the device stays off until cleared, then boots.
	PowerCut Kind = "power_cut"
	// NetworkDrop makes the network silent both ways without closing anything: no FIN, no RST.
	// Only keepalive notices. Clearing it heals the network; bytes held meanwhile then flow.
	NetworkDrop Kind = "network_drop"
	// Reset aborts the connection with a TCP RST (SO_LINGER 0, then close). It is instantaneous:
	// the device reconnects with backoff as after any connection loss.
	Reset Kind = "reset"
	// SlowAck delays every command ack by Params["latency"] (default 2s).
	SlowAck Kind = "slow_ack"
	// NoPingreq is a firmware bug: outgoing PINGREQ packets never reach the wire.
	NoPingreq Kind = "no_pingreq"
	// NoDup is a firmware bug: the DUP flag is cleared on every outgoing PUBLISH, resends included.
	NoDup Kind = "no_dup"
	// WrongWill is a firmware bug: the next connections register Params["topic"] /
	// Params["payload"] as their will instead of the status topic and {"online":false}.
	WrongWill Kind = "wrong_will"
	// ClockSkew offsets every timestamp the device publishes by Params["offset"] (default 90s).
	ClockSkew Kind = "clock_skew"
	// Jam is a mechanical jam: the next (or current) movement stops half way, the state says
	// mode "jammed" and commands that need movement are acked "failed".
	Jam Kind = "jam"
	// StuckRelay freezes the output relay Params["terminal"] (default "lock") at its level; the
	// controller notices through its contact feedback, reports mode "fault" and fails commands
	// that need the relay.
	StuckRelay Kind = "stuck_relay"
	// Bounce makes every input edge bounce: Params["edges"] extra edge pairs (default 2),
	// Params["interval"] apart (default 3ms).
	Bounce Kind = "bounce"
)

// Kinds lists every fault kind, in the order the documentation presents them.
var Kinds = []Kind{PowerCut, NetworkDrop, Reset, SlowAck, NoPingreq, NoDup, WrongWill, ClockSkew, Jam, StuckRelay, Bounce}

// Fault is one named fault to inject into a device.
type Fault struct {
	// Kind is one of Kinds.
	Kind Kind `yaml:"kind" json:"kind"`
	// Duration, when positive, clears the fault by itself after that long (a power cut of 5s, a
	// network drop of 40s). Zero means until cleared. Reset is instantaneous and ignores it.
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Params are the fault's own settings (see each kind). Durations are strings such as "250ms".
	Params map[string]any `yaml:"params,omitempty" json:"params,omitempty"`
}

// Validate checks the kind and the parameters the kind reads, naming the problem.
func (f Fault) Validate() error {
	if !slices.Contains(Kinds, f.Kind) {
		return fmt.Errorf("fault kind %q is unknown (want one of %s)", f.Kind, strings.Join(Kinds, ", "))
	}
	if f.Duration < 0 {
		return fmt.Errorf("fault %s: duration %s is negative", f.Kind, f.Duration)
	}
	var err error
	switch f.Kind {
	case SlowAck:
		_, err = f.DurationParam("latency", 2*time.Second)
	case ClockSkew:
		_, err = f.DurationParam("offset", 90*time.Second)
	case Bounce:
		if _, err = f.IntParam("edges", 2); err == nil {
			_, err = f.DurationParam("interval", 3*time.Millisecond)
		}
	case StuckRelay, WrongWill:
		for k := range f.Params {
			if _, e := f.StringParam(k, ""); e != nil {
				err = e
			}
		}
	}
	return err
}

// String renders the fault for logs and reports.
func (f Fault) String() string {
	s := f.Kind
	if f.Duration > 0 {
		s += " for " + f.Duration.String()
	}
	if len(f.Params) > 0 {
		keys := make([]string, 0, len(f.Params))
		for k := range f.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, f.Params[k])
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// DurationParam reads a duration parameter given as a Go duration string ("250ms", "-30s"), a
// time.Duration, or a number of seconds.
func (f Fault) DurationParam(name string, def time.Duration) (time.Duration, error) {
	v, ok := f.Params[name]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("fault %s: param %s: %q is not a duration such as 250ms or 2s", f.Kind, name, x)
		}
		return d, nil
	case int:
		return time.Duration(x) * time.Second, nil
	case int64:
		return time.Duration(x) * time.Second, nil
	case uint64:
		return time.Duration(x) * time.Second, nil
	case float64:
		return time.Duration(x * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("fault %s: param %s: %v (%T) is not a duration", f.Kind, name, v, v)
}

// IntParam reads a non-negative integer parameter.
func (f Fault) IntParam(name string, def int) (int, error) {
	v, ok := f.Params[name]
	if !ok || v == nil {
		return def, nil
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("fault %s: param %s: %v is not a whole number", f.Kind, name, x)
		}
		n = int64(x)
	case string:
		p, err := strconv.ParseInt(x, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("fault %s: param %s: %q is not a number", f.Kind, name, x)
		}
		n = p
	default:
		return 0, fmt.Errorf("fault %s: param %s: %v (%T) is not a number", f.Kind, name, v, v)
	}
	if n < 0 || n > 1000 {
		return 0, fmt.Errorf("fault %s: param %s: %d is outside 0..1000", f.Kind, name, n)
	}
	return int(n), nil
}

// StringParam reads a string parameter.
func (f Fault) StringParam(name, def string) (string, error) {
	v, ok := f.Params[name]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("fault %s: param %s: %v (%T) is not a string", f.Kind, name, v, v)
	}
	return s, nil
}
