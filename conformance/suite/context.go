package suite

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// C is the context of one running check: its broker, its unique names, its connections and their
// shared packet trace, and assertions that fail the check in the way its level requires. It
// embeds a Gomega whose failures count like the check's own (c.Expect(x).To(Equal(y))); use it
// instead of the global Expect, which would fail a Should check instead of warning.
type C struct {
	gomega.Gomega

	// Env is the broker under test and the run's settings.
	Env *Env
	// Version is the protocol version of the check (spec.Version311, spec.Version5).
	Version string
	// Level is Must or Should.
	Level Level
	// IDs are the statements the check covers.
	IDs []spec.ID

	// blame lists the statements a failure is attributed to; nil means every statement of the
	// check (see For).
	blame    []spec.ID
	ctx      context.Context
	uniq     string
	trace    *wire.Trace
	conns    []*wire.Conn
	ids      map[*wire.Conn]uint16
	sessions map[string]packet.Version // client ids that connected with a persistent session
}

// unique returns 8 random characters from [0-9a-z], enough that two checks (or two runs against
// one broker) never share client identifiers or topics.
func unique() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 8)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// warning is the panic a failed Should check unwinds with; runCheck turns it into a warning.
type warning struct{ msg string }

// notSupported is the panic a check unwinds with when the broker lacks what it needs.
type notSupported struct{ msg string }

func newC(ctx context.Context, env *Env, level Level, version string, ids []spec.ID) *C {
	c := &C{Env: env, Version: version, Level: level, IDs: ids, ctx: ctx, uniq: unique(), trace: wire.NewTrace(),
		ids: map[*wire.Conn]uint16{}, sessions: map[string]packet.Version{}}
	c.Gomega = gomega.NewGomega(func(msg string, skip ...int) {
		c.failAt(msg, 1+first(skip))
	})
	return c
}

// For returns a view of the check whose failures are attributed only to the given statements,
// which must be among the check's own. A check uses it where it relies on behaviour that another
// of its statements governs, so that a failure there does not condemn the statements it was on
// its way to judge:
//
//	in := c.AwaitPublish(sub, wire.PublishOn(topic))
//	c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS2), "QoS of the delivery")
//	// ... now judge the QoS 2 flow of MQTT-4.3.3-1
func (c *C) For(ids ...spec.ID) *C {
	for _, id := range ids {
		if !slices.Contains(c.IDs, id) {
			panic(fmt.Sprintf("suite: For(%s): the check does not cite %s; add it to the check's IDs", id, id))
		}
	}
	v := *c
	v.blame = ids
	v.Gomega = gomega.NewGomega(func(msg string, skip ...int) { v.failAt(msg, 1+first(skip)) })
	return &v
}

func first(skip []int) int {
	if len(skip) > 0 {
		return skip[0]
	}
	return 0
}

// Context returns the check's context, cancelled when the check times out or the run is
// interrupted.
func (c *C) Context() context.Context { return c.ctx }

// Unique returns the check's unique string (8 characters from [0-9a-z]).
func (c *C) Unique() string { return c.uniq }

// Trace returns the packet trace of the check's connections.
func (c *C) Trace() *wire.Trace { return c.trace }

// Timeout is the deadline of an expectation a conforming broker meets at once.
func (c *C) Timeout() time.Duration { return c.Env.Timeout }

// Window is how long AwaitNothing watches.
func (c *C) Window() time.Duration { return c.Env.Window }

// PacketVersion returns the packet codec's version of the check.
func (c *C) PacketVersion() packet.Version {
	if c.Version == spec.Version5 {
		return packet.V5
	}
	return packet.V311
}

// ClientID returns the check's client identifier for a role ("sub", "pub", "dev1"): at most 23
// characters from [0-9a-zA-Z], as every MQTT 3.1.1 server must accept ([MQTT-3.1.3-5]), unique
// to the check.
func (c *C) ClientID(role string) string {
	var b strings.Builder
	b.WriteString("gh")
	b.WriteString(c.uniq)
	for _, r := range role {
		if b.Len() >= 23 {
			break
		}
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Topic returns a topic under the check's own prefix: "gatehouse/<unique>/levels...". Filters
// built from it see only the check's own messages.
func (c *C) Topic(levels ...string) string {
	return strings.Join(append([]string{"gatehouse", c.uniq}, levels...), "/")
}

// Step writes a note into the trace, to make the evidence read as the steps of the check.
func (c *C) Step(format string, args ...any) { c.trace.Notef("check", format, args...) }

// Failf fails the check (or, for a Should check, ends it with a warning) with a message.
func (c *C) Failf(format string, args ...any) { c.failAt(fmt.Sprintf(format, args...), 1) }

func (c *C) failAt(msg string, skip int) {
	ids := c.IDs
	if c.blame != nil {
		ids = c.blame
	}
	ginkgo.AddReportEntry(entryBlame, ginkgo.ReportEntryVisibilityNever, blameEntry(ids))
	msg = c.cite(ids) + msg
	if c.Level == LevelShould {
		panic(warning{msg})
	}
	failHandler(msg, skip+1)
}

// cite prefixes messages with the statements a failure is attributed to, e.g.
// "MQTT 3.1.1 [MQTT-3.3.1-4]: ".
func (c *C) cite(ids []spec.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return "MQTT " + c.Version + " [" + strings.Join(s, ", ") + "]: "
}

// NotSupported ends the check as "not supported": the broker lacks an optional feature the check
// needs. It is for optional behaviour only, never for a failure of a requirement.
func (c *C) NotSupported(format string, args ...any) {
	panic(notSupported{fmt.Sprintf(format, args...)})
}

// Require ends the check as "not supported" unless the broker offers feature f in the check's
// version.
func (c *C) Require(f Feature) {
	caps := c.Env.Caps[c.Version]
	if !caps.Has[f] {
		c.NotSupported("the broker does not offer %s (%s)", f, caps.Source[f])
	}
}

// Must fails the check when err is not nil, naming what was being done.
func (c *C) Must(err error, doing string) {
	if err != nil {
		c.failAt(doing+": "+err.Error(), 1)
	}
}

// Dial opens a connection of the check's version without sending anything. name labels it in the
// trace. The check's end closes it.
func (c *C) Dial(name string) *wire.Conn { return c.DialVersion(name, c.PacketVersion()) }

// DialVersion opens a connection whose packets are encoded and decoded for version v.
func (c *C) DialVersion(name string, v packet.Version) *wire.Conn {
	return c.DialURL(name, c.Env.URL, v)
}

// DialURL opens a connection to another listener of the broker (its WebSocket URL, say).
func (c *C) DialURL(name, url string, v packet.Version) *wire.Conn {
	ctx, cancel := context.WithTimeout(c.ctx, c.Timeout()+3*time.Second)
	defer cancel()
	conn, err := wire.Dial(ctx, url, wire.Options{Version: v, Name: name, Trace: c.trace, TLS: c.Env.TLS})
	if err != nil {
		c.failAt("connect to the broker: "+err.Error(), 1)
	}
	c.conns = append(c.conns, conn)
	return conn
}

// ConnectPacket returns the CONNECT a check sends for a role by default: the role's client
// identifier, a clean session, keepalive 60 s and the run's credentials. Checks change fields
// before sending it.
func (c *C) ConnectPacket(role string) *packet.Connect {
	p := &packet.Connect{ClientID: c.ClientID(role), CleanStart: true, KeepAlive: 60}
	if c.Env.HasCredentials {
		p.Username, p.UsernameFlag = c.Env.Username, true
		p.Password, p.PasswordFlag = []byte(c.Env.Password), true
	}
	return p
}

// Connect dials and connects as role, changed by the options, and requires the broker to accept
// (CONNACK return code 0). It returns the connection and the CONNACK.
func (c *C) Connect(role string, opts ...func(*packet.Connect)) (*wire.Conn, *packet.Connack) {
	p := c.ConnectPacket(role)
	for _, o := range opts {
		o(p)
	}
	conn := c.Dial(role)
	ack := c.Handshake(conn, p)
	if ack.Code != packet.Success {
		c.failAt(fmt.Sprintf("%s: the broker refused a valid CONNECT with code 0x%02X", role, byte(ack.Code)), 1)
	}
	return conn, ack
}

// Handshake sends a CONNECT on a dialled connection and returns the CONNACK, whatever its code.
func (c *C) Handshake(conn *wire.Conn, p *packet.Connect) *packet.Connack {
	if !p.CleanStart || (c.Version == spec.Version5 && p.Props.SessionExpiry > 0) {
		c.sessions[p.ClientID] = c.PacketVersion()
	}
	ack, err := conn.Connect(c.Timeout(), p)
	if err != nil {
		c.failAt(conn.Name()+": "+err.Error(), 1)
	}
	return ack
}

// Persistent is a Connect option: a persistent session (CleanSession 0 in 3.1.1; in 5.0 Clean
// Start 0 and a Session Expiry Interval of an hour).
func (c *C) Persistent() func(*packet.Connect) {
	return func(p *packet.Connect) {
		p.CleanStart = false
		if c.Version == spec.Version5 {
			p.Props.SessionExpiry = 3600
		}
	}
}

// NextID returns the next packet identifier for a connection: 1, 2, 3, ...
func (c *C) NextID(conn *wire.Conn) uint16 {
	c.ids[conn]++
	if c.ids[conn] == 0 {
		c.ids[conn] = 1
	}
	return c.ids[conn]
}

// Send writes a packet, failing the check when the write fails.
func (c *C) Send(conn *wire.Conn, p packet.Packet) {
	if err := conn.Send(p); err != nil {
		c.failAt(err.Error(), 1)
	}
}

// SendRaw writes bytes as they are (packet.Build output), failing the check when the write fails.
func (c *C) SendRaw(conn *wire.Conn, b []byte) {
	if err := conn.SendRaw(b); err != nil {
		c.failAt(err.Error(), 1)
	}
}

// TrySendRaw writes bytes and ignores a failed write: after a malformed packet the broker may
// already have closed the connection, which is what the check is waiting for.
func (c *C) TrySendRaw(conn *wire.Conn, b []byte) { _ = conn.SendRaw(b) }

// Await waits up to Timeout for a packet matching pred and returns it.
func (c *C) Await(conn *wire.Conn, pred wire.Predicate) packet.Packet {
	p, err := conn.ExpectPacket(c.Timeout(), pred)
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	return p
}

// AwaitWithin waits up to d for a packet matching pred and returns it.
func (c *C) AwaitWithin(conn *wire.Conn, d time.Duration, pred wire.Predicate) packet.Packet {
	p, err := conn.ExpectPacket(d, pred)
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	return p
}

// AwaitPublish waits up to Timeout for a PUBLISH matching pred.
func (c *C) AwaitPublish(conn *wire.Conn, pred wire.Predicate) *packet.Publish {
	p, err := conn.ExpectPacket(c.Timeout(), wire.And(wire.IsType(packet.TypePublish), pred))
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	return p.(*packet.Publish)
}

// AwaitNext waits up to Timeout for the next packet, whatever it is.
func (c *C) AwaitNext(conn *wire.Conn) packet.Packet {
	p, err := conn.ExpectNext(c.Timeout())
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	return p
}

// AwaitClosed waits up to Timeout for the broker to close the connection.
func (c *C) AwaitClosed(conn *wire.Conn) {
	if err := conn.ExpectClosed(c.Timeout()); err != nil {
		c.failAt(err.Error(), 1)
	}
}

// AwaitClosedWithin waits up to d for the broker to close the connection.
func (c *C) AwaitClosedWithin(conn *wire.Conn, d time.Duration) {
	if err := conn.ExpectClosed(d); err != nil {
		c.failAt(err.Error(), 1)
	}
}

// AwaitNothing watches the connection for Window and fails if a packet matching pred arrives
// (any packet when pred is nil).
func (c *C) AwaitNothing(conn *wire.Conn, pred wire.Predicate) {
	if err := conn.ExpectNothing(c.Window(), pred); err != nil {
		c.failAt(err.Error(), 1)
	}
}

// Subscribe subscribes to filters at qos and returns the SUBACK's return codes, one per filter.
func (c *C) Subscribe(conn *wire.Conn, qos packet.QoS, filters ...string) []packet.ReasonCode {
	subs := make([]packet.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = packet.Subscription{Filter: f, QoS: qos}
	}
	return c.SubscribeWith(conn, subs...)
}

// SubscribeWith sends one SUBSCRIBE with the given subscriptions and returns the SUBACK's codes.
func (c *C) SubscribeWith(conn *wire.Conn, subs ...packet.Subscription) []packet.ReasonCode {
	id := c.NextID(conn)
	c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: subs})
	p, err := conn.ExpectPacket(c.Timeout(), wire.SubackFor(id))
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	codes := append([]packet.ReasonCode(nil), p.(*packet.Suback).Codes...)
	if len(codes) != len(subs) {
		c.failAt(fmt.Sprintf("SUBACK has %d return codes for %d topic filters", len(codes), len(subs)), 1)
	}
	return codes
}

// Unsubscribe sends one UNSUBSCRIBE and waits for its UNSUBACK.
func (c *C) Unsubscribe(conn *wire.Conn, filters ...string) *packet.Unsuback {
	id := c.NextID(conn)
	c.Send(conn, &packet.Unsubscribe{PacketID: id, Filters: filters})
	p, err := conn.ExpectPacket(c.Timeout(), wire.UnsubackFor(id))
	if err != nil {
		c.failAt(err.Error(), 1)
	}
	return p.(*packet.Unsuback)
}

// Publish sends a PUBLISH (giving it a packet identifier when its QoS needs one and it has none)
// and completes the QoS flow as a well-behaved client: waits for PUBACK (QoS 1) or PUBREC, sends
// PUBREL and waits for PUBCOMP (QoS 2).
func (c *C) Publish(conn *wire.Conn, p *packet.Publish) {
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.NextID(conn)
	}
	c.Send(conn, p)
	var err error
	switch p.QoS {
	case 1:
		_, err = conn.ExpectPacket(c.Timeout(), wire.PubackFor(p.PacketID))
	case 2:
		if _, err = conn.ExpectPacket(c.Timeout(), wire.PubrecFor(p.PacketID)); err == nil {
			c.Send(conn, &packet.Pubrel{PacketID: p.PacketID})
			_, err = conn.ExpectPacket(c.Timeout(), wire.PubcompFor(p.PacketID))
		}
	}
	if err != nil {
		c.failAt(err.Error(), 1)
	}
}

// PublishMsg publishes payload on topic at qos, retained or not, and completes the flow.
func (c *C) PublishMsg(conn *wire.Conn, topic, payload string, qos packet.QoS, retain bool) {
	c.Publish(conn, &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
}

// Put publishes p as a step of a check that is not about the publish flow itself: it sends the
// PUBLISH, answers the broker's PUBREC with PUBREL when one comes, and returns once the broker
// has read the packets (a PINGREQ sent after them has been answered). A missing or late
// acknowledgement is not this check's failure: the checks of the QoS flows judge those. A broker
// may deliver a QoS 2 message on PUBLISH or only on PUBREL; Put lets it do either.
func (c *C) Put(conn *wire.Conn, p *packet.Publish) {
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.NextID(conn)
	}
	c.Send(conn, p)
	c.barrier(conn)
	if p.QoS == 2 {
		// Brokers answer in order, so a PUBREC for the PUBLISH came before the PINGRESP.
		if _, err := conn.ExpectPacket(0, wire.PubrecFor(p.PacketID)); err == nil {
			c.Send(conn, &packet.Pubrel{PacketID: p.PacketID})
			c.barrier(conn)
		}
	}
}

// PutMsg is Put of payload on topic at qos, retained or not.
func (c *C) PutMsg(conn *wire.Conn, topic, payload string, qos packet.QoS, retain bool) {
	c.Put(conn, &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
}

// barrier sends PINGREQ and waits for its PINGRESP: the broker has then read everything sent
// before on the connection.
func (c *C) barrier(conn *wire.Conn) {
	c.Send(conn, &packet.Pingreq{})
	if _, err := conn.ExpectPacket(c.Timeout(), wire.IsType(packet.TypePingresp)); err != nil {
		c.failAt(err.Error(), 2)
	}
}

// Sync returns once the broker has read everything sent on conn so far (PINGREQ, PINGRESP).
func (c *C) Sync(conn *wire.Conn) { c.barrier(conn) }

// Ack acknowledges a PUBLISH the broker sent as a well-behaved client: PUBACK for QoS 1; PUBREC,
// then the broker's PUBREL, then PUBCOMP for QoS 2.
func (c *C) Ack(conn *wire.Conn, p *packet.Publish) {
	switch p.QoS {
	case 1:
		c.Send(conn, &packet.Puback{PacketID: p.PacketID})
	case 2:
		c.Send(conn, &packet.Pubrec{PacketID: p.PacketID})
		if _, err := conn.ExpectPacket(c.Timeout(), wire.PubrelFor(p.PacketID)); err != nil {
			c.failAt(err.Error(), 1)
		}
		c.Send(conn, &packet.Pubcomp{PacketID: p.PacketID})
	}
}

// Close closes a connection without DISCONNECT, as a device that loses power would.
func (c *C) Close(conn *wire.Conn) { _ = conn.Close() }

// Disconnect sends DISCONNECT and closes the connection.
func (c *C) Disconnect(conn *wire.Conn) { _ = conn.Disconnect() }

// cleanup closes every connection and removes the persistent sessions the check created, so that
// a broker shared by many checks does not accumulate them.
func (c *C) cleanup() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	for id, v := range c.sessions {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout()+time.Second)
		conn, err := wire.Dial(ctx, c.Env.URL, wire.Options{Version: v, Name: "cleanup", TLS: c.Env.TLS})
		cancel()
		if err != nil {
			continue
		}
		p := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 10}
		if c.Env.HasCredentials {
			p.Username, p.UsernameFlag = c.Env.Username, true
			p.Password, p.PasswordFlag = []byte(c.Env.Password), true
		}
		if _, err := conn.Connect(c.Timeout(), p); err == nil {
			_ = conn.Disconnect()
		}
		_ = conn.Close()
	}
}
