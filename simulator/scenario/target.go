package scenario

import (
	"context"
	"fmt"
	"time"
)

// Target is the broker a scenario runs against: the embedded reference broker, an address, or
// (later) a container. The devices, the observer and the controller all connect to URL.
type Target interface {
	// URL is the broker address, tcp://host:port.
	URL() string
	// Describe names the broker for reports, e.g. "gatehouse reference broker (embedded)".
	Describe() string
}

// Broker lifecycle controls. A target offers the ones it can carry out; a scenario that needs one
// the target lacks is skipped, with the reason, before anything starts. New controls are new
// small interfaces checked the same way (see capable).

// Restarter stops the broker and starts it again on the same address, keeping persistent
// sessions (broker_restart).
type Restarter interface {
	Restart(ctx context.Context) error
}

// Crasher stops the broker abruptly, without a clean shutdown, and starts it again after d
// (broker_crash).
type Crasher interface {
	Crash(ctx context.Context, d time.Duration) error
}

// Pauser makes the broker stop serving for d without closing connections (broker_pause).
type Pauser interface {
	Pause(ctx context.Context, d time.Duration) error
}

// Partitioner cuts the broker from the network for d (network_partition).
type Partitioner interface {
	Partition(ctx context.Context, d time.Duration) error
}

// capable reports whether the target offers a broker lifecycle control.
func capable(t Target, control string) bool {
	switch control {
	case BrokerRestart:
		_, ok := t.(Restarter)
		return ok
	case BrokerCrash:
		_, ok := t.(Crasher)
		return ok
	case BrokerPause:
		_, ok := t.(Pauser)
		return ok
	case NetworkPartition:
		_, ok := t.(Partitioner)
		return ok
	}
	return false
}

// brokerFault carries out a broker fault on the target.
func brokerFault(ctx context.Context, t Target, p Planned) error {
	d := p.Fault.Duration
	switch p.Name {
	case BrokerRestart:
		if r, ok := t.(Restarter); ok {
			return r.Restart(ctx)
		}
	case BrokerCrash:
		if c, ok := t.(Crasher); ok {
			return c.Crash(ctx, d)
		}
	case BrokerPause:
		if pa, ok := t.(Pauser); ok {
			return pa.Pause(ctx, d)
		}
	case NetworkPartition:
		if pa, ok := t.(Partitioner); ok {
			return pa.Partition(ctx, d)
		}
	}
	return fmt.Errorf("%s: the broker %s cannot do it", p.Name, t.Describe())
}

// Address is a Target given by its URL: a broker Gatehouse did not start and cannot control.
type Address string

// URL returns the address with the tcp scheme paho expects.
func (a Address) URL() string {
	s := string(a)
	if len(s) > 7 && s[:7] == "mqtt://" {
		return "tcp://" + s[7:]
	}
	return s
}

// Describe names the address.
func (a Address) Describe() string { return "broker at " + string(a) }
