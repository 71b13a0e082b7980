// Package stage is the server side of device certification: an MQTT 3.1.1 and 5.0 server for
// one device, built on the packet codec, that behaves like a broker by default — CONNACK,
// SUBACK, PUBACK, the QoS 2 handshake, PINGRESP, a persistent session with redelivery — and
// misbehaves on cue, in the ways a check needs and a broker would never choose: it holds back an
// acknowledgement, drops the connection mid-flow, answers a reconnection with Session Present 0
// or a refusal, lingers after a refusal or a DISCONNECT to watch what the device does next.
//
// Every packet in either direction, every connection opened and closed and every deliberate
// misbehaviour goes into one Trace, in order, which checks wait on (with deadlines; nothing here
// sleeps) and which reports quote as evidence.
//
// A stage serves exactly one device, named by its client identifier; other clients are refused
// with CONNACK "identifier rejected", so that a stray client on the network cannot disturb a
// certification.
package stage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Defaults of Config.
const (
	DefaultMaxPacketSize  = 16 << 20
	DefaultWriteTimeout   = 5 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" picks a free loopback port.
	Addr string
	// ClientID is the device under test. Empty: the first client that connects is the device.
	ClientID string
	// MaxPacketSize bounds what the server reads from the device (default 16 MiB).
	MaxPacketSize int
	// WriteTimeout bounds every write to the device (default 5s).
	WriteTimeout time.Duration
	// ConnectTimeout closes a connection whose CONNECT has not arrived in time (default 10s).
	ConnectTimeout time.Duration
	// Trace records everything; nil creates one (see Server.Trace).
	Trace *Trace
}

// Answer says how the server answers the device's next CONNECT.
type Answer struct {
	// Code is the CONNACK reason code as 5.0 writes it (0 accepts); for 3.1.1 it is mapped to
	// the nearest return code (packet.ConnackCode).
	Code packet.ReasonCode
	// Session overrides how Session Present is decided for an accepted connection.
	Session SessionMode
	// Props are the CONNACK properties (5.0 only): Receive Maximum, Topic Alias Maximum, Server
	// Keep Alive, Maximum QoS, ...
	Props packet.Properties
	// Linger keeps a refused connection open that long, so that a check sees whether the device
	// stops on its own; the server closes it afterwards. Zero closes at once.
	Linger time.Duration
}

// SessionMode says how an accepted CONNECT's Session Present is decided.
type SessionMode byte

// The session modes.
const (
	// SessionAuto behaves like a broker: the session is resumed when the device asks for it
	// (Clean Session/Clean Start 0) and the server holds one.
	SessionAuto SessionMode = iota
	// SessionLost answers Session Present 0 and discards the server's session, as a broker that
	// restarted without persistence would: the device must subscribe again.
	SessionLost
	// SessionClaimed answers Session Present 1 whatever the server holds (a 5.0 device that asked
	// for a clean start must then close the connection, MQTT-3.2.2-4).
	SessionClaimed
)

// Hold makes the server hold back acknowledgements it would normally send at once.
type Hold struct {
	// Ack is what is held: PUBACK (answer to a QoS 1 PUBLISH), PUBREC (QoS 2 PUBLISH), PUBCOMP
	// (the device's PUBREL), PUBREL (the server's answer to the device's PUBREC of a message the
	// server sent) or PINGRESP.
	Ack packet.Type
	// Match selects the PUBLISH whose PUBACK or PUBREC is held; nil selects every one.
	Match func(p *packet.Publish) bool
	// ID selects the packet identifier of a held PUBCOMP or PUBREL; 0 selects every one.
	ID uint16
	// Count is how many acknowledgements to hold; 0 or less holds every one until ClearHolds.
	Count int
}

// ErrNoConnection is returned by operations that need the device connected when it is not.
var ErrNoConnection = errors.New("the device is not connected")

// Server is a stage listening for the device.
type Server struct {
	cfg  Config
	ln   net.Listener
	tr   *Trace
	quit chan struct{}
	wg   sync.WaitGroup // every goroutine the server starts (see goFunc)
	stop sync.Once

	// mu protects everything below. Lock order: Server.mu before conn.wmu; no write to the
	// network happens under Server.mu.
	mu       sync.Mutex
	clientID string
	conns    map[*conn]struct{}
	device   map[int]bool // connection numbers that belong to the device under test
	cur      *conn        // the device's accepted connection, nil when there is none
	nconn    int
	sess     *session
	answers  []Answer
	holds    []*Hold
	closed   bool
}

// Listen starts a stage on cfg.Addr.
func Listen(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Trace == nil {
		cfg.Trace = NewTrace()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{
		cfg:      cfg,
		ln:       ln,
		tr:       cfg.Trace,
		quit:     make(chan struct{}),
		clientID: cfg.ClientID,
		conns:    map[*conn]struct{}{},
		device:   map[int]bool{},
	}
	s.goFunc(s.acceptLoop)
	return s, nil
}

// goFunc starts f on a goroutine counted in s.wg, added before the goroutine starts so that
// Close never misses one.
func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Trace returns the trace of the device's connections.
func (s *Server) Trace() *Trace { return s.tr }

// ClientID returns the device's client identifier ("" until known when Config.ClientID was empty).
func (s *Server) ClientID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientID
}

// IsDevice reports whether connection n belongs to the device under test (and not to a client
// the server refused).
func (s *Server) IsDevice(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.device[n]
}

// Close stops listening, closes every connection and waits for the server's goroutines.
func (s *Server) Close() error {
	var err error
	s.stop.Do(func() {
		close(s.quit)
		err = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.shut("the certification ended")
		}
		s.wg.Wait()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) acceptLoop() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.tr.add(Event{Kind: Note, Text: "accept failed", Err: err})
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.nconn++
		c := &conn{s: s, n: s.nconn, nc: nc, aliases: map[uint16]string{}}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.tr.add(Event{Conn: c.n, Kind: Opened, Text: "connection from " + nc.RemoteAddr().String()})
		s.goFunc(c.serve)
	}
}

// AnswerNext queues how the server answers the device's next CONNECT; queued answers are used
// in order, one per CONNECT, and the server behaves like a broker when none is queued.
func (s *Server) AnswerNext(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = append(s.answers, a)
}

// Hold adds a rule that holds acknowledgements back (see Hold).
func (s *Server) Hold(h Hold) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hh := h
	s.holds = append(s.holds, &hh)
}

// ClearHolds removes every hold rule; held acknowledgements are not sent (the device resends
// what it still needs acknowledged, or the check answers it with Send).
func (s *Server) ClearHolds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = nil
}

// hold reports whether an acknowledgement of type ack for p (or packet identifier id) must be
// held, consuming one count of the first rule that matches. Called with s.mu held.
func (s *Server) hold(ack packet.Type, p *packet.Publish, id uint16) bool {
	for i, h := range s.holds {
		if h.Ack != ack {
			continue
		}
		switch ack {
		case packet.TypePuback, packet.TypePubrec:
			if h.Match != nil && !h.Match(p) {
				continue
			}
		case packet.TypePubcomp, packet.TypePubrel:
			if h.ID != 0 && h.ID != id {
				continue
			}
		}
		if h.Count > 0 {
			h.Count--
			if h.Count == 0 {
				s.holds = append(s.holds[:i], s.holds[i+1:]...)
			}
		}
		return true
	}
	return false
}

// Connected returns the number and CONNECT of the device's current connection.
func (s *Server) Connected() (n int, connect *packet.Connect, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0, nil, false
	}
	return s.cur.n, s.cur.connect, true
}

// Subscriptions returns the topic filters the device's session holds, with their granted QoS.
func (s *Server) Subscriptions() map[string]packet.QoS {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return map[string]packet.QoS{}
	}
	return s.sess.subscriptions()
}

// Granted returns the QoS at which a message on topic would reach the device, and whether any
// of its subscriptions matches.
func (s *Server) Granted(topic string) (packet.QoS, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return 0, false
	}
	return s.sess.grant(topic)
}

// Publish sends an application message to the device on its current connection, at qos (which
// the caller bounds by the granted QoS), and returns the connection and packet identifier used.
// QoS 1 and 2 messages stay in the session until acknowledged and are redelivered, with DUP, when
// the device resumes its session.
func (s *Server) Publish(topic string, payload []byte, qos packet.QoS) (conn int, id uint16, err error) {
	s.mu.Lock()
	c := s.cur
	if c == nil {
		s.mu.Unlock()
		return 0, 0, ErrNoConnection
	}
	p := &packet.Publish{Topic: topic, Payload: payload, QoS: qos}
	if qos > 0 {
		if p.PacketID = s.sess.allocID(); p.PacketID == 0 {
			s.mu.Unlock()
			return c.n, 0, errors.New("publish to the device: every packet identifier is in use")
		}
		s.sess.out[p.PacketID] = &outbound{pub: p}
		s.sess.order = append(s.sess.order, p.PacketID)
	}
	s.mu.Unlock()
	return c.n, p.PacketID, c.write(p)
}

// Resend sends again, with DUP set, a message the server published and the device has not
// acknowledged; checks use it to see whether a QoS 2 receiver answers a repeat without
// delivering the message twice.
func (s *Server) Resend(id uint16) error {
	s.mu.Lock()
	c := s.cur
	var p *packet.Publish
	if s.sess != nil {
		if o, ok := s.sess.out[id]; ok && !o.released {
			cp := *o.pub
			cp.Dup = true
			p = &cp
		}
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		return ErrNoConnection
	case p == nil:
		return fmt.Errorf("resend packet %d: no unacknowledged message with that identifier", id)
	}
	return c.write(p)
}

// Release sends the PUBREL of a message the server published at QoS 2 and whose PUBREL a Hold
// kept back.
func (s *Server) Release(id uint16) error {
	s.mu.Lock()
	c := s.cur
	ok := false
	if s.sess != nil {
		if o, found := s.sess.out[id]; found {
			o.released, ok = true, true
		}
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		return ErrNoConnection
	case !ok:
		return fmt.Errorf("release packet %d: no message in flight with that identifier", id)
	}
	return c.write(&packet.Pubrel{PacketID: id})
}

// Send writes any packet to the device's current connection.
func (s *Server) Send(p packet.Packet) error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return ErrNoConnection
	}
	return c.write(p)
}

// Drop closes the device's current connection from the server side (a FIN, as when a broker
// goes away), with the reason recorded in the trace. It returns the connection's number.
func (s *Server) Drop(reason string) (int, error) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return 0, ErrNoConnection
	}
	c.shut(reason)
	return c.n, nil
}

// Disconnect sends a 5.0 DISCONNECT with the reason code to the device, then keeps the
// connection open for linger to see whether the device closes it and stays silent, and closes it
// afterwards.
func (s *Server) Disconnect(code packet.ReasonCode, linger time.Duration) (int, error) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return 0, ErrNoConnection
	}
	if c.v != packet.V5 {
		return c.n, fmt.Errorf("a server sends DISCONNECT only in MQTT 5.0; the device speaks %s", c.v)
	}
	if err := c.write(&packet.Disconnect{Code: code}); err != nil {
		return c.n, err
	}
	c.lingerThenClose(linger, fmt.Sprintf("the server closed the connection %s after its DISCONNECT", linger))
	return c.n, nil
}

// conn is one network connection from the device (or from a client that is refused).
type conn struct {
	s       *Server
	n       int
	nc      net.Conn
	v       packet.Version
	connect *packet.Connect
	aliases map[uint16]string // 5.0 topic aliases the device set (read goroutine only)

	// wmu serializes writes to nc.
	wmu sync.Mutex

	// closeMu protects reason, lingerReason and silenced.
	closeMu sync.Mutex
	reason  string // why the server closed the connection; empty while it has not
	// lingerReason is why the server will close the connection when its read deadline passes
	// (after a refusal or a DISCONNECT); the device may close it first.
	lingerReason string
	// silenced is set once the server refused the connection or sent DISCONNECT: the server
	// answers nothing more on it and records what the device still sends.
	silenced bool
}

// write encodes p for the connection's version, writes it with the write deadline and records it.
func (c *conn) write(p packet.Packet) error {
	b, err := packet.Encode(p, c.version())
	if err != nil {
		return fmt.Errorf("encode %s: %w", p.Type(), err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Recorded before the write: the device may answer before Write returns, and the trace must
	// show the cause before the effect.
	c.s.tr.add(Event{Conn: c.n, Kind: ToDevice, Packet: p})
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.s.tr.add(Event{Conn: c.n, Kind: Note, Err: err, Text: fmt.Sprintf("the %s above could not be written", p.Type())})
		return fmt.Errorf("write %s to connection %d: %w", p.Type(), c.n, err)
	}
	return nil
}

func (c *conn) version() packet.Version {
	if c.v == 0 {
		return packet.V311
	}
	return c.v
}

// shut closes the connection from the server side, once, remembering why.
func (c *conn) shut(reason string) {
	c.closeMu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.closeMu.Unlock()
	_ = c.nc.Close()
}

// lingerThenClose lets the read loop run for d more (recording whatever the device sends, and
// answering nothing), then closes the connection with reason unless the device closed it first.
func (c *conn) lingerThenClose(d time.Duration, reason string) {
	c.closeMu.Lock()
	c.lingerReason = reason
	c.silenced = true
	c.closeMu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
}

func (c *conn) isSilenced() bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.silenced
}

func (c *conn) closedBy() (reason string, byServer bool) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.reason, c.reason != ""
}

// serve is the connection's read loop: it reads the CONNECT, answers it, then reads and answers
// packets until the connection ends.
func (c *conn) serve() {
	s := c.s
	var endErr error
	defer func() {
		_ = c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		wasCur := s.cur == c
		if wasCur {
			s.cur = nil
			// A 5.0 session with Session Expiry Interval 0 ends with its connection (MQTT-3.1.2-23).
			if c.v == packet.V5 && c.connect != nil && c.connect.Props.SessionExpiry == 0 {
				s.sess = nil
			}
		}
		s.mu.Unlock()
		reason, byServer := c.closedBy()
		ev := Event{Conn: c.n, Kind: Closed, ByDevice: !byServer}
		switch {
		case byServer:
			ev.Text = "closed by the server: " + reason
		case endErr == nil || errors.Is(endErr, io.EOF):
			ev.Text = "closed by the device"
		default:
			ev.Text = "closed by the device"
			ev.Err = endErr
		}
		s.tr.add(ev)
	}()

	br := bufio.NewReader(c.nc)
	r := packet.NewReader(br, s.cfg.MaxPacketSize)
	_ = c.nc.SetReadDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	first, err := r.ReadPacket()
	if err != nil {
		endErr = c.readFailed(first, err, true)
		return
	}
	connect, ok := first.(*packet.Connect)
	if !ok {
		// MQTT-3.1.0-1: the first packet from the client is CONNECT.
		s.tr.add(Event{Conn: c.n, Kind: FromDevice, Packet: first,
			Err: fmt.Errorf("the first packet on a connection must be CONNECT, not %s (MQTT-3.1.0-1)", first.Type())})
		c.shut("the first packet was not CONNECT (a server closes the connection, MQTT-3.1.4-1)")
		return
	}
	c.v = connect.Version
	c.connect = connect
	ev := Event{Conn: c.n, Kind: FromDevice, Packet: connect, Err: packet.Validate(connect, c.v, packet.Client)}
	s.tr.add(ev)
	if !c.accept(connect) {
		return
	}
	if !c.isSilenced() {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	for {
		p, err := r.ReadPacket()
		if err != nil {
			endErr = c.readFailed(p, err, false)
			return
		}
		if !c.handle(p) {
			return
		}
	}
}

// readFailed records why reading stopped and returns the error that ended the connection.
func (c *conn) readFailed(p packet.Packet, err error, first bool) error {
	var pe *packet.Error
	switch {
	case errors.As(err, &pe):
		c.s.tr.add(Event{Conn: c.n, Kind: FromDevice, Packet: p, Err: err, Malformed: true, Text: "malformed packet"})
		c.shut("the device sent a malformed packet (" + pe.Rule + ")")
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.closeMu.Lock()
		linger := c.lingerReason
		c.closeMu.Unlock()
		switch {
		case linger != "":
			c.shut(linger)
		case first:
			c.shut("no CONNECT within " + c.s.cfg.ConnectTimeout.String())
		}
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the connection ended inside a packet: %w", err)
	}
	return err
}

// accept answers the CONNECT; it reports whether the connection goes on.
func (c *conn) accept(p *packet.Connect) bool {
	s := c.s
	s.mu.Lock()
	if s.clientID == "" {
		s.clientID = p.ClientID
	}
	if p.ClientID != s.clientID {
		want := s.clientID
		s.mu.Unlock()
		s.tr.add(Event{Conn: c.n, Kind: Note, Text: fmt.Sprintf("client %q is not the device under test (%q): refused", p.ClientID, want)})
		code := packet.ConnRefusedIdentifierRejected
		if c.v == packet.V5 {
			code = packet.ClientIdentifierNotValid
		}
		_ = c.write(&packet.Connack{Code: code})
		c.shut("refused a client that is not the device under test")
		return false
	}
	s.device[c.n] = true
	var a Answer
	if len(s.answers) > 0 {
		a = s.answers[0]
		s.answers = s.answers[1:]
	}
	var old *conn
	if s.cur != nil && s.cur != c {
		old = s.cur
	}
	ack := &packet.Connack{}
	if c.v == packet.V5 {
		ack.Code = a.Code
		ack.Props = a.Props
	} else {
		ack.Code = packet.ConnackCode(c.v, a.Code)
	}
	var resend []packet.Packet
	if a.Code == 0 {
		switch {
		case a.Session == SessionLost || p.CleanStart || s.sess == nil:
			s.sess = newSession()
			ack.SessionPresent = a.Session == SessionClaimed
		default:
			ack.SessionPresent = true
			resend = s.sess.redeliveries()
		}
		s.cur = c
	}
	s.mu.Unlock()

	if old != nil {
		old.shut(fmt.Sprintf("connection %d of the same client took over", c.n))
	}
	if a.Code != 0 {
		if err := c.write(ack); err != nil {
			c.shut("could not send CONNACK")
			return false
		}
		if a.Linger <= 0 {
			c.shut("refused the connection")
			return false
		}
		c.lingerThenClose(a.Linger, fmt.Sprintf("refused the connection and closed it %s later", a.Linger))
		return true
	}
	if err := c.write(ack); err != nil {
		c.shut("could not send CONNACK")
		return false
	}
	for _, rp := range resend {
		if err := c.write(rp); err != nil {
			return false
		}
	}
	return true
}

// redeliveries returns what the server resends when the device resumes its session: unacknowledged
// PUBLISH packets with DUP set and PUBRELs, in their original order (MQTT-4.4.0-1).
func (s *session) redeliveries() []packet.Packet {
	var out []packet.Packet
	for _, id := range s.order {
		o := s.out[id]
		if o.released {
			out = append(out, &packet.Pubrel{PacketID: id})
			continue
		}
		cp := *o.pub
		cp.Dup = true
		out = append(out, &cp)
	}
	return out
}

// handle records one packet from the device and answers it as a broker would, unless a hold
// rule says otherwise. It reports whether the connection goes on.
func (c *conn) handle(p packet.Packet) bool {
	s := c.s
	ev := Event{Conn: c.n, Kind: FromDevice, Packet: p, Err: packet.Validate(p, c.v, packet.Client)}
	if c.isSilenced() {
		// After a refusal or a DISCONNECT from the server the device must stop using the
		// connection; record what it sends, answer nothing.
		s.tr.add(ev)
		return true
	}
	var replies []packet.Packet
	var notes []Event
	closeAfter := ""

	if pub, ok := p.(*packet.Publish); ok && c.v == packet.V5 && pub.Props.TopicAlias != 0 {
		// Topic aliases (5.0 §3.3.2.3.4): the trace keeps the topic the alias stands for.
		alias := pub.Props.TopicAlias
		if pub.Topic != "" {
			c.aliases[alias] = pub.Topic
		} else if t, known := c.aliases[alias]; known {
			pub.Topic = t
			ev.Text = "topic from alias " + strconv.Itoa(int(alias))
		} else if ev.Err == nil {
			ev.Err = fmt.Errorf("PUBLISH with topic alias %d that no earlier PUBLISH on this connection set (protocol error 0x82)", alias)
		}
	}

	s.mu.Lock()
	sess := s.sess
	switch p := p.(type) {
	case *packet.Connect:
		ev.Err = errors.New("a second CONNECT on one connection is a protocol violation (MQTT-3.1.0-2)")
		closeAfter = "the device sent a second CONNECT"
	case *packet.Publish:
		switch p.QoS {
		case 1:
			if s.hold(packet.TypePuback, p, p.PacketID) {
				notes = append(notes, heldNote(c.n, packet.TypePuback, p.PacketID))
			} else {
				replies = append(replies, &packet.Puback{PacketID: p.PacketID})
			}
		case 2:
			switch {
			case sess != nil && sess.inQoS2[p.PacketID]:
				// A repeat of a message the server already owns: PUBREC again, deliver nothing
				// twice (MQTT-4.3.3-2).
				replies = append(replies, &packet.Pubrec{PacketID: p.PacketID})
			case s.hold(packet.TypePubrec, p, p.PacketID):
				notes = append(notes, heldNote(c.n, packet.TypePubrec, p.PacketID))
			default:
				if sess != nil {
					sess.inQoS2[p.PacketID] = true
				}
				replies = append(replies, &packet.Pubrec{PacketID: p.PacketID})
			}
		}
	case *packet.Pubrel:
		if s.hold(packet.TypePubcomp, nil, p.PacketID) {
			notes = append(notes, heldNote(c.n, packet.TypePubcomp, p.PacketID))
		} else {
			if sess != nil {
				delete(sess.inQoS2, p.PacketID)
			}
			replies = append(replies, &packet.Pubcomp{PacketID: p.PacketID})
		}
	case *packet.Puback:
		if sess != nil {
			sess.forget(p.PacketID)
		}
	case *packet.Pubrec:
		if sess != nil {
			if o, ok := sess.out[p.PacketID]; ok && p.Code < 0x80 {
				if s.hold(packet.TypePubrel, nil, p.PacketID) {
					notes = append(notes, heldNote(c.n, packet.TypePubrel, p.PacketID))
				} else {
					o.released = true
					replies = append(replies, &packet.Pubrel{PacketID: p.PacketID})
				}
			} else if ok {
				sess.forget(p.PacketID)
			}
		}
	case *packet.Pubcomp:
		if sess != nil {
			sess.forget(p.PacketID)
		}
	case *packet.Subscribe:
		ack := &packet.Suback{PacketID: p.PacketID}
		for _, sub := range p.Subscriptions {
			q := min(sub.QoS, 2)
			if packet.ValidTopicFilter(c.v, sub.Filter) != nil {
				ack.Codes = append(ack.Codes, packet.ReasonCode(0x80))
				continue
			}
			if sess != nil {
				sess.subs[sub.Filter] = q
			}
			ack.Codes = append(ack.Codes, packet.ReasonCode(q))
		}
		replies = append(replies, ack)
	case *packet.Unsubscribe:
		ack := &packet.Unsuback{PacketID: p.PacketID}
		for _, f := range p.Filters {
			had := false
			if sess != nil {
				_, had = sess.subs[f]
				delete(sess.subs, f)
			}
			if c.v == packet.V5 {
				code := packet.ReasonCode(0x00)
				if !had {
					code = 0x11 // No subscription existed
				}
				ack.Codes = append(ack.Codes, code)
			}
		}
		replies = append(replies, ack)
	case *packet.Pingreq:
		if s.hold(packet.TypePingresp, nil, 0) {
			notes = append(notes, heldNote(c.n, packet.TypePingresp, 0))
		} else {
			replies = append(replies, &packet.Pingresp{})
		}
	case *packet.Disconnect:
		// The device must close the connection now (MQTT-3.14.4-1/-2); the server watches for a
		// moment whether it sends anything more, then closes it itself.
		c.lingerThenClose(time.Second, "the device sent DISCONNECT but did not close the connection within 1s")
	case *packet.Auth:
		closeAfter = "the device sent AUTH, but the server offers no enhanced authentication"
	}
	s.mu.Unlock()

	s.tr.add(ev)
	for _, n := range notes {
		s.tr.add(n)
	}
	for _, r := range replies {
		if err := c.write(r); err != nil {
			return false
		}
	}
	if closeAfter != "" {
		c.shut(closeAfter)
		return false
	}
	return true
}

func heldNote(conn int, ack packet.Type, id uint16) Event {
	text := fmt.Sprintf("held back %s for packet %d", ack, id)
	if ack == packet.TypePingresp {
		text = "held back PINGRESP"
	}
	return Event{Conn: conn, Kind: Note, Held: &Held{Ack: ack, ID: id}, Text: text}
}
