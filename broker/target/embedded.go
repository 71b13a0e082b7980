package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
)

// embedded is the reference broker running in this process.
type embedded struct {
	b          *broker.Broker
	addr, url  string
	faults     []broker.FaultRule
	user, pass string
	hasCreds   bool
	endpoints  map[string]string

	stopOnce sync.Once
	stopErr  error
}

func startEmbedded(ctx context.Context, t Target) (Running, error) {
	cfg := broker.Config{
		AllowAnonymous: true,
		Faults:         t.Faults,
	}
	// Both transports listen; Transport says which one URL names.
	cfg.Listeners = []broker.Listener{
		{Name: "tcp", Kind: broker.TCP, Addr: "127.0.0.1:0"},
		{Name: "websocket", Kind: broker.WebSocket, Addr: "127.0.0.1:0"},
	}
	if len(t.DeniedTopics) > 0 {
		denied := topic.New[int]()
		for i, f := range t.DeniedTopics {
			denied.Subscribe(i, f, topic.Options{})
		}
		cfg.ACL = auth.ACLFunc(func(_ auth.Identity, name string, _ auth.Access) bool {
			allowed := true
			denied.Match(name, func(int, string, string, topic.Options) { allowed = false })
			return allowed
		})
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
	tcp, ws := b.Addr("tcp"), b.Addr("websocket")
	if tcp == nil || ws == nil {
		_ = b.Shutdown(ctx)
		return nil, fmt.Errorf("target embedded: the configuration lost the tcp or websocket listener")
	}
	e := &embedded{b: b, faults: cfg.Faults, user: t.Username, pass: t.Password,
		hasCreds:  t.Username != "" || t.Password != "",
		endpoints: map[string]string{TransportTCP: "mqtt://" + tcp.String(), TransportWS: "ws://" + ws.String() + "/mqtt"}}
	e.addr, e.url = tcp.String(), e.endpoints[TransportTCP]
	if t.Transport == TransportWS {
		e.addr, e.url = ws.String(), e.endpoints[TransportWS]
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

// Endpoints returns the URLs of the TCP and WebSocket listeners.
func (e *embedded) Endpoints() map[string]string {
	out := make(map[string]string, len(e.endpoints))
	for k, v := range e.endpoints {
		out[k] = v
	}
	return out
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

var (
	_ Reference = (*embedded)(nil)
	_ Endpoints = (*embedded)(nil)
)
