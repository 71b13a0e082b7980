package broker

import (
	"sync"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// readScratch holds the packets a read loop decodes most often — PUBLISH, the acknowledgements
// and PINGREQ — so that decoding them costs no allocation. A read loop borrows one for the
// packets of one read and gives it back after handling them; nothing keeps a scratch packet past
// its handling (newMessage copies what a PUBLISH carries).
type readScratch struct {
	pub  packet.Publish
	ack  packet.Puback
	rec  packet.Pubrec
	rel  packet.Pubrel
	comp packet.Pubcomp
	ping packet.Pingreq
}

var scratchPool = sync.Pool{New: func() any { return new(readScratch) }}

type unmarshaler interface {
	packet.Packet
	Unmarshal(h packet.FixedHeader, body []byte, v packet.Version) error
}

// decode is packet.Decode with the frequent packets of a connected client decoded into sc. Every
// packet that is malformed, over maxIn, of another type, or read while a Tracer is set (a tracer
// may keep what it is given) goes through packet.Decode, so errors are exactly Decode's.
func (c *conn) decode(sc *readScratch, b []byte, v packet.Version, maxIn int) (packet.Packet, int, error) {
	if sc == nil || !c.connected || c.b.cfg.Tracer != nil {
		return packet.Decode(b, v, maxIn)
	}
	h, hl, err := packet.ReadFixedHeader(b)
	if err != nil {
		return packet.Decode(b, v, maxIn)
	}
	total := hl + h.Remaining
	// 5.0 refuses a remaining length not in its shortest form (MQTT-1.5.5-1): let Decode say so.
	if (maxIn > 0 && total > maxIn) || (v == packet.V5 && hl-1 != packet.VarintSize(h.Remaining)) {
		return packet.Decode(b, v, maxIn)
	}
	if len(b) < total {
		return nil, 0, packet.ErrIncomplete
	}
	var p unmarshaler
	switch h.Type {
	case packet.TypePublish:
		p = &sc.pub
	case packet.TypePuback:
		p = &sc.ack
	case packet.TypePubrec:
		p = &sc.rec
	case packet.TypePubrel:
		p = &sc.rel
	case packet.TypePubcomp:
		p = &sc.comp
	case packet.TypePingreq:
		p = &sc.ping
	default:
		return packet.Decode(b, v, maxIn)
	}
	if err := p.Unmarshal(h, b[hl:total:total], v); err != nil {
		return packet.Decode(b, v, maxIn)
	}
	return p, total, nil
}
