package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A PUBLISH that no subscriber keeps — every delivery is QoS 0 and written at once, nothing is
// retained — needs no copy of its own: routing it with a borrowed message that aliases the read
// buffer costs no allocation. Whatever keeps a message past routing (a QoS 1/2 delivery queued in
// a session, a message held back by a fault) calls keep, which copies a borrowed message once,
// on first need, and returns that copy to every later caller. The copies come from a pool and
// go back to it when the last delivery holding one is acknowledged, so a QoS 1/2 message costs
// no allocation either once the pool is warm.

var messagePool = sync.Pool{New: func() any { return new(message) }}

// borrowMessage returns a message for the PUBLISH p (whose topic is name) that aliases p's buffer
// and is valid until releaseMessage. Like newMessage, it carries only the forwardable properties.
func borrowMessage(name string, p *packet.Publish, from string, now time.Time) *message {
	m := messagePool.Get().(*message)
	*m = message{topic: name, payload: p.Payload, qos: p.QoS, retain: p.Retain, from: from, borrowed: true}
	if m.payload == nil {
		m.payload = []byte{}
	}
	pr, in := &m.props, &p.Props
	if in.Present.Has(packet.PropPayloadFormat) || in.PayloadFormat != 0 {
		pr.PayloadFormat = in.PayloadFormat
		pr.Present.Add(packet.PropPayloadFormat)
	}
	pr.ContentType, pr.ResponseTopic, pr.CorrelationData, pr.User = in.ContentType, in.ResponseTopic, in.CorrelationData, in.User
	if in.Present.Has(packet.PropMessageExpiry) || in.MessageExpiry != 0 {
		m.expiry = now.Add(time.Duration(in.MessageExpiry) * time.Second)
	}
	return m
}

// keep returns a message that outlives routing and takes a reference to it for the caller, who
// gives it back with release: m itself unless it is borrowed, else its copy (made on the first
// call, from the pool). Only the goroutine routing a borrowed message calls keep on it, so no
// lock is needed for kept; the copy's references are atomic because its holders release them
// from other goroutines.
func (m *message) keep() *message {
	if m.borrowed {
		if m.kept == nil {
			k := ownedPool.Get().(*message)
			k.fill(m.topic, m.payload, m.qos, m.retain, &m.props, m.from, time.Time{})
			k.expiry = m.expiry
			// The routing goroutine's own reference, given back by releaseMessage: no holder
			// can recycle the copy while routing may still hand it to the next one.
			k.pooled, k.refs = true, 1
			m.kept = k
		}
		m = m.kept
	}
	if m.pooled {
		atomic.AddInt32(&m.refs, 1)
	}
	return m
}

// release gives back a reference taken by keep. The last one returns a pooled copy to the pool:
// nothing may read the message after its own release.
func (m *message) release() {
	if !m.pooled {
		return
	}
	switch n := atomic.AddInt32(&m.refs, -1); {
	case n > 0:
		return
	case n < 0:
		panic("broker: message released more often than kept")
	}
	buf, users := m.buf, m.users
	if cap(buf) > maxPooledMessage {
		buf = nil // a rare large message does not stay in the pool
	}
	clear(users)
	// Still pooled, with no reference: one more release panics above.
	*m = message{pooled: true, buf: buf[:0], users: users[:0]}
	ownedPool.Put(m)
}

// maxPooledMessage is the largest message storage kept for reuse.
const maxPooledMessage = 16 << 10

// ownedPool holds released copies, with their storage, for keep.
var ownedPool = sync.Pool{New: func() any { return new(message) }}

// releaseMessage gives a borrowed message back once routing is over, with the routing
// goroutine's reference to its copy.
func releaseMessage(m *message) {
	if m.kept != nil {
		m.kept.release()
	}
	*m = message{}
	messagePool.Put(m)
}
