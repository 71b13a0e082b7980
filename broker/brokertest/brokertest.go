// Package brokertest starts Gatehouse's reference broker inside a test, on a free loopback port,
// with a recording tracer, and stops it when the test ends.
//
//	b := brokertest.Start(t)
//	client := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()))
//	...
//	ev := b.Trace().WaitFor(t, 2*time.Second, brokertest.Out(packet.TypePuback))
package brokertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
)

// TB is the part of testing.TB that brokertest needs; *testing.T, *testing.B and Ginkgo's
// GinkgoT() all satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Log(args ...any)
}

// Broker is a reference broker running for one test.
type Broker struct {
	*broker.Broker
	cfg   broker.Config
	rec   *Recorder
	addr  string
	ws    string
	tlsAd string
}

// Option changes how Start configures the broker.
type Option func(*options)

type options struct {
	cfg      broker.Config
	mutate   []func(*broker.Config)
	ws       bool
	logLevel slog.Level
	traceCap int
	noTrace  bool
}

// WithConfig lets the test change the configuration before the broker starts (listeners added
// by the test are kept; Tracer is wrapped so that the recorder still sees every packet).
func WithConfig(f func(*broker.Config)) Option {
	return func(o *options) { o.mutate = append(o.mutate, f) }
}

// WithFaults turns fault modes on; see broker.Fault.
func WithFaults(rules ...broker.FaultRule) Option {
	return func(o *options) { o.cfg.Faults = append(o.cfg.Faults, rules...) }
}

// WithFault parses "NAME" or "NAME@CLIENTID" and turns that fault on; it panics on a bad name,
// which is a mistake in the test itself.
func WithFault(spec string) Option {
	r, err := broker.ParseFault(spec)
	if err != nil {
		panic(err)
	}
	return WithFaults(r)
}

// WithWebSocket adds a WebSocket listener on a free loopback port (see WSURL).
func WithWebSocket() Option { return func(o *options) { o.ws = true } }

// WithLogLevel sets the level of broker logs copied to the test log (default Warn).
func WithLogLevel(l slog.Level) Option { return func(o *options) { o.logLevel = l } }

// WithTraceCapacity bounds how many packets the recorder keeps (default 200,000; the oldest are
// forgotten first).
func WithTraceCapacity(n int) Option { return func(o *options) { o.traceCap = n } }

// WithoutTrace runs the broker without the recording tracer (benchmarks); Trace then records
// nothing.
func WithoutTrace() Option { return func(o *options) { o.noTrace = true } }

// Start starts a broker on 127.0.0.1:0 with anonymous access allowed and a recording tracer, and
// shuts it down when the test ends. It fails the test if the broker cannot start.
func Start(t TB, opts ...Option) *Broker {
	t.Helper()
	o := options{
		cfg: broker.Config{
			AllowAnonymous: true,
			Listeners:      []broker.Listener{{Name: "tcp", Kind: broker.TCP, Addr: "127.0.0.1:0"}},
		},
		logLevel: slog.LevelWarn,
		traceCap: 200_000,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.ws {
		o.cfg.Listeners = append(o.cfg.Listeners, broker.Listener{Name: "websocket", Kind: broker.WebSocket, Addr: "127.0.0.1:0"})
	}
	for _, f := range o.mutate {
		f(&o.cfg)
	}
	rec := NewRecorder(o.traceCap)
	if o.noTrace {
		// Leave the configured tracer (usually none) alone.
	} else if user := o.cfg.Tracer; user != nil {
		o.cfg.Tracer = broker.TracerFunc(func(e broker.TraceEvent) {
			rec.Trace(e)
			user.Trace(e)
		})
	} else {
		o.cfg.Tracer = rec
	}
	if o.cfg.Logger == nil {
		o.cfg.Logger = slog.New(&testHandler{t: t, level: o.logLevel})
	}
	b, err := broker.New(o.cfg)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	tb := &Broker{Broker: b, cfg: o.cfg, rec: rec}
	if a := b.Addr("tcp"); a != nil {
		tb.addr = a.String()
	}
	if a := b.Addr("websocket"); a != nil {
		tb.ws = a.String()
	}
	if a := b.Addr("tls"); a != nil {
		tb.tlsAd = a.String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("brokertest: shutdown: %v", err)
		}
	})
	return tb
}

// Addr returns the TCP listener's host:port ("127.0.0.1:PORT").
func (b *Broker) Addr() string { return b.addr }

// URL returns "tcp://127.0.0.1:PORT", as MQTT client libraries take it.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// WSURL returns "ws://127.0.0.1:PORT/mqtt" when the broker has a WebSocket listener (WithWebSocket).
func (b *Broker) WSURL() string {
	if b.ws == "" {
		return ""
	}
	return "ws://" + b.ws + "/mqtt"
}

// TLSAddr returns the host:port of a listener named "tls", if the configuration has one.
func (b *Broker) TLSAddr() string { return b.tlsAd }

// Trace returns the recorder of every packet in and out.
func (b *Broker) Trace() *Recorder { return b.rec }

// Config returns the configuration the broker was started with.
func (b *Broker) Config() broker.Config { return b.cfg }

// Dial opens a raw TCP connection to the broker, closed when the test ends.
func (b *Broker) Dial(t TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("brokertest: dial %s: %v", b.addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testHandler copies broker logs at or above a level into the test log.
type testHandler struct {
	t     TB
	level slog.Level
	attrs []slog.Attr
}

func (h *testHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *testHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "broker %s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	h.t.Log(sb.String())
	return nil
}

func (h *testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *testHandler) WithGroup(string) slog.Handler { return h }
