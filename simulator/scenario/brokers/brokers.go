// Package brokers starts the broker a scenario runs against from a target string: the embedded
// reference broker (simulator/scenario/embedded, which can restart keeping its sessions), or
// anything broker/target knows — Debian's mosquitto, a local container image, a broker already
// running at a URL — with the lifecycle controls each offers to broker faults: a container can be
// crashed, paused, cut from the network and restarted.
package brokers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/embedded"
)

// Usage lists the target strings Start accepts, for --help and messages.
const Usage = "embedded (default), embedded?fault=NAME, mosquitto, image:NAME, mqtt://host:port"

// Spec returns the target string of a scenario's own broker choice.
func Spec(s *scenario.Scenario) string {
	switch s.Broker.Kind {
	case scenario.BrokerURL:
		return s.Broker.URL
	case scenario.BrokerImage:
		return "image:" + s.Broker.Image
	}
	return "embedded"
}

// Start brings up the broker named by spec for scenario s and returns it with the function that
// stops it. The embedded broker gets the scenario's own fault modes (broker: {faults: [...]}) and
// those of the spec; other brokers cannot take fault modes.
func Start(ctx context.Context, spec string, s *scenario.Scenario, logger *slog.Logger) (scenario.Target, func(), error) {
	t, err := target.Parse(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	if t.Kind == target.Embedded {
		if t.Transport != target.TransportTCP || len(t.DeniedTopics) > 0 {
			return nil, nil, fmt.Errorf("broker %q: scenarios run over TCP without access control; use embedded or embedded?fault=NAME", spec)
		}
		faults := append([]string(nil), s.Broker.Faults...)
		for _, r := range t.Faults {
			faults = append(faults, r.String())
		}
		b, err := embedded.Start(ctx, "127.0.0.1:0", logger, faults...)
		if err != nil {
			return nil, nil, err
		}
		return b, func() { stop(b.Stop) }, nil
	}
	if len(s.Broker.Faults) > 0 {
		return nil, nil, fmt.Errorf("the scenario sets broker fault modes (%s), which only the embedded broker has; run it with --broker embedded", strings.Join(s.Broker.Faults, ", "))
	}
	if logger != nil {
		t.Logf = func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) }
	}
	r, err := t.Start(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("broker %s: %w", t, err)
	}
	if r.TLSConfig() != nil {
		_ = r.Stop(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("broker %s: scenarios run over plain TCP (tcp:// or mqtt://)", t)
	}
	if _, _, ok := r.Credentials(); ok {
		_ = r.Stop(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("broker %s: scenarios run with anonymous clients; credentials are not passed to the fleet yet", t)
	}
	return Wrap(r), func() { stop(r.Stop) }, nil
}

func stop(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = f(ctx)
}

// running adapts a broker/target broker to a scenario target.
type running struct{ r target.Running }

func (x running) URL() string {
	u := x.r.URL()
	if rest, ok := strings.CutPrefix(u, "mqtt://"); ok {
		return "tcp://" + rest
	}
	return u
}

func (x running) Describe() string { return x.r.Name() }

// controlled is a broker whose process the run controls (target.Lifecycle).
type controlled struct {
	running
	l target.Lifecycle
}

var (
	_ scenario.Restarter   = controlled{}
	_ scenario.Crasher     = controlled{}
	_ scenario.Pauser      = controlled{}
	_ scenario.Partitioner = reconnectable{}
)

func (x controlled) Restart(ctx context.Context) error { return x.l.Restart(ctx) }
func (x controlled) Crash(ctx context.Context) error   { return x.l.Kill(ctx) }
func (x controlled) Recover(ctx context.Context) error { return x.l.Restart(ctx) }
func (x controlled) Pause(ctx context.Context) error   { return x.l.Pause(ctx) }
func (x controlled) Resume(ctx context.Context) error  { return x.l.Unpause(ctx) }

// reconnectable is a controlled broker that can also be put back on the network.
type reconnectable struct {
	controlled
	rc interface{ Reconnect(context.Context) error }
}

func (x reconnectable) Partition(ctx context.Context) error { return x.l.Disconnect(ctx) }
func (x reconnectable) Heal(ctx context.Context) error      { return x.rc.Reconnect(ctx) }

// Wrap makes a broker/target broker a scenario target with the lifecycle controls it has.
func Wrap(r target.Running) scenario.Target {
	l, ok := r.(target.Lifecycle)
	if !ok {
		return running{r}
	}
	c := controlled{running{r}, l}
	if rc, ok := r.(interface{ Reconnect(context.Context) error }); ok {
		return reconnectable{c, rc}
	}
	return c
}
