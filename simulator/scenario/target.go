package scenario

import (
	"context"
	"fmt"
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

// Crasher stops the broker abruptly, without a clean shutdown (broker_crash), and starts it again
// on the same address (broker_recover, planned at the end of the fault's duration).
type Crasher interface {
	Crash(ctx context.Context) error
	Recover(ctx context.Context) error
}

// Pauser makes the broker stop serving without closing connections (broker_pause) and resume
// (broker_resume).
type Pauser interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// Partitioner cuts the broker from the network (network_partition) and puts it back
// (network_heal).
type Partitioner interface {
	Partition(ctx context.Context) error
	Heal(ctx context.Context) error
}

// The actions that end a broker fault with a duration, planned at its end.
const (
	brokerRecover = "broker_recover"
	brokerResume  = "broker_resume"
	networkHeal   = "network_heal"
)

// recoveryOf names the action that ends a broker fault, "" for one that ends by itself.
func recoveryOf(kind string) string {
	switch kind {
	case BrokerCrash:
		return brokerRecover
	case BrokerPause:
		return brokerResume
	case NetworkPartition:
		return networkHeal
	}
	return ""
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

// brokerFault carries out a broker fault, or the end of one, on the target.
func brokerFault(ctx context.Context, t Target, p Planned) error {
	var err error
	ok := false
	switch p.Name {
	case BrokerRestart:
		if r, is := t.(Restarter); is {
			ok, err = true, r.Restart(ctx)
		}
	case BrokerCrash, brokerRecover:
		if c, is := t.(Crasher); is {
			ok = true
			if p.Name == BrokerCrash {
				err = c.Crash(ctx)
			} else {
				err = c.Recover(ctx)
			}
		}
	case BrokerPause, brokerResume:
		if pa, is := t.(Pauser); is {
			ok = true
			if p.Name == BrokerPause {
				err = pa.Pause(ctx)
			} else {
				err = pa.Resume(ctx)
			}
		}
	case NetworkPartition, networkHeal:
		if pa, is := t.(Partitioner); is {
			ok = true
			if p.Name == NetworkPartition {
				err = pa.Partition(ctx)
			} else {
				err = pa.Heal(ctx)
			}
		}
	}
	if !ok {
		return fmt.Errorf("%s: the %s cannot do it", p.Name, t.Describe())
	}
	return err
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
