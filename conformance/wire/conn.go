package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Options configures a connection.
type Options struct {
	// Version is the protocol version the broker's packets are decoded for (the CONNECT the check
	// sends carries its own). Default packet.V311.
	Version packet.Version
	// Name labels the connection in traces, e.g. "pub" or "sub". Default "c".
	Name string
	// Trace receives the connection's events; share one between the connections of a check so the
	// exchange reads in order. Nil gives the connection a trace of its own.
	Trace *Trace
	// TLS configures mqtts:// and wss:// connections (a nil config verifies against the system
	// roots).
	TLS *tls.Config
	// MaxPacketSize bounds the packets accepted from the broker, in bytes; a larger one ends the
	// connection. Default 16 MiB.
	MaxPacketSize int
	// InboxLimit bounds the packets received but not yet taken by an expectation; beyond it new
	// packets are dropped and counted (Dropped). Default 10,000.
	InboxLimit int
	// WriteTimeout bounds each write to the broker. Default 5 s.
	WriteTimeout time.Duration
}

const (
	defaultMaxPacket    = 16 << 20
	defaultInboxLimit   = 10_000
	defaultWriteTimeout = 5 * time.Second
)

// Conn is one raw MQTT connection to a broker. Its methods are safe for concurrent use, though a
// check normally drives a connection from one goroutine.
type Conn struct {
	nc    net.Conn
	opts  Options
	trace *Trace

	// wg counts the read loop, the connection's only goroutine.
	wg sync.WaitGroup

	// wmu serialises writes so that two packets never interleave on the wire.
	wmu sync.Mutex

	// mu protects version, inbox, dropped, invalid, closed, closedBy, closeErr and changed.
	mu       sync.Mutex
	version  packet.Version
	inbox    []Event
	dropped  int
	invalid  []error
	closed   bool
	closedBy string // "broker" or "client"
	closeErr error
	// changed is closed (and replaced) whenever inbox or closed changes, waking every waiter.
	changed chan struct{}
}

// Dial connects to the broker at rawURL: mqtt:// or tcp:// (plain TCP), mqtts://, ssl:// or tls://
// (TLS), ws:// or wss:// (WebSocket with the "mqtt" subprotocol; the path defaults to /mqtt).
// ctx bounds the connection set-up only.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wire: broker url %q: %w", rawURL, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("wire: broker url %q: no host:port", rawURL)
	}
	var nc net.Conn
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	case "mqtts", "ssl", "tls":
		d := tls.Dialer{Config: tlsFor(opts.TLS, u.Hostname())}
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		nc, err = dialWebSocket(ctx, u, tlsFor(opts.TLS, u.Hostname()))
	default:
		return nil, fmt.Errorf("wire: broker url %q: unknown scheme %q (mqtt, mqtts, ws, wss)", rawURL, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("wire: dial %s: %w", rawURL, err)
	}
	return New(nc, opts), nil
}

// tlsFor returns a copy of cfg with ServerName set from the URL when the config has none.
func tlsFor(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg.ServerName = host
	}
	return cfg
}

// New wraps an established network connection and starts reading packets from it. The Conn owns
// nc from now on and closes it in Close.
func New(nc net.Conn, opts Options) *Conn {
	if opts.Version == 0 {
		opts.Version = packet.V311
	}
	if opts.Name == "" {
		opts.Name = "c"
	}
	if opts.Trace == nil {
		opts.Trace = NewTrace()
	}
	if opts.MaxPacketSize <= 0 {
		opts.MaxPacketSize = defaultMaxPacket
	}
	if opts.InboxLimit <= 0 {
		opts.InboxLimit = defaultInboxLimit
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = defaultWriteTimeout
	}
	c := &Conn{nc: nc, opts: opts, trace: opts.Trace, version: opts.Version, changed: make(chan struct{})}
	c.goFunc(c.readLoop)
	return c
}

// goFunc starts f on a goroutine counted in c.wg, adding to the count first.
func (c *Conn) goFunc(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Name returns the connection's name in traces.
func (c *Conn) Name() string { return c.opts.Name }

// Trace returns the trace the connection records into.
func (c *Conn) Trace() *Trace { return c.trace }

// Version returns the version packets from the broker are decoded for.
func (c *Conn) Version() packet.Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// SetVersion changes the version packets are encoded and decoded for, for a check that sends a
// CONNECT of another version than the connection was opened with.
func (c *Conn) SetVersion(v packet.Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version = v
}

// LocalAddr returns the client side address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Send encodes p for the connection's version and writes it. Encoding does not validate content,
// so a check can send what a faulty client would.
func (c *Conn) Send(p packet.Packet) error {
	b, err := packet.Encode(p, c.Version())
	if err != nil {
		return fmt.Errorf("wire: %s: encode %s: %w", c.opts.Name, p.Type(), err)
	}
	return c.write(b, p)
}

// SendRaw writes bytes as they are: a packet built with packet.Build and mutations, several
// packets at once, or a fragment. The trace shows them decoded when they decode.
func (c *Conn) SendRaw(b []byte) error {
	q, n, err := packet.Decode(b, c.Version(), 0)
	switch {
	case err == nil && n == len(b):
		return c.writeEvent(append([]byte(nil), b...), q, nil)
	case err == nil:
		err = fmt.Errorf("%d bytes after the %s", len(b)-n, q.Type())
	}
	return c.writeEvent(append([]byte(nil), b...), nil, err)
}

func (c *Conn) write(b []byte, p packet.Packet) error { return c.writeEvent(b, p, nil) }

// writeEvent writes b, recording it in the trace with the packet it decodes to, or why it does
// not decode.
func (c *Conn) writeEvent(b []byte, p packet.Packet, decodeErr error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.trace.add(Event{At: time.Now(), Conn: c.opts.Name, Dir: Sent, Packet: p, Raw: b, Err: decodeErr})
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return fmt.Errorf("wire: %s: %w", c.opts.Name, err)
	}
	if _, err := c.nc.Write(b); err != nil {
		what := "packet"
		if p != nil {
			what = p.Type().String()
		}
		return fmt.Errorf("wire: %s: write %s: %w", c.opts.Name, what, err)
	}
	return nil
}

// Close closes the network connection without a DISCONNECT (as a device losing power would) and
// waits for the read loop to end. Closing twice is harmless.
func (c *Conn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closedBy = "client"
	}
	c.mu.Unlock()
	err := c.nc.Close()
	c.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Disconnect sends DISCONNECT (3.1.1 form, or 5.0 with reason code 0) and closes the connection.
// The broker closing the connection in answer counts as the client's doing.
func (c *Conn) Disconnect() error {
	c.mu.Lock()
	if !c.closed {
		c.closedBy = "client"
	}
	c.mu.Unlock()
	err := c.Send(&packet.Disconnect{})
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Connect sends p and waits up to timeout for the broker's CONNACK. It fails when anything else
// arrives first or the connection closes.
func (c *Conn) Connect(timeout time.Duration, p *packet.Connect) (*packet.Connack, error) {
	if err := c.Send(p); err != nil {
		return nil, err
	}
	got, err := c.ExpectNext(timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ack, ok := got.(*packet.Connack)
	if !ok {
		return nil, fmt.Errorf("wire: %s: waiting for CONNACK, received %s", c.opts.Name, Describe(got))
	}
	return ack, nil
}

// readLoop reads packets until the connection ends, putting each into the inbox.
func (c *Conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		raw, err := ReadFrame(br, c.opts.MaxPacketSize)
		if err != nil {
			c.finish(err)
			return
		}
		v := c.Version()
		e := Event{At: time.Now(), Conn: c.opts.Name, Dir: Received, Raw: raw}
		p, _, derr := packet.Decode(raw, v, 0)
		if derr != nil {
			// A partly decoded packet is not shown: only its bytes are evidence.
			e.Err = fmt.Errorf("malformed packet from the broker: %w", derr)
		} else {
			e.Packet = p
			if verr := packet.Validate(p, v, packet.Server); verr != nil {
				e.Err = fmt.Errorf("invalid packet from the broker: %w", verr)
			}
		}
		c.trace.add(e)
		c.mu.Lock()
		if e.Err != nil {
			c.invalid = append(c.invalid, e.Err)
		}
		if len(c.inbox) >= c.opts.InboxLimit {
			c.dropped++
		} else {
			c.inbox = append(c.inbox, e)
		}
		c.notifyLocked()
		c.mu.Unlock()
	}
}

// ReadFrame reads one whole packet — fixed header, remaining length, body — from br without
// decoding it, refusing a packet larger than maxSize bytes. It fails on a remaining length longer
// than four bytes, after which the stream cannot be framed any more.
func ReadFrame(br *bufio.Reader, maxSize int) ([]byte, error) {
	first, err := br.ReadByte()
	if err != nil {
		return nil, err
	}
	frame := []byte{first}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		frame = append(frame, b)
		n += int(b&0x7F) * mult
		if b&0x80 == 0 {
			break
		}
		if i == packet.MaxVarintLen-1 {
			return nil, fmt.Errorf("remaining length longer than four bytes [% x]", frame)
		}
		mult <<= 7
	}
	if len(frame)+n > maxSize {
		return nil, fmt.Errorf("packet of %d bytes, more than the limit of %d", len(frame)+n, maxSize)
	}
	body := make([]byte, len(frame)+n)
	copy(body, frame)
	if _, err := io.ReadFull(br, body[len(frame):]); err != nil {
		return nil, noEOF(err)
	}
	return body, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// finish records the end of the connection.
func (c *Conn) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := c.closedBy
	if by == "" {
		by = "broker"
	}
	c.closed, c.closedBy = true, by
	text := "by the " + by
	if by == "broker" {
		c.closeErr = err
		switch {
		case errors.Is(err, io.EOF):
			text += " (FIN)"
		case errors.Is(err, io.ErrUnexpectedEOF):
			text += " (inside a packet)"
		default:
			text += " (" + err.Error() + ")"
		}
	}
	c.trace.add(Event{At: time.Now(), Conn: c.opts.Name, Dir: Closed, Text: text})
	c.notifyLocked()
}

func (c *Conn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Closed reports whether the connection has ended, and who ended it: "broker" or "client".
func (c *Conn) Closed() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closedBy
}

// Pending returns the packets received and not yet taken by an expectation, oldest first.
func (c *Conn) Pending() []packet.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]packet.Packet, 0, len(c.inbox))
	for _, e := range c.inbox {
		if e.Packet != nil {
			out = append(out, e.Packet)
		}
	}
	return out
}

// Dropped returns how many received packets did not fit in the inbox.
func (c *Conn) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Invalid returns the errors of packets from the broker that failed to decode or validate, in
// the order they arrived. A conforming broker sends none.
func (c *Conn) Invalid() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.invalid...)
}
