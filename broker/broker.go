// Package broker is Gatehouse's reference MQTT broker: MQTT 3.1, 3.1.1 and 5.0 over TCP, TLS and
// WebSocket, embeddable in tests (see broker/brokertest) and run by `gatehouse broker`.
//
// It is the reference: where it and the specification disagree, the broker is wrong, and every
// rule it enforces cites its normative statement ID. It can also misbehave on demand, in named
// ways (see Fault), so that a conformance suite can prove its checks catch real defects.
//
// Architecture, lock order and the list of what is implemented are in README.md beside this file.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/retain"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// shutdownCode is the DISCONNECT reason 5.0 clients get when the broker stops.
const shutdownCode = packet.ServerShuttingDown

// ErrNotStarted is returned by Shutdown and Addr callers when Start was never called.
var ErrNotStarted = errors.New("broker: not started")

// Broker is one reference MQTT broker. Create it with New, run it with Start or Serve, stop it
// with Shutdown.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	faults faultTable
	subs   *topic.Tree[*session]
	retain *retain.Store
	stats  Stats
	start  time.Time

	// retainMu orders retained messages per topic on their way to the Store (retainpersist.go).
	retainMu [retainStripes]sync.Mutex

	// poller wakes idle connections parked without a goroutine (park_linux.go).
	poller poller

	// wg counts every goroutine the broker starts (see goFunc).
	wg sync.WaitGroup
	// quit is closed when Shutdown begins.
	quit chan struct{}

	// mu protects sessions, winding, conns, listeners, started and closing. Lock order: mu
	// before any session.mu before any conn.outMu (README.md).
	mu       sync.Mutex
	sessions map[string]*session
	// winding: client ids whose previous connection or session is being wound up (its will
	// published, its ended session dismantled); a new connection of the id waits for it.
	winding   map[string]*winding
	conns     map[*conn]struct{}
	listeners []*boundListener
	started   bool
	closing   bool
}

// New validates cfg and returns a broker that is not started yet.
func New(cfg Config) (*Broker, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	ft, _ := newFaultTable(cfg.Faults)
	b := &Broker{
		cfg:      cfg,
		log:      cfg.Logger,
		faults:   ft,
		subs:     topic.New[*session](),
		retain:   retain.NewStore(),
		quit:     make(chan struct{}),
		sessions: make(map[string]*session),
		conns:    make(map[*conn]struct{}),
	}
	b.poller.b = b
	return b, nil
}

// Stats returns the broker's live counters.
func (b *Broker) Stats() *Stats { return &b.stats }

// goFunc starts f on a new goroutine counted in b.wg; the count is added before the goroutine
// starts so that Shutdown's wait never misses one.
func (b *Broker) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Start restores persisted sessions, binds every listener and starts serving. It returns once
// every listener is bound; ctx bounds only the binding.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return errors.New("broker: already started")
	}
	b.started = true
	b.start = time.Now() // under mu: Uptime reads it from other goroutines
	b.mu.Unlock()

	if b.cfg.Store != nil {
		if err := b.restore(); err != nil {
			return fmt.Errorf("broker: restore sessions: %w", err)
		}
		if err := b.restoreRetained(); err != nil {
			return fmt.Errorf("broker: restore retained messages: %w", err)
		}
	}
	var bound []*boundListener
	for _, l := range b.cfg.Listeners {
		bl, err := listen(ctx, l)
		if err != nil {
			for _, x := range bound {
				_ = x.ln.Close()
			}
			return fmt.Errorf("broker: listener %s: %w", l.Name, err)
		}
		bound = append(bound, bl)
	}
	b.mu.Lock()
	b.listeners = bound
	b.mu.Unlock()
	for _, bl := range bound {
		b.serveListener(bl)
		b.log.Info("listening", "listener", bl.cfg.Name, "kind", bl.cfg.Kind, "addr", bl.ln.Addr().String())
	}
	if b.cfg.SysInterval > 0 {
		b.goFunc(b.sysLoop)
	}
	return nil
}

// Addr returns the bound address of the listener with that name ("tcp" when name is empty), or
// nil when there is no such listener or the broker is not started.
func (b *Broker) Addr(name string) net.Addr {
	if name == "" {
		name = "tcp"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bl := range b.listeners {
		if bl.cfg.Name == name {
			return bl.ln.Addr()
		}
	}
	return nil
}

// Serve starts the broker, blocks until ctx is done, then shuts it down (waiting at most
// ConnectTimeout for connections to close).
func (b *Broker) Serve(ctx context.Context) error {
	if err := b.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), b.cfg.ConnectTimeout)
	defer cancel()
	return b.Shutdown(sctx)
}

// Shutdown stops accepting connections, disconnects every client (5.0: DISCONNECT 0x8B, server
// shutting down) and waits for every goroutine of the broker to end, or for ctx.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.started {
		b.mu.Unlock()
		return ErrNotStarted
	}
	if b.closing {
		b.mu.Unlock()
		return b.wait(ctx)
	}
	b.closing = true
	close(b.quit)
	lns := b.listeners
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	sessions := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		sessions = append(sessions, s)
	}
	b.mu.Unlock()

	for _, bl := range lns {
		bl.close()
	}
	for _, c := range conns {
		c.kick(shutdownCode)
	}
	for _, s := range sessions {
		s.stopTimers()
	}
	b.poller.shutdown()
	return b.wait(ctx)
}

func (b *Broker) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		b.log.Info("stopped")
		return nil
	case <-ctx.Done():
		// Close every socket outright; the goroutines end on their next read or write.
		b.mu.Lock()
		for c := range b.conns {
			_ = c.nc.Close()
		}
		b.mu.Unlock()
		<-done
		return fmt.Errorf("broker: shutdown: %w", ctx.Err())
	}
}

// shuttingDown reports whether Shutdown has begun.
func (b *Broker) shuttingDown() bool {
	select {
	case <-b.quit:
		return true
	default:
		return false
	}
}
