// Package firmwarebug puts a firmware bug between a device and its broker: a Shim is a TCP relay,
// built on the packet codec, that rewrites what a correct device sends into what a device with a
// named bug would send — a device that does not subscribe again after losing its session, one
// that acks commands without their correlation id, one that publishes a QoS 2 message again as a
// new message after a reconnection. The device behind the shim plus the shim is the faulty
// device; device certification's self-proof runs it to show that each bug fails the requirement
// it breaks, and only that one.
//
// The bugs the simulator's own fault package already offers (no PINGREQ, no DUP on resend, a
// wrong will) are not repeated here.
package firmwarebug

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Bug names a firmware bug the shim plays.
type Bug string

// The bugs. Each breaks one requirement of device certification.
const (
	// NoResubscribe forwards SUBSCRIBE only on the device's first connection, as firmware that
	// subscribes once at boot and trusts the broker to keep its session.
	NoResubscribe Bug = "no_resubscribe"
	// AckWithoutCorr removes the corr field from every command ack ({base}/cmd/{name}/ack).
	AckWithoutCorr Bug = "ack_without_corr"
	// QoS2Republish publishes, after each reconnection, every QoS 2 message the broker already
	// received (it answered PUBREC) once more as a new message — a new packet identifier, DUP 0 —
	// as firmware that "retries" billing on reconnection does: the platform bills twice.
	QoS2Republish Bug = "qos2_republish"
	// NoResend drops every PUBLISH the device sends again (DUP 1): unacknowledged messages are
	// lost with the connection.
	NoResend Bug = "no_resend"
	// StatusNotRetained publishes the status without RETAIN.
	StatusNotRetained Bug = "status_not_retained"
	// StateNotRetained publishes the state without RETAIN.
	StateNotRetained Bug = "state_not_retained"
	// TelemetryQoS1 publishes telemetry at QoS 1 instead of 0 (the shim acknowledges it to the
	// device itself).
	TelemetryQoS1 Bug = "telemetry_qos1"
	// NoPuback never acknowledges a QoS 1 message from the broker.
	NoPuback Bug = "no_puback"
	// IgnoreRefusal sends a PUBLISH on a connection the broker has just refused.
	IgnoreRefusal Bug = "ignore_refusal"
	// PublishWildcard publishes telemetry on a topic name with a '+' level (MQTT-3.3.2-2).
	PublishWildcard Bug = "publish_wildcard"
	// PasswordWithoutUser sends a CONNECT with the password flag set and no user name
	// (3.1.1 MQTT-3.1.2-22).
	PasswordWithoutUser Bug = "password_without_user"
	// EventWithoutSeq removes the seq field from every event.
	EventWithoutSeq Bug = "event_without_seq"
	// AcceptEverything acks every command "ok", also those the device rejected.
	AcceptEverything Bug = "accept_everything"
	// DisconnectOnLoss sends DISCONNECT to the broker when the device's connection breaks (a
	// power cut included), so that the broker discards the will.
	DisconnectOnLoss Bug = "disconnect_on_loss"
	// NoReconnect lets the device connect once: after its first connection ends, every new one
	// is closed before it reaches the broker.
	NoReconnect Bug = "no_reconnect"
	// FakePingresp answers the device's PINGREQ itself, so that the device never notices a
	// broker that stopped answering.
	FakePingresp Bug = "fake_pingresp"
	// ReusePacketID gives one new QoS 1 PUBLISH the packet identifier of a message still
	// unacknowledged (MQTT-2.3.1-2): once the broker sits on the acknowledgement of one of the
	// device's messages, the device's status goes out again under that message's identifier.
	ReusePacketID Bug = "reuse_packet_id"
	// AliasOverMax (5.0) puts Topic Alias 9 on every PUBLISH, above the maximum a server announces.
	AliasOverMax Bug = "alias_over_max"
	// IgnoreReceiveMaximum (5.0) sends a second QoS 1 PUBLISH while one is unacknowledged under a
	// server's Receive Maximum of 1.
	IgnoreReceiveMaximum Bug = "ignore_receive_maximum"
	// IgnoreServerKeepalive (5.0) hides the Server Keep Alive of CONNACK from the device, which
	// keeps its own.
	IgnoreServerKeepalive Bug = "ignore_server_keepalive"
	// ContinueAfterDisconnect (5.0) hides the server's DISCONNECT from the device and sends a
	// PINGREQ a moment after it.
	ContinueAfterDisconnect Bug = "continue_after_disconnect"
)

// Bugs lists every bug.
var Bugs = []Bug{NoResubscribe, AckWithoutCorr, QoS2Republish, NoResend, StatusNotRetained, StateNotRetained,
	TelemetryQoS1, NoPuback, IgnoreRefusal, PublishWildcard, PasswordWithoutUser, EventWithoutSeq, AcceptEverything,
	DisconnectOnLoss, NoReconnect, FakePingresp, ReusePacketID, AliasOverMax, IgnoreReceiveMaximum,
	IgnoreServerKeepalive, ContinueAfterDisconnect}

// firstInjectedID is where the shim's own packet identifiers start, far above what client
// libraries hand out first.
const firstInjectedID = 0xF000

// Shim relays one device's connections to a broker, with a bug.
type Shim struct {
	bug      Bug
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup // every goroutine the shim starts (see goFunc)
	quit     chan struct{}
	stop     sync.Once

	// mu protects everything below.
	mu          sync.Mutex
	conns       map[*relay]struct{}
	n           int                        // connections relayed so far
	lost        bool                       // the device's first connection ended (NoReconnect)
	received    map[uint16]*packet.Publish // QoS 2 messages the broker answered with PUBREC, by the device's identifier
	republished map[uint16]bool            // of those, the ones already published again
	injected    map[uint16]bool            // identifiers of the shim's own PUBLISHes in flight
	pending     map[*relay]map[uint16]*packet.Publish
	nextID      uint16
	// ReusePacketID: the device's QoS 1 identifiers awaiting PUBACK upstream (and the connection
	// that sent them), the one reuse done, where the PUBACKs of an identifier go, newest first
	// (noRoute: the shim's own message, whose PUBACK the device must not see), and the device's
	// last status message, which the reuse sends again.
	unacked map[uint16]*relay
	reused  bool
	routes  map[uint16][]uint16
	status  *packet.Publish
}

// Start listens on a free loopback port and relays each connection to upstream (host:port).
func Start(upstream string, bug Bug) (*Shim, error) {
	known := false
	for _, b := range Bugs {
		known = known || b == bug
	}
	if !known {
		return nil, fmt.Errorf("firmware bug %q is unknown", bug)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("firmware bug shim: %w", err)
	}
	s := &Shim{
		bug: bug, upstream: upstream, ln: ln, quit: make(chan struct{}),
		conns: map[*relay]struct{}{}, received: map[uint16]*packet.Publish{}, republished: map[uint16]bool{},
		injected: map[uint16]bool{}, pending: map[*relay]map[uint16]*packet.Publish{}, nextID: firstInjectedID,
		unacked: map[uint16]*relay{}, routes: map[uint16][]uint16{},
	}
	s.goFunc(s.accept)
	return s, nil
}

func (s *Shim) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Addr returns the address devices connect to.
func (s *Shim) Addr() string { return s.ln.Addr().String() }

// URL returns the address as tcp://host:port.
func (s *Shim) URL() string { return "tcp://" + s.Addr() }

// Close stops relaying and waits for the shim's goroutines.
func (s *Shim) Close() error {
	var err error
	s.stop.Do(func() {
		close(s.quit)
		err = s.ln.Close()
		s.mu.Lock()
		conns := make([]*relay, 0, len(s.conns))
		for r := range s.conns {
			conns = append(conns, r)
		}
		s.mu.Unlock()
		for _, r := range conns {
			r.close()
		}
		s.wg.Wait()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Shim) accept() {
	for {
		dev, err := s.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", s.upstream, 5*time.Second)
		if err != nil {
			_ = dev.Close()
			continue
		}
		s.mu.Lock()
		select {
		case <-s.quit:
			s.mu.Unlock()
			_ = dev.Close()
			_ = up.Close()
			return
		default:
		}
		if s.bug == NoReconnect && s.lost {
			s.mu.Unlock()
			_ = dev.Close()
			_ = up.Close()
			continue
		}
		s.n++
		r := &relay{s: s, n: s.n, dev: dev, up: up, gone: make(chan struct{})}
		s.conns[r] = struct{}{}
		s.pending[r] = map[uint16]*packet.Publish{}
		s.mu.Unlock()
		s.goFunc(r.deviceToBroker)
	}
}

// relay is one device connection and its upstream twin.
type relay struct {
	s        *Shim
	n        int
	dev, up  net.Conn
	v        packet.Version
	rm1      atomic.Bool // the broker announced Receive Maximum 1 on this connection
	accepted atomic.Bool // the broker accepted the connection

	// devMu and upMu serialise writes to each side.
	devMu, upMu sync.Mutex
	closeOnce   sync.Once
	gone        chan struct{} // closed by close

	// pingMu protects pings (ReusePacketID): to whom each PINGRESP the broker still owes goes, in
	// the order of the PINGREQs: nil for the device's own, a channel for the shim's (closed when
	// answered). Appended under upMu, so that the order is the order on the wire.
	pingMu sync.Mutex
	pings  []chan struct{}
}

func (r *relay) close() {
	r.closeOnce.Do(func() {
		close(r.gone)
		_ = r.dev.Close()
		_ = r.up.Close()
		r.s.mu.Lock()
		delete(r.s.conns, r)
		delete(r.s.pending, r)
		r.s.lost = true
		r.s.mu.Unlock()
	})
}

// own allocates an identifier for a PUBLISH of the shim's own, whose acknowledgements the shim
// swallows.
func (r *relay) own() uint16 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	id := r.s.nextID
	r.s.nextID++
	r.s.injected[id] = true
	return id
}

func (r *relay) isOwn(id uint16) bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.injected[id]
}

// write sends p on side. queued, when not nil, runs with side's write lock held just before the
// bytes go out, so that what it records is in the order of the wire.
func (r *relay) write(side net.Conn, mu *sync.Mutex, p packet.Packet, queued func()) error {
	b, err := packet.Encode(p, r.v)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if queued != nil {
		queued()
	}
	_ = side.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = side.Write(b)
	return err
}

func (r *relay) toBroker(p packet.Packet) error { return r.write(r.up, &r.upMu, p, nil) }

// pingBroker sends a PINGREQ upstream whose PINGRESP goes to owner: the device when nil, else
// the shim, which is told by owner's closing.
func (r *relay) pingBroker(owner chan struct{}) error {
	return r.write(r.up, &r.upMu, &packet.Pingreq{}, func() {
		r.pingMu.Lock()
		r.pings = append(r.pings, owner)
		r.pingMu.Unlock()
	})
}

func (r *relay) toDevice(p packet.Packet) error { return r.write(r.dev, &r.devMu, p, nil) }

// deviceToBroker reads the device's packets (the CONNECT first, which sets the version), applies
// the bug and forwards them; it starts the other direction once the version is known.
func (r *relay) deviceToBroker() {
	defer r.close()
	rd := packet.NewReader(bufio.NewReader(r.dev), 0)
	first, err := rd.ReadPacket()
	c, ok := first.(*packet.Connect)
	if err != nil || !ok {
		return
	}
	r.v = c.Version
	if r.s.bug == PasswordWithoutUser {
		c.Username, c.UsernameFlag = "", false
		c.Password, c.PasswordFlag = []byte("secret"), true
	}
	if r.toBroker(c) != nil {
		return
	}
	r.s.goFunc(r.brokerToDevice)
	said := false
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			if r.s.bug == DisconnectOnLoss && !said && r.accepted.Load() {
				_ = r.toBroker(&packet.Disconnect{})
			}
			return
		}
		_, isBye := p.(*packet.Disconnect)
		said = said || isBye
		for _, q := range r.fromDevice(p) {
			send := r.toBroker
			if _, ping := q.(*packet.Pingreq); ping && r.s.bug == ReusePacketID {
				send = func(packet.Packet) error { return r.pingBroker(nil) }
			}
			if send(q) != nil {
				return
			}
		}
		if pub, ok := p.(*packet.Publish); ok && r.s.bug == ReusePacketID && pub.QoS == 1 && !pub.Dup {
			r.watchAck(pub.PacketID)
		}
	}
}

func (r *relay) brokerToDevice() {
	defer r.close()
	rd := packet.NewReader(bufio.NewReader(r.up), 0)
	rd.SetVersion(r.v)
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return
		}
		if ack, ok := p.(*packet.Connack); ok && ack.Code != 0 && r.s.bug == IgnoreRefusal {
			// Firmware that does not look at the return code and goes on publishing: the device
			// behind the shim never hears of the refusal (it gives up waiting for its CONNACK), and
			// the shim publishes on the refused connection a moment later.
			r.later(func() {
				_ = r.toBroker(&packet.Publish{Topic: "firmwarebug/after-refusal", Payload: []byte("still here")})
			})
			continue
		}
		ack, isAck := p.(*packet.Connack)
		if isAck && ack.Code == 0 {
			// Known before the device hears of it: its first packets follow at once.
			r.accepted.Store(true)
			r.rm1.Store(ack.Props.ReceiveMaximum == 1)
		}
		if p = r.fromBroker(p); p == nil {
			continue
		}
		if r.toDevice(p) != nil {
			return
		}
		if isAck && ack.Code == 0 {
			r.republish()
		}
	}
}

// fromDevice applies the bug to a packet on its way to the broker and returns what to forward
// (nothing, the packet, or the packet and more).
func (r *relay) fromDevice(p packet.Packet) []packet.Packet {
	pub, isPub := p.(*packet.Publish)
	switch r.s.bug {
	case NoResubscribe:
		if _, ok := p.(*packet.Subscribe); ok && r.n > 1 {
			return nil
		}
	case AckWithoutCorr:
		if isPub && strings.HasSuffix(pub.Topic, "/ack") {
			return one(editJSON(pub, func(m map[string]any) { delete(m, "corr") }))
		}
	case AcceptEverything:
		if isPub && strings.HasSuffix(pub.Topic, "/ack") {
			return one(editJSON(pub, func(m map[string]any) {
				if m["result"] == "rejected" {
					m["result"] = "ok"
					delete(m, "reason")
				}
			}))
		}
	case EventWithoutSeq:
		if isPub && strings.Contains(pub.Topic, "/evt/") {
			return one(editJSON(pub, func(m map[string]any) { delete(m, "seq") }))
		}
	case QoS2Republish:
		if isPub && pub.QoS == 2 {
			cp := *pub
			r.s.mu.Lock()
			if m := r.s.pending[r]; m != nil {
				m[pub.PacketID] = &cp
			}
			r.s.mu.Unlock()
		}
	case NoResend:
		if isPub && pub.Dup {
			return nil
		}
	case StatusNotRetained, StateNotRetained:
		suffix := "/status"
		if r.s.bug == StateNotRetained {
			suffix = "/state"
		}
		if isPub && strings.HasSuffix(pub.Topic, suffix) && pub.Retain {
			cp := *pub
			cp.Retain = false
			return one(&cp)
		}
	case TelemetryQoS1:
		if isPub && strings.HasSuffix(pub.Topic, "/telemetry") && pub.QoS == 0 {
			cp := *pub
			cp.QoS, cp.PacketID = 1, r.own()
			return one(&cp)
		}
	case PublishWildcard:
		if isPub && strings.HasSuffix(pub.Topic, "/telemetry") {
			cp := *pub
			cp.Topic = strings.TrimSuffix(pub.Topic, "/telemetry") + "/+/telemetry"
			return one(&cp)
		}
	case NoPuback:
		if _, ok := p.(*packet.Puback); ok {
			return nil
		}
	case FakePingresp:
		if _, ok := p.(*packet.Pingreq); ok {
			_ = r.toDevice(&packet.Pingresp{})
		}
	case ReusePacketID:
		if isPub && pub.QoS == 1 && !pub.Dup {
			// In use from now on: the PUBACK may come back before the PUBLISH is even written.
			r.s.mu.Lock()
			r.s.unacked[pub.PacketID] = r
			r.s.routes[pub.PacketID] = append(r.s.routes[pub.PacketID], pub.PacketID)
			if strings.HasSuffix(pub.Topic, "/status") {
				cp := *pub
				r.s.status = &cp
			}
			r.s.mu.Unlock()
		}
	case AliasOverMax:
		if isPub && r.v == packet.V5 {
			cp := *pub
			cp.Props.TopicAlias = 9
			return one(&cp)
		}
	case IgnoreReceiveMaximum:
		if isPub && pub.QoS == 1 && r.rm1.Load() {
			cp := *pub
			cp.Dup, cp.PacketID = false, r.own()
			return []packet.Packet{p, &cp}
		}
	}
	return one(p)
}

func one(p packet.Packet) []packet.Packet { return []packet.Packet{p} }

// noRoute is the route of the PUBACK that answers the shim's own message: it goes nowhere.
const noRoute = 0

// barrierLimit bounds the wait for the answer to the shim's PINGREQ (a broker that holds back
// PINGRESP, as a silent server does, never sends it).
const barrierLimit = 5 * time.Second

// watchAck finds out, for the QoS 1 PUBLISH id just forwarded, whether the broker sits on its
// PUBACK rather than having it on the way: the shim sends a PINGREQ of its own behind it, and
// the broker answers a connection's packets in order, so an identifier still unacknowledged
// when the PINGRESP comes back is one the broker holds. The first time that happens, the
// device's status goes out again under that identifier, still in use (a broker judging
// identifiers cannot miss it: nothing here depends on how fast anything runs).
func (r *relay) watchAck(id uint16) {
	r.s.mu.Lock()
	done := r.s.reused
	r.s.mu.Unlock()
	if done {
		return
	}
	answered := make(chan struct{})
	if r.pingBroker(answered) != nil {
		return
	}
	r.s.goFunc(func() {
		t := time.NewTimer(barrierLimit)
		defer t.Stop()
		select {
		case <-answered:
		case <-t.C:
			return
		case <-r.gone:
			return
		case <-r.s.quit:
			return
		}
		r.s.mu.Lock()
		if r.s.reused || r.s.unacked[id] != r || r.s.status == nil {
			r.s.mu.Unlock()
			return
		}
		r.s.reused = true
		r.s.routes[id] = append(r.s.routes[id], noRoute)
		again := *r.s.status
		r.s.mu.Unlock()
		again.PacketID, again.Dup = id, false
		_ = r.toBroker(&again)
	})
}

// editJSON returns a copy of pub whose JSON object payload was changed by edit (pub itself when
// the payload is not a JSON object).
func editJSON(pub *packet.Publish, edit func(map[string]any)) *packet.Publish {
	var m map[string]any
	if json.Unmarshal(pub.Payload, &m) != nil || m == nil {
		return pub
	}
	edit(m)
	cp := *pub
	cp.Payload, _ = json.Marshal(m)
	return &cp
}

// fromBroker applies the bug to a packet on its way to the device; nil swallows it. The shim
// answers the acknowledgements of its own PUBLISHes itself.
func (r *relay) fromBroker(p packet.Packet) packet.Packet {
	switch p := p.(type) {
	case *packet.Puback:
		if r.isOwn(p.PacketID) {
			r.s.mu.Lock()
			delete(r.s.injected, p.PacketID)
			r.s.mu.Unlock()
			return nil
		}
		if r.s.bug == ReusePacketID {
			r.s.mu.Lock()
			defer r.s.mu.Unlock()
			// The newest first: the identifier was taken again only because the broker sat on the
			// first message's PUBACK, so this PUBACK answers the newer message.
			if q := r.s.routes[p.PacketID]; len(q) > 0 {
				to := q[len(q)-1]
				r.s.routes[p.PacketID] = q[:len(q)-1]
				if len(q) == 1 {
					delete(r.s.unacked, p.PacketID)
				}
				if to == noRoute {
					return nil
				}
				cp := *p
				cp.PacketID = to
				return &cp
			}
		}
	case *packet.Pubrec:
		if r.s.bug != QoS2Republish {
			return p
		}
		r.s.mu.Lock()
		mine := r.s.injected[p.PacketID]
		if pub, ok := r.s.pending[r][p.PacketID]; ok && !mine && p.Code < 0x80 {
			if _, done := r.s.republished[p.PacketID]; !done {
				r.s.received[p.PacketID] = pub
			}
		}
		r.s.mu.Unlock()
		if mine {
			_ = r.toBroker(&packet.Pubrel{PacketID: p.PacketID})
			return nil
		}
	case *packet.Pubcomp:
		r.s.mu.Lock()
		mine := r.s.injected[p.PacketID]
		delete(r.s.injected, p.PacketID)
		r.s.mu.Unlock()
		if mine {
			return nil
		}
	case *packet.Pingresp:
		if r.s.bug == ReusePacketID {
			r.pingMu.Lock()
			var owner chan struct{}
			if len(r.pings) > 0 {
				owner, r.pings = r.pings[0], r.pings[1:]
			}
			r.pingMu.Unlock()
			if owner != nil {
				close(owner)
				return nil
			}
		}
		if r.s.bug == FakePingresp {
			return nil
		}
	case *packet.Connack:
		if r.s.bug == ReusePacketID && p.Code == 0 && !p.SessionPresent {
			// The broker lost the session: no identifier of the device is in use any more.
			r.s.mu.Lock()
			clear(r.s.unacked)
			clear(r.s.routes)
			r.s.mu.Unlock()
		}
		if r.s.bug == IgnoreServerKeepalive {
			cp := *p
			cp.Props.ServerKeepAlive = 0
			cp.Props.Present &^= 1 << packet.PropServerKeepAlive
			return &cp
		}
	case *packet.Disconnect:
		if r.s.bug == ContinueAfterDisconnect {
			// The firmware goes on with its keepalive as if nothing had been said.
			r.later(func() { _ = r.toBroker(&packet.Pingreq{}) })
			return nil
		}
	}
	return p
}

// afterwards is how long after a refusal or a DISCONNECT the firmware sends what it should not:
// well past the moments in which a packet may have crossed the server's on the way (a certifier
// forgives those), well within the second a server waits before it closes the connection.
const afterwards = 300 * time.Millisecond

// later runs send once afterwards has passed, unless the shim closes first.
func (r *relay) later(send func()) {
	r.s.goFunc(func() {
		t := time.NewTimer(afterwards)
		defer t.Stop()
		select {
		case <-t.C:
			send()
		case <-r.s.quit:
		}
	})
}

// republish publishes again, as new messages, the QoS 2 messages the broker already owns.
func (r *relay) republish() {
	if r.s.bug != QoS2Republish {
		return
	}
	r.s.mu.Lock()
	var out []*packet.Publish
	for id, pub := range r.s.received {
		if r.s.republished[id] {
			continue
		}
		r.s.republished[id] = true
		cp := *pub
		cp.Dup = false
		cp.PacketID = r.s.nextID
		r.s.nextID++
		r.s.injected[cp.PacketID] = true
		out = append(out, &cp)
	}
	r.s.mu.Unlock()
	for _, p := range out {
		_ = r.toBroker(p)
	}
}
