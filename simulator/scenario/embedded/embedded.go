// Package embedded runs Gatehouse's reference broker inside the process as the target of a
// scenario run, on a free loopback port, with the lifecycle control scenarios need: a restart on
// the same address that keeps persistent sessions.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
)

// Broker is a running embedded reference broker.
type Broker struct {
	cfg    broker.Config
	addr   string   // host:port, fixed at the first start so that a restart comes back on it
	faults []string // as given, for Describe

	mu       sync.Mutex // protects b and restarts
	b        *broker.Broker
	restarts int
}

var (
	_ scenario.Target    = (*Broker)(nil)
	_ scenario.Restarter = (*Broker)(nil)
)

// Start starts the reference broker on addr ("127.0.0.1:0" picks a free port) with anonymous
// access and an in-memory session store that outlives restarts, and with the named fault modes
// ("no-will", "duplicate-qos2@gate-01"; see broker.Fault). logger may be nil.
func Start(ctx context.Context, addr string, logger *slog.Logger, faults ...string) (*Broker, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var rules []broker.FaultRule
	for _, f := range faults {
		r, err := broker.ParseFault(f)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		rules = append(rules, r)
	}
	e := &Broker{cfg: broker.Config{
		AllowAnonymous: true,
		Listeners:      []broker.Listener{{Name: "tcp", Kind: broker.TCP, Addr: addr}},
		Logger:         logger,
		Store:          session.NewMemory(),
		Faults:         rules,
	}, faults: faults}
	b, err := e.start(ctx, addr)
	if err != nil {
		return nil, err
	}
	e.b = b
	e.addr = b.Addr("tcp").String()
	return e, nil
}

func (e *Broker) start(ctx context.Context, addr string) (*broker.Broker, error) {
	cfg := e.cfg
	cfg.Listeners = []broker.Listener{{Name: "tcp", Kind: broker.TCP, Addr: addr}}
	b, err := broker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return b, nil
}

// URL is tcp://127.0.0.1:PORT.
func (e *Broker) URL() string { return "tcp://" + e.addr }

// Addr is the bound host:port.
func (e *Broker) Addr() string { return e.addr }

// Describe names the broker for reports.
func (e *Broker) Describe() string {
	if len(e.faults) > 0 {
		return "gatehouse reference broker (embedded, fault modes: " + strings.Join(e.faults, ", ") + ")"
	}
	return "gatehouse reference broker (embedded)"
}

// Broker returns the running broker (a new one after each restart).
func (e *Broker) Broker() *broker.Broker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.b
}

// Restart shuts the broker down cleanly and starts a new one on the same address with the same
// session store: persistent sessions, their subscriptions and their queued QoS 1/2 messages
// survive; connected clients see their connection close and must reconnect.
func (e *Broker) Restart(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.b.Shutdown(ctx); err != nil {
		return fmt.Errorf("embedded broker restart: shutdown: %w", err)
	}
	// The port was just released; binding it again can race with the kernel for a moment.
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		b, err := e.start(ctx, e.addr)
		if err == nil {
			e.b = b
			e.restarts++
			return nil
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded broker restart: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("embedded broker restart: %w", lastErr)
}

// Restarts counts the restarts so far.
func (e *Broker) Restarts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.restarts
}

// Stop shuts the broker down.
func (e *Broker) Stop(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.b.Shutdown(ctx); err != nil && !errors.Is(err, broker.ErrNotStarted) {
		return fmt.Errorf("embedded broker: %w", err)
	}
	return nil
}

func isAddrInUse(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}

// RunScenario runs a scenario against a fresh embedded broker with the scenario's own broker
// fault modes, and stops the broker afterwards. A broker that does not start gives an errored
// record.
func RunScenario(ctx context.Context, s *scenario.Scenario, opts scenario.Options) *report.Record {
	b, err := Start(ctx, "127.0.0.1:0", opts.Logger, s.Broker.Faults...)
	if err != nil {
		rec := report.New(s.Name, report.KindScenario, time.Now())
		rec.SetError(err.Error())
		rec.Finish(time.Now())
		return rec
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.Stop(sctx)
	}()
	opts.Target = b
	return scenario.Run(ctx, s, opts)
}
