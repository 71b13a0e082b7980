package wire

import (
	"fmt"
	"strings"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Predicate selects packets for an expectation and describes itself for failure messages.
type Predicate interface {
	Match(p packet.Packet) bool
	String() string
}

type pred struct {
	desc string
	f    func(packet.Packet) bool
}

func (p pred) Match(q packet.Packet) bool { return p.f(q) }
func (p pred) String() string             { return p.desc }

// Where builds a predicate from a description and a function.
func Where(desc string, f func(packet.Packet) bool) Predicate { return pred{desc, f} }

// Any matches every packet.
func Any() Predicate { return Where("packet", func(packet.Packet) bool { return true }) }

// IsType matches packets of type t.
func IsType(t packet.Type) Predicate {
	return Where(t.String(), func(p packet.Packet) bool { return p.Type() == t })
}

// OneOf matches packets of any of the types.
func OneOf(ts ...packet.Type) Predicate {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	return Where(strings.Join(names, " or "), func(p packet.Packet) bool {
		for _, t := range ts {
			if p.Type() == t {
				return true
			}
		}
		return false
	})
}

// And matches packets that satisfy every predicate.
func And(ps ...Predicate) Predicate {
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.String()
	}
	return Where(strings.Join(descs, " and "), func(q packet.Packet) bool {
		for _, p := range ps {
			if !p.Match(q) {
				return false
			}
		}
		return true
	})
}

// Not matches packets that do not satisfy p.
func Not(p Predicate) Predicate {
	return Where("not ("+p.String()+")", func(q packet.Packet) bool { return !p.Match(q) })
}

// ackID returns the packet identifier of an acknowledgement, SUBACK or UNSUBACK.
func ackID(p packet.Packet) (uint16, bool) {
	switch p := p.(type) {
	case *packet.Puback:
		return p.PacketID, true
	case *packet.Pubrec:
		return p.PacketID, true
	case *packet.Pubrel:
		return p.PacketID, true
	case *packet.Pubcomp:
		return p.PacketID, true
	case *packet.Suback:
		return p.PacketID, true
	case *packet.Unsuback:
		return p.PacketID, true
	}
	return 0, false
}

// AckFor matches a packet of type t (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK) with
// packet identifier id.
func AckFor(t packet.Type, id uint16) Predicate {
	return Where(fmt.Sprintf("%s for packet id %d", t, id), func(p packet.Packet) bool {
		got, ok := ackID(p)
		return ok && p.Type() == t && got == id
	})
}

// PubackFor matches the PUBACK of packet id.
func PubackFor(id uint16) Predicate { return AckFor(packet.TypePuback, id) }

// PubrecFor matches the PUBREC of packet id.
func PubrecFor(id uint16) Predicate { return AckFor(packet.TypePubrec, id) }

// PubrelFor matches the PUBREL of packet id.
func PubrelFor(id uint16) Predicate { return AckFor(packet.TypePubrel, id) }

// PubcompFor matches the PUBCOMP of packet id.
func PubcompFor(id uint16) Predicate { return AckFor(packet.TypePubcomp, id) }

// SubackFor matches the SUBACK of packet id.
func SubackFor(id uint16) Predicate { return AckFor(packet.TypeSuback, id) }

// UnsubackFor matches the UNSUBACK of packet id.
func UnsubackFor(id uint16) Predicate { return AckFor(packet.TypeUnsuback, id) }

// PublishOn matches a PUBLISH whose topic is topic.
func PublishOn(topic string) Predicate {
	return Where(fmt.Sprintf("PUBLISH on %q", topic), func(p packet.Packet) bool {
		pub, ok := p.(*packet.Publish)
		return ok && pub.Topic == topic
	})
}

// PublishWith matches a PUBLISH whose topic is topic and payload is payload.
func PublishWith(topic string, payload []byte) Predicate {
	return Where(fmt.Sprintf("PUBLISH on %q with payload %s", topic, describePayload(payload)), func(p packet.Packet) bool {
		pub, ok := p.(*packet.Publish)
		return ok && pub.Topic == topic && string(pub.Payload) == string(payload)
	})
}

// PublishUnder matches a PUBLISH whose topic starts with prefix.
func PublishUnder(prefix string) Predicate {
	return Where(fmt.Sprintf("PUBLISH under %q", prefix), func(p packet.Packet) bool {
		pub, ok := p.(*packet.Publish)
		return ok && strings.HasPrefix(pub.Topic, prefix)
	})
}

func describePayload(p []byte) string { return payload(p) }

// Or matches packets that satisfy any of the predicates.
func Or(ps ...Predicate) Predicate {
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.String()
	}
	return Where(strings.Join(descs, " or "), func(q packet.Packet) bool {
		for _, p := range ps {
			if p.Match(q) {
				return true
			}
		}
		return false
	})
}
