package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	persist "github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// message is an application message as the broker routes it: immutable once built, shared by
// every subscriber that receives it.
//
// Copies made by keep come from a pool and are reference-counted (borrowed.go): every holder —
// the routing goroutine, each delivery, a message held back by a fault — took one reference and
// gives it back with release; the last one returns the message to the pool. Other messages
// (retained, wills, restored from the Store) are left to the garbage collector.
type message struct {
	topic   string
	payload []byte
	qos     packet.QoS
	retain  bool
	props   packet.Properties // forwardable 5.0 properties only
	expiry  time.Time         // zero = no Message Expiry Interval
	from    string            // publisher's client id ("" for the broker itself)
	// borrowed: the message aliases a read buffer and lives only while it is routed; kept is
	// its owned copy once something keeps it (see keep in borrowed.go).
	borrowed bool
	kept     *message
	// pooled: a copy made by keep, with refs references (atomic); buf and users are the
	// storage fill reuses.
	pooled bool
	refs   int32
	buf    []byte
	users  []packet.UserProperty
}

// expired reports whether the message's expiry interval has passed at now.
func (m *message) expired(now time.Time) bool {
	return !m.expiry.IsZero() && !now.Before(m.expiry)
}

// delivery is an outgoing QoS 1/2 message owed to one session.
type delivery struct {
	msg    *message
	seq    uint64
	qos    packet.QoS
	retain bool
	ids    []uint32 // subscription identifiers (5.0)
	pid    uint16
	state  persist.MessageState
	done   bool // acknowledged; still in session.inflight until the entries before it are done too
	stored bool // written to the Store (see finish)
}

// willMsg is a connection's will with its 5.0 delay.
type willMsg struct {
	msg       *message
	delay     uint32 // Will Delay Interval, seconds
	expiry    uint32 // Message Expiry Interval of the will, from its publication
	hasExpiry bool
	due       time.Time // when a delayed will is published
}

// session is the live state of one MQTT session, held by the broker for as long as the session
// lasts: across connections for persistent sessions.
type session struct {
	b      *Broker
	id     string
	online atomic.Bool // a connection is attached; read without mu to pick shared subscribers

	// mu protects every field below. Lock order: Broker.mu, then session.mu, then conn.outMu.
	mu       sync.Mutex
	conn     *conn
	ended    bool
	version  packet.Version
	identity auth.Identity
	faults   faultBits
	expiry   uint32 // Session Expiry Interval in seconds; 0 = ends with the connection
	window   int    // outgoing in-flight window of the current connection
	subs     map[string]topic.Options
	inflight []*delivery          // sent, in send order; acknowledged ones (done) are trimmed from the front
	byPID    map[uint16]*delivery // the unacknowledged ones; its length is the in-flight count
	queue    []*delivery          // waiting for a free in-flight slot or a connection
	nextPID  uint16
	seq      uint64
	// awaitRel holds packet ids of incoming QoS 2 messages acknowledged with PUBREC, awaiting
	// PUBREL (method A of MQTT 4.3.3: the message was forwarded on PUBLISH).
	awaitRel    map[uint16]struct{}
	pendingWill *willMsg
	willTimer   *time.Timer
	expireTimer *time.Timer
	// held is the message kept back by the no-message-order fault.
	held      *heldMsg
	heldTimer *time.Timer
}

type heldMsg struct {
	msg    *message
	qos    packet.QoS
	retain bool
	ids    []uint32
}

func newSession(b *Broker, id string) *session {
	return &session{
		b:      b,
		id:     id,
		faults: b.faults.forClient(id),
	}
}

// setAwaitRel records an incoming QoS 2 packet id awaiting PUBREL. Called with mu held.
func (s *session) setAwaitRel(id uint16) {
	if s.awaitRel == nil {
		s.awaitRel = make(map[uint16]struct{})
	}
	s.awaitRel[id] = struct{}{}
}

// persistent reports whether the session's state goes to the Store. Called with mu held.
func (s *session) persistent() bool { return s.b.cfg.Store != nil && s.expiry > 0 && !s.ended }

// deliver hands a message to the session at the given QoS. retain is the RETAIN flag to send; fl
// is the flush list of the read goroutine delivering, nil outside one.
func (s *session) deliver(m *message, qos packet.QoS, retain bool, ids []uint32, fl *flushList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if acl := s.b.cfg.ACL; acl != nil && !acl.Allow(s.identity, m.topic, auth.Read) {
		s.b.stats.DroppedDenied.Add(1)
		return
	}
	if s.faults.has(FaultQoSDowngrade) {
		qos = 0
	}
	if s.faults.has(FaultNoMessageOrder) {
		if s.held == nil {
			s.held = &heldMsg{msg: m.keep(), qos: qos, retain: retain, ids: ids}
			// A message held alone is released after a short while, so none is lost.
			s.heldTimer = s.b.afterFunc(100*time.Millisecond, s.releaseHeld)
			return
		}
		h := s.held
		s.held = nil
		if s.heldTimer != nil {
			s.heldTimer.Stop()
		}
		s.enqueue(m, qos, retain, ids, fl)
		s.enqueue(h.msg, h.qos, h.retain, h.ids, fl)
		h.msg.release()
		return
	}
	s.enqueue(m, qos, retain, ids, fl)
	if qos == 2 && s.faults.has(FaultDuplicateQoS2) {
		s.enqueue(m, qos, retain, ids, fl)
	}
}

func (s *session) releaseHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held; h != nil && !s.ended {
		s.held = nil
		s.enqueue(h.msg, h.qos, h.retain, h.ids, nil)
		h.msg.release()
	}
}

// enqueue sends a QoS 0 message now (or drops it) and queues a QoS 1/2 message. Called with mu held.
func (s *session) enqueue(m *message, qos packet.QoS, retain bool, ids []uint32, fl *flushList) {
	if qos == 0 {
		if s.conn == nil {
			// QoS 0 messages are not kept for disconnected sessions (MQTT 3.1.1 §3.1.2.4 allows it).
			s.b.stats.DroppedOffline.Add(1)
			return
		}
		s.conn.sendPublish(m, 0, 0, false, retain, ids, fl)
		return
	}
	s.seq++
	d := deliveryPool.Get().(*delivery)
	*d = delivery{msg: m.keep(), seq: s.seq, qos: qos, retain: retain, ids: ids}
	s.queue = append(s.queue, d)
	s.b.stats.Queued.Add(1)
	s.persistPut(d)
	s.pump(fl)
}

// pump moves queued messages into flight while the window has room; fl is the flush list of the
// read goroutine calling, nil outside one. Called with mu held.
func (s *session) pump(fl *flushList) {
	c := s.conn
	if c == nil {
		return
	}
	now := time.Now()
	for len(s.queue) > 0 && len(s.byPID) < s.window {
		d := s.queue[0]
		s.queue[0] = nil
		if len(s.queue) == 1 {
			// Emptied: the array is kept for the next message, from its current start.
			s.queue = s.queue[:0]
		} else {
			s.queue = s.queue[1:]
		}
		s.b.stats.Queued.Add(-1)
		if d.msg.expired(now) {
			s.b.stats.DroppedExpired.Add(1)
			s.persistDelete(d)
			s.finish(d)
			recycle(d)
			continue
		}
		pid, ok := s.allocPID()
		if !ok {
			// Every packet id is in flight: keep the message for later.
			s.queue = append([]*delivery{d}, s.queue...)
			s.b.stats.Queued.Add(1)
			return
		}
		d.pid = pid
		if !c.fits(d.msg, d.ids) {
			// MQTT-3.1.2-25: a message over the client's Maximum Packet Size is discarded.
			s.b.stats.DroppedTooLarge.Add(1)
			s.persistDelete(d)
			s.finish(d)
			recycle(d)
			continue
		}
		d.state = persist.AwaitAck
		s.inflight = append(s.inflight, d)
		if s.byPID == nil {
			s.byPID = make(map[uint16]*delivery)
		}
		s.byPID[pid] = d
		s.b.stats.Inflight.Add(1)
		s.persistPut(d)
		c.sendPublish(d.msg, d.qos, d.pid, false, d.retain, d.ids, fl)
	}
}

// allocPID returns a packet identifier not in use by an in-flight message. Called with mu held.
func (s *session) allocPID() (uint16, bool) {
	for range 65535 {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if _, used := s.byPID[s.nextPID]; !used {
			return s.nextPID, true
		}
	}
	return 0, false
}

// resume re-sends what was in flight when the previous connection ended (MQTT-4.4.0-1: PUBLISH
// with DUP=1, PUBREL again), then fills the window. Called with mu held, after CONNACK.
func (s *session) resume() {
	c := s.conn
	dup := !s.faults.has(FaultNoDup)
	for _, d := range s.inflight {
		if d.done {
			continue
		}
		switch d.state {
		case persist.AwaitAck:
			c.sendPublish(d.msg, d.qos, d.pid, dup, d.retain, d.ids, nil)
		case persist.AwaitComp:
			c.send(&packet.Pubrel{PacketID: d.pid})
		}
	}
	s.pump(nil)
}

// removeInflight drops an acknowledged message. Acknowledgements mostly come in send order, so
// the entry is marked done and done entries are trimmed from the front: O(1) per ack instead of
// shifting the window. The message goes back at once; the delivery record when it is trimmed.
// Called with mu held.
func (s *session) removeInflight(d *delivery) {
	delete(s.byPID, d.pid)
	d.done = true
	s.b.stats.Inflight.Add(-1)
	s.persistDelete(d)
	s.finish(d)
	i := 0
	for i < len(s.inflight) && s.inflight[i].done {
		recycle(s.inflight[i])
		s.inflight[i] = nil
		i++
	}
	if i == len(s.inflight) {
		s.inflight = s.inflight[:0] // emptied: the array is kept for the next message
	} else {
		s.inflight = s.inflight[i:]
	}
}

// deliveryPool holds delivery records for reuse: a QoS 1/2 delivery costs no allocation.
var deliveryPool = sync.Pool{New: func() any { return new(delivery) }}

// finish gives back the message of a delivery that is over (acknowledged or dropped). A message
// written to the Store is never recycled, whatever the Store keeps of it. Called with mu held.
func (s *session) finish(d *delivery) {
	if d.msg != nil && !d.stored {
		d.msg.release()
	}
	d.msg = nil
}

// recycle returns a delivery record that nothing points at any more (out of queue, inflight and
// byPID) to the pool.
func recycle(d *delivery) {
	*d = delivery{}
	deliveryPool.Put(d)
}

// onPuback, onPubrec and onPubcomp handle the client's acknowledgements, read by the goroutine
// owning fl.
func (s *session) onPuback(p *packet.Puback, fl *flushList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byPID[p.PacketID]
	if d == nil || d.qos != 1 {
		s.b.log.Debug("PUBACK for unknown packet id", "client", s.id, "packet_id", p.PacketID)
		return
	}
	s.removeInflight(d)
	s.pump(fl)
}

func (s *session) onPubrec(p *packet.Pubrec, fl *flushList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byPID[p.PacketID]
	if d == nil || d.qos != 2 {
		// 5.0: PUBREL with 0x92 for an unknown packet id (§3.6.2.1).
		rel := &packet.Pubrel{PacketID: p.PacketID}
		if s.version == packet.V5 {
			rel.Code = packet.PacketIdentifierNotFound
		}
		if s.conn != nil {
			s.conn.writeControlBy(rel, s.conn.sessVersion, fl)
		}
		return
	}
	if s.version == packet.V5 && p.Code.IsError() {
		// MQTT-4.4.0-2: a PUBREC with an error code ends the flow; no PUBREL follows.
		s.removeInflight(d)
		s.pump(fl)
		return
	}
	d.state = persist.AwaitComp
	s.persistPut(d)
	if s.conn != nil {
		s.conn.writeControlBy(&packet.Pubrel{PacketID: d.pid}, s.conn.sessVersion, fl)
	}
}

func (s *session) onPubcomp(p *packet.Pubcomp, fl *flushList) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byPID[p.PacketID]
	if d == nil || d.qos != 2 || d.state != persist.AwaitComp {
		s.b.log.Debug("PUBCOMP for unknown packet id", "client", s.id, "packet_id", p.PacketID)
		return
	}
	s.removeInflight(d)
	s.pump(fl)
}

// stopTimers stops the session's timers (Shutdown, session end).
func (s *session) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopTimersLocked()
}

func (s *session) stopTimersLocked() {
	for _, t := range []*time.Timer{s.willTimer, s.expireTimer, s.heldTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.willTimer, s.expireTimer, s.heldTimer = nil, nil, nil
}

// state returns the session's persistent state. Called with mu held.
func (s *session) state() persist.State {
	st := persist.State{
		ClientID:       s.id,
		Version:        s.version,
		Username:       s.identity.Username,
		ExpiryInterval: s.expiry,
		NextPacketID:   s.nextPID,
	}
	for f, o := range s.subs {
		st.Subscriptions = append(st.Subscriptions, persist.Subscription{
			Filter: f, QoS: o.QoS, NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished,
			RetainHandling: o.RetainHandling, ID: o.ID,
		})
	}
	for id := range s.awaitRel {
		st.AwaitingRelease = append(st.AwaitingRelease, id)
	}
	if s.conn == nil {
		st.DisconnectedAt = time.Now()
	}
	if w := s.pendingWill; w != nil {
		props := w.msg.props
		if w.hasExpiry {
			props.MessageExpiry = w.expiry
			props.Present.Add(packet.PropMessageExpiry)
		}
		st.Will = &persist.Will{
			Topic: w.msg.topic, Payload: w.msg.payload, QoS: byte(w.msg.qos), Retain: w.msg.retain,
			Props: props, PublishAt: w.due,
		}
	}
	return st
}

// persistSave writes the session's state to the Store. Called with mu held.
func (s *session) persistSave() {
	if !s.persistent() {
		return
	}
	if err := s.b.cfg.Store.SaveSession(s.state()); err != nil {
		s.b.log.Error("session store: save failed", "client", s.id, "err", err)
	}
}

func (s *session) persistPut(d *delivery) {
	if !s.persistent() {
		return
	}
	m := persist.Message{
		Seq: d.seq, State: d.state, PacketID: d.pid, Topic: d.msg.topic, Payload: d.msg.payload,
		QoS: byte(d.qos), Retain: d.retain, Props: d.msg.props, Expiry: d.msg.expiry, Publisher: d.msg.from,
	}
	m.Props.SubscriptionIDs = d.ids
	d.stored = true
	if err := s.b.cfg.Store.PutMessage(s.id, m); err != nil {
		s.b.log.Error("session store: put message failed", "client", s.id, "err", err)
	}
}

func (s *session) persistDelete(d *delivery) {
	if !s.persistent() {
		return
	}
	if err := s.b.cfg.Store.DeleteMessage(s.id, d.seq); err != nil {
		s.b.log.Error("session store: delete message failed", "client", s.id, "err", err)
	}
}

type (
	sessionState   = persist.State
	sessionMessage = persist.Message
)

const (
	queuedState  = persist.Queued
	neverExpires = persist.NeverExpires
)

func subOptions(s persist.Subscription) topic.Options {
	return topic.Options{QoS: s.QoS, NoLocal: s.NoLocal, RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling, ID: s.ID}
}
