package broker

import (
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/retain"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// newMessage copies a PUBLISH (or will) into one allocation owned by the broker, so that it
// outlives the read buffer it was decoded from. Only the properties that are forwarded to
// subscribers are kept (MQTT-3.3.2-15..20: payload format, content type, response topic,
// correlation data, user properties; the expiry interval is recomputed on each forward).
func newMessage(topicName string, payload []byte, qos packet.QoS, retainFlag bool, props *packet.Properties, from string, now time.Time) *message {
	m := new(message)
	m.fill(topicName, payload, qos, retainFlag, props, from, now)
	return m
}

// fill makes m an owned copy of the message, reusing m's storage (buf, users) when it is big
// enough: a pooled message (borrowed.go) is refilled without allocating.
func (m *message) fill(topicName string, payload []byte, qos packet.QoS, retainFlag bool, props *packet.Properties, from string, now time.Time) {
	size := len(topicName) + len(payload)
	if props != nil {
		size += len(props.ContentType) + len(props.ResponseTopic) + len(props.CorrelationData)
		for _, u := range props.User {
			size += len(u.Key) + len(u.Value)
		}
	}
	buf, users := m.buf[:0], m.users[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	take := func(s string) string {
		if s == "" {
			return ""
		}
		i := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[i], len(s))
	}
	takeBytes := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		i := len(buf)
		buf = append(buf, b...)
		return buf[i:len(buf):len(buf)]
	}
	*m = message{qos: qos, retain: retainFlag, from: from}
	m.topic = take(topicName)
	m.payload = takeBytes(payload)
	if m.payload == nil {
		m.payload = []byte{}
	}
	if props != nil {
		pr := &m.props
		if props.Present.Has(packet.PropPayloadFormat) || props.PayloadFormat != 0 {
			pr.PayloadFormat = props.PayloadFormat
			pr.Present.Add(packet.PropPayloadFormat)
		}
		pr.ContentType = take(props.ContentType)
		pr.ResponseTopic = take(props.ResponseTopic)
		pr.CorrelationData = takeBytes(props.CorrelationData)
		if len(props.User) > 0 {
			for _, u := range props.User {
				users = append(users, packet.UserProperty{Key: take(u.Key), Value: take(u.Value)})
			}
			pr.User = users
		}
		if props.Present.Has(packet.PropMessageExpiry) || props.MessageExpiry != 0 {
			m.expiry = now.Add(time.Duration(props.MessageExpiry) * time.Second)
		}
	}
	m.buf, m.users = buf, users
}

func (c *conn) onPublish(p *packet.Publish) bool {
	b := c.b
	v := c.sessVersion
	s := c.sess
	name := p.Topic
	if v == packet.V5 && (p.Props.Present.Has(packet.PropTopicAlias) || p.Props.TopicAlias != 0) {
		a := p.Props.TopicAlias
		if a == 0 || a > b.cfg.TopicAliasMaximum {
			// MQTT-3.3.2-8 / MQTT-3.3.2-9: alias 0 or above our Topic Alias Maximum.
			return c.violation(packet.TopicAliasInvalid, "MQTT-3.3.2-9", "topic alias outside 1..Topic Alias Maximum")
		}
		if name == "" {
			t, ok := c.aliases[a]
			if !ok {
				return c.violation(packet.ProtocolError, "§3.3.4", "topic alias not set on this connection")
			}
			name = t
		} else {
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[a] = strings.Clone(name)
		}
	} else if name == "" {
		return c.violation(packet.ProtocolError, "MQTT-3.3.2-1", "empty topic name without a topic alias")
	}
	if p.Retain && b.cfg.RetainUnavailable {
		// MQTT-3.2.2-14: RETAIN=1 after Retain Available 0 → DISCONNECT 0x9A.
		return c.violation(packet.RetainNotSupported, "MQTT-3.2.2-14", "retained messages are not available")
	}
	if p.QoS == 2 {
		s.mu.Lock()
		_, dup := s.awaitRel[p.PacketID]
		n := len(s.awaitRel)
		s.mu.Unlock()
		if dup {
			// Already forwarded (method A): acknowledge again, do not forward twice
			// (MQTT-4.3.3-2 in 3.1.1, MQTT-4.3.3-10 in 5.0).
			c.ackPubrec(p.PacketID, packet.Success)
			return true
		}
		if v == packet.V5 && n >= int(b.cfg.MaxInflight) {
			// MQTT-3.3.4-7: more unacknowledged QoS 2 messages than our Receive Maximum.
			return c.violation(packet.ReceiveMaximumExceeded, "MQTT-3.3.4-7", "receive maximum exceeded")
		}
	}
	b.stats.MessagesReceived[min(int(p.QoS), 2)].Add(1)

	if acl := b.cfg.ACL; acl != nil && !acl.Allow(c.identity, name, auth.Write) {
		b.stats.DroppedDenied.Add(1)
		b.log.Info("publish denied by ACL", "client", c.clientID, "topic", name)
		// 3.1.1: acknowledge and drop; 5.0: acknowledge with 0x87.
		code := packet.Success
		if v == packet.V5 {
			code = packet.NotAuthorized
		}
		switch p.QoS {
		case 1:
			c.ackPuback(p.PacketID, code)
		case 2:
			if code == packet.Success {
				s.mu.Lock()
				s.setAwaitRel(p.PacketID)
				s.mu.Unlock()
			}
			c.ackPubrec(p.PacketID, code)
		}
		return true
	}

	var m *message
	if p.Retain {
		// The retained store keeps the message: it needs its own copy.
		m = newMessage(name, p.Payload, p.QoS, p.Retain, &p.Props, c.clientID, time.Now())
		b.storeRetained(m, c.faults)
	} else {
		m = borrowMessage(name, p, c.clientID, time.Now())
	}
	n := b.route(m, &c.fl)
	if m.borrowed {
		releaseMessage(m)
	}
	code := packet.Success
	if n == 0 && v == packet.V5 {
		code = packet.NoMatchingSubscribers
	}
	switch p.QoS {
	case 1:
		c.ackPuback(p.PacketID, code)
	case 2:
		s.mu.Lock()
		s.setAwaitRel(p.PacketID)
		s.persistSave()
		s.mu.Unlock()
		c.ackPubrec(p.PacketID, code)
	}
	return true
}

func (c *conn) ackPuback(pid uint16, code packet.ReasonCode) {
	if c.faults.has(FaultDropPuback) {
		return
	}
	ack := packet.Puback{PacketID: pid, Code: code}
	if !c.beginWrite(false) {
		return
	}
	start := len(c.out)
	c.out, _ = ack.AppendTo(c.out, c.version)
	c.endWriteBy(start, false, &c.fl)
}

func (c *conn) ackPubrec(pid uint16, code packet.ReasonCode) {
	if c.faults.has(FaultDropPubrec) {
		return
	}
	ack := packet.Pubrec{PacketID: pid, Code: code}
	if !c.beginWrite(false) {
		return
	}
	start := len(c.out)
	c.out, _ = ack.AppendTo(c.out, c.version)
	c.endWriteBy(start, false, &c.fl)
}

func (c *conn) onPubrel(p *packet.Pubrel) {
	s := c.sess
	s.mu.Lock()
	_, ok := s.awaitRel[p.PacketID]
	if ok {
		delete(s.awaitRel, p.PacketID)
		s.persistSave()
	}
	s.mu.Unlock()
	if c.faults.has(FaultDropPubcomp) {
		return
	}
	comp := packet.Pubcomp{PacketID: p.PacketID}
	if !ok && c.sessVersion == packet.V5 {
		// 5.0 §3.7.2.1: PUBCOMP 0x92 for a PUBREL whose packet id is unknown.
		comp.Code = packet.PacketIdentifierNotFound
	}
	if !c.beginWrite(false) {
		return
	}
	start := len(c.out)
	c.out, _ = comp.AppendTo(c.out, c.version)
	c.endWriteBy(start, false, &c.fl)
}

// sendPublish writes one PUBLISH to the client. QoS 0 messages are dropped (and counted) when
// the client's queue is full or the message is over its Maximum Packet Size. fl is the flush
// list of the read goroutine queuing it, nil outside one (see endWriteBy).
func (c *conn) sendPublish(m *message, qos packet.QoS, pid uint16, dup, retainFlag bool, ids []uint32, fl *flushList) bool {
	pub := packet.Publish{Dup: dup, QoS: qos, Retain: retainFlag, Topic: m.topic, PacketID: pid, Payload: m.payload}
	v := c.sessVersion
	if v == packet.V5 {
		pub.Props = m.props
		if !m.expiry.IsZero() {
			left := time.Until(m.expiry)
			if left <= 0 && qos == 0 {
				c.b.stats.DroppedExpired.Add(1)
				return false
			}
			// MQTT-3.3.2-6: the forwarded expiry is what remains of it.
			pub.Props.MessageExpiry = uint32((left + time.Second - 1) / time.Second)
			pub.Props.Present.Add(packet.PropMessageExpiry)
		}
		pub.Props.SubscriptionIDs = ids
		if c.maxOut > 0 && pub.Size(v) > c.maxOut {
			// MQTT-3.1.2-25: never send a packet over the client's Maximum Packet Size.
			c.b.stats.DroppedTooLarge.Add(1)
			return false
		}
	}
	if !c.beginWrite(qos == 0) {
		return false
	}
	start := len(c.out)
	out, err := pub.AppendTo(c.out, c.version)
	if err != nil {
		c.outMu.Unlock()
		return false
	}
	c.out = out
	c.endWriteBy(start, qos == 0, fl)
	c.b.stats.MessagesSent[qos].Add(1)
	return true
}

// fits reports whether a PUBLISH of m is within the client's Maximum Packet Size.
func (c *conn) fits(m *message, ids []uint32) bool {
	if c.maxOut == 0 || c.sessVersion != packet.V5 {
		return true
	}
	pub := packet.Publish{QoS: 1, Topic: m.topic, PacketID: 1, Payload: m.payload, Props: m.props}
	pub.Props.SubscriptionIDs = ids
	if !m.expiry.IsZero() {
		pub.Props.MessageExpiry = 1
	}
	return pub.Size(packet.V5) <= c.maxOut
}

// target is one session that receives a routed message.
type target struct {
	s      *session
	qos    packet.QoS
	retain bool
	ids    []uint32
}

type routeScratch struct {
	targets []target
	index   map[*session]int
}

var routePool = sync.Pool{New: func() any { return &routeScratch{index: make(map[*session]int)} }}

// sessionOnline prefers connected members of a shared subscription group.
func sessionOnline(s *session) bool { return s.online.Load() }

// route delivers m to every matching subscription and returns how many sessions it went to.
// Overlapping subscriptions of one session yield one delivery at the highest QoS of the matches,
// carrying every subscription identifier (MQTT-3.3.4-2, MQTT-3.3.4-3); each shared subscription
// group gets its own delivery, to one member (§4.8.2, unnumbered), at the QoS granted to that
// member (MQTT-4.8.2-3). fl is the flush list of the read goroutine routing m, nil outside one.
func (b *Broker) route(m *message, fl *flushList) int {
	sc := routePool.Get().(*routeScratch)
	b.subs.MatchEligible(m.topic, sessionOnline, func(s *session, filter, share string, o topic.Options) {
		if o.NoLocal && s.id == m.from {
			// MQTT-3.8.3-3: no local.
			return
		}
		qos := min(m.qos, packet.QoS(o.QoS))
		rf := o.RetainAsPublished && m.retain
		if share == "" {
			if i, ok := sc.index[s]; ok {
				t := &sc.targets[i]
				t.qos = max(t.qos, qos)
				t.retain = t.retain || rf
				if o.ID != 0 {
					t.ids = append(t.ids, o.ID)
				}
				return
			}
			sc.index[s] = len(sc.targets)
		}
		t := target{s: s, qos: qos, retain: rf}
		if o.ID != 0 {
			t.ids = []uint32{o.ID}
		}
		sc.targets = append(sc.targets, t)
	})
	n := len(sc.targets)
	for i := range sc.targets {
		t := &sc.targets[i]
		rf := t.retain && t.s.version == packet.V5
		t.s.deliver(m, t.qos, rf, t.ids, fl)
		*t = target{}
	}
	sc.targets = sc.targets[:0]
	clear(sc.index)
	routePool.Put(sc)
	return n
}

// storeRetained keeps (or, with an empty payload, deletes) the retained message of m's topic
// (MQTT-3.3.1-5, MQTT-3.3.1-10, MQTT-3.3.1-11 in 3.1.1; MQTT-3.3.1-5, MQTT-3.3.1-6 in 5.0).
func (b *Broker) storeRetained(m *message, faults faultBits) {
	if faults.has(FaultNoRetain) || b.faults.global.has(FaultNoRetain) {
		return
	}
	b.setRetained(retain.Message{Topic: m.topic, Payload: m.payload, QoS: byte(m.qos), Props: m, Stored: time.Now(), Expiry: m.expiry}, m)
	b.stats.Retained.Store(int64(b.retain.Len()))
}
