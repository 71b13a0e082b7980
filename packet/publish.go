package packet

import "encoding/binary"

// Publish carries an application message. PacketID is present on the wire only when QoS > 0.
// Topic and Payload alias the decoded body; Payload is nil when empty.
type Publish struct {
	Dup      bool
	QoS      QoS
	Retain   bool
	Topic    string
	PacketID uint16
	Props    Properties
	Payload  []byte
}

// Type returns TypePublish.
func (*Publish) Type() Type { return TypePublish }

// Flags returns the fixed header flags: DUP, QoS and RETAIN.
func (p *Publish) Flags() byte {
	f := byte(p.QoS&3) << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

// varHeaderSize is the length of topic, packet identifier and properties, given the length of
// the properties (without their length field; ignored before 5.0).
func (p *Publish) varHeaderSize(v Version, props int) int {
	n := 2 + len(p.Topic)
	if p.QoS != 0 {
		n += 2
	}
	if v == V5 {
		n += VarintSize(props) + props
	}
	return n
}

// Size returns the encoded length for version v.
func (p *Publish) Size(v Version) int {
	ps := 0
	if v == V5 {
		ps = p.Props.size()
	}
	r := p.varHeaderSize(v, ps) + len(p.Payload)
	return headerSize(r) + r
}

// AppendTo appends the encoded PUBLISH to dst. QoS 3, wildcards and empty topics are encoded as
// given; only lengths the wire cannot carry are refused.
func (p *Publish) AppendTo(dst []byte, v Version) ([]byte, error) {
	dst, err := p.AppendHeader(dst, v)
	if err != nil {
		return dst, err
	}
	return append(dst, p.Payload...), nil
}

// AppendHeader appends everything of the encoded PUBLISH except the payload: the fixed header
// (whose remaining length counts len(p.Payload)), the topic, the packet identifier and the
// properties. A server fanning one message out to many subscribers appends a header per
// subscriber (each with its own packet identifier and subscription identifiers) and writes the
// shared payload after it, e.g. with net.Buffers, without copying the payload.
func (p *Publish) AppendHeader(dst []byte, v Version) ([]byte, error) {
	if err := checkLen(TypePublish, "topic name", len(p.Topic)); err != nil {
		return dst, err
	}
	ps := 0
	if v == V5 {
		if err := p.Props.check(TypePublish); err != nil {
			return dst, err
		}
		ps = p.Props.size()
	}
	dst, err := appendHeader(dst, TypePublish, p.Flags(), p.varHeaderSize(v, ps)+len(p.Payload), v)
	if err != nil {
		return dst, err
	}
	dst = appendString(dst, p.Topic)
	if p.QoS != 0 {
		dst = appendU16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Props.appendBlockN(dst, ps)
	}
	return dst, nil
}

// PatchPacketID overwrites the packet identifier of the encoded PUBLISH at the start of b, so that
// one encoding can be sent to several subscribers. It fails for anything but a whole PUBLISH
// header with QoS > 0.
func PatchPacketID(b []byte, id uint16) error {
	off, err := publishIDOffset(b)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(b[off:], id)
	return nil
}

// SetDup sets or clears the DUP flag of the encoded PUBLISH at the start of b (redelivery).
func SetDup(b []byte, dup bool) error {
	if len(b) == 0 || Type(b[0]>>4) != TypePublish {
		return &Error{Code: MalformedPacket, Packet: TypePublish, Field: "fixed header", Offset: 0, Reason: "not a PUBLISH"}
	}
	if dup {
		b[0] |= 0x08
	} else {
		b[0] &^= 0x08
	}
	return nil
}

func publishIDOffset(b []byte) (int, error) {
	h, hl, err := ReadFixedHeader(b)
	if err != nil {
		return 0, err
	}
	bad := func(reason string) error {
		return &Error{Code: MalformedPacket, Packet: TypePublish, Field: "packet identifier", Offset: hl, Reason: reason}
	}
	if h.Type != TypePublish || h.Flags&0x06 == 0 {
		return 0, bad("not a PUBLISH with QoS > 0")
	}
	if len(b) < hl+2 {
		return 0, ErrIncomplete
	}
	off := hl + 2 + int(u16At(b, hl))
	if len(b) < off+2 {
		return 0, ErrIncomplete
	}
	return off, nil
}

// Unmarshal decodes a PUBLISH body into p; Topic, Props and Payload alias body.
func (p *Publish) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Publish{}
	d, err := begin(h, body, v, TypePublish)
	if err != nil {
		return err
	}
	p.Dup = h.Flags&0x08 != 0
	p.QoS = QoS(h.Flags >> 1 & 3)
	p.Retain = h.Flags&0x01 != 0
	if p.QoS == 3 {
		// Both QoS bits set is a malformed packet [MQTT-3.3.1-4].
		return d.errAt(-d.base, MalformedPacket, "MQTT-3.3.1-4", "fixed header flags", "QoS 3")
	}
	if p.Topic, err = d.str("topic name"); err != nil {
		return err
	}
	if p.QoS > 0 {
		if p.PacketID, err = d.u16("packet identifier"); err != nil {
			return err
		}
	}
	if v == V5 {
		if err := d.props(&p.Props, propCtx(TypePublish)); err != nil {
			return err
		}
	}
	if d.left() > 0 {
		p.Payload = d.b[d.pos:len(d.b):len(d.b)]
	}
	return nil
}
