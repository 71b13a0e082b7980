package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"

	"github.com/gatehouse-iot/gatehouse/broker"
)

// embedded is the reference broker running in this process.
type embedded struct {
	b          *broker.Broker
	addr, url  string
	faults     []broker.FaultRule
	user, pass string
	hasCreds   bool

	stopOnce sync.Once
	stopErr  error
}

func startEmbedded(ctx context.Context, t Target) (Running, error) {
	cfg := broker.Config{
		AllowAnonymous: true,
		Faults:         t.Faults,
	}
	name := "tcp"
	if t.Transport == TransportWS {
		name = "websocket"
		cfg.Listeners = []broker.Listener{{Name: name, Kind: broker.WebSocket, Addr: "127.0.0.1:0"}}
	} else {
		cfg.Listeners = []broker.Listener{{Name: name, Kind: broker.TCP, Addr: "127.0.0.1:0"}}
	}
	if t.Configure != nil {
		t.Configure(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("target embedded: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("target embedded: %w", err)
	}
	a := b.Addr(name)
	if a == nil {
		_ = b.Shutdown(ctx)
		return nil, fmt.Errorf("target embedded: no %s listener after start", name)
	}
	e := &embedded{b: b, addr: a.String(), faults: cfg.Faults, user: t.Username, pass: t.Password,
		hasCreds: t.Username != "" || t.Password != ""}
	e.url = "mqtt://" + e.addr
	if t.Transport == TransportWS {
		e.url = "ws://" + e.addr + "/mqtt"
	}
	return e, nil
}

func (e *embedded) Name() string {
	if len(e.faults) == 0 {
		return "embedded reference broker"
	}
	names := make([]string, len(e.faults))
	for i, f := range e.faults {
		names[i] = f.String()
	}
	return "embedded reference broker (faults: " + strings.Join(names, ", ") + ")"
}

func (e *embedded) Addr() string                        { return e.addr }
func (e *embedded) URL() string                         { return e.url }
func (e *embedded) TLSConfig() *tls.Config              { return nil }
func (e *embedded) Credentials() (string, string, bool) { return e.user, e.pass, e.hasCreds }

// Broker returns the reference broker itself, for callers in this process that read its
// statistics.
func (e *embedded) Broker() *broker.Broker { return e.b }

func (e *embedded) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { e.stopErr = e.b.Shutdown(ctx) })
	return e.stopErr
}

// Reference is implemented by the Running of an embedded target: the reference broker itself,
// for callers in this process that read its statistics.
type Reference interface {
	Running
	Broker() *broker.Broker
}

var _ Reference = (*embedded)(nil)
