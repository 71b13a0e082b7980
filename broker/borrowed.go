package broker

import (
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A PUBLISH that no subscriber keeps — every delivery is QoS 0 and written at once, nothing is
// retained — needs no copy of its own: routing it with a borrowed message that aliases the read
// buffer costs no allocation. Whatever keeps a message past routing (a QoS 1/2 delivery queued in
// a session, a message held back by a fault) calls keep, which copies a borrowed message once,
// on first need, and returns that copy to every later caller.

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

// keep returns a message that outlives routing: m itself unless it is borrowed, else its copy
// (made on the first call). Only the goroutine routing m calls keep, so no lock is needed.
func (m *message) keep() *message {
	if !m.borrowed {
		return m
	}
	if m.kept == nil {
		k := newMessage(m.topic, m.payload, m.qos, m.retain, &m.props, m.from, time.Time{})
		k.expiry = m.expiry
		m.kept = k
	}
	return m.kept
}

// releaseMessage gives a borrowed message back once routing is over.
func releaseMessage(m *message) {
	*m = message{}
	messagePool.Put(m)
}
