package packet

// Subscribe asks for one or more subscriptions. Its fixed header flags are 0010.
type Subscribe struct {
	PacketID      uint16
	Props         Properties
	Subscriptions []Subscription
}

// Subscription is a topic filter and its options. In 3.1 and 3.1.1 only QoS exists; the 5.0
// options occupy bits that are reserved there, so setting them builds a malformed 3.1.1 packet.
type Subscription struct {
	Filter            string
	QoS               QoS
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only for new subscriptions, 2 never
	ReservedBits      byte // bits 7-6 of the options byte, set only to build malformed packets
}

// Options returns the subscription options byte as encoded.
func (s *Subscription) Options() byte {
	o := byte(s.QoS&3) | (s.RetainHandling&3)<<4 | (s.ReservedBits&3)<<6
	if s.NoLocal {
		o |= 0x04
	}
	if s.RetainAsPublished {
		o |= 0x08
	}
	return o
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() Type { return TypeSubscribe }

func (p *Subscribe) remaining(v Version) int {
	n := 2
	if v == V5 {
		n += p.Props.blockSize()
	}
	for i := range p.Subscriptions {
		n += 3 + len(p.Subscriptions[i].Filter)
	}
	return n
}

// Size returns the encoded length for version v.
func (p *Subscribe) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded SUBSCRIBE to dst; an empty subscription list is encoded as given.
func (p *Subscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	for i := range p.Subscriptions {
		if err := checkLen(TypeSubscribe, "topic filter", len(p.Subscriptions[i].Filter)); err != nil {
			return dst, err
		}
	}
	if v == V5 {
		if err := p.Props.check(TypeSubscribe); err != nil {
			return dst, err
		}
	}
	dst, err := appendHeader(dst, TypeSubscribe, 0x02, p.remaining(v), v)
	if err != nil {
		return dst, err
	}
	dst = appendU16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendBlock(dst)
	}
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		dst = append(appendString(dst, s.Filter), s.Options())
	}
	return dst, nil
}

// Unmarshal decodes a SUBSCRIBE body into p; filters alias body. Reserved option bits are a
// malformed packet; option values that are protocol errors (QoS 3, retain handling 3 in 5.0)
// are left to Validate.
func (p *Subscribe) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Subscribe{}
	d, err := begin(h, body, v, TypeSubscribe)
	if err != nil {
		return err
	}
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return err
	}
	if v == V5 {
		if err := d.props(&p.Props, propCtx(TypeSubscribe)); err != nil {
			return err
		}
	}
	for d.left() > 0 {
		var s Subscription
		if s.Filter, err = d.str("topic filter"); err != nil {
			return err
		}
		at := d.pos
		o, err := d.u8("subscription options")
		if err != nil {
			return err
		}
		if v == V5 {
			if o&0xC0 != 0 {
				// Reserved bits of the subscription options are malformed [MQTT-3.8.3-5].
				return d.errAt(at, MalformedPacket, "MQTT-3.8.3-5", "subscription options", "reserved bits set")
			}
			s.NoLocal = o&0x04 != 0
			s.RetainAsPublished = o&0x08 != 0
			s.RetainHandling = o >> 4 & 3
		} else if o&0xFC != 0 || o&3 == 3 {
			// Reserved bits, or a QoS that is not 0, 1 or 2, are malformed ([MQTT-3-8.3-4]: the
			// specification prints this identifier with a hyphen).
			return d.errAt(at, MalformedPacket, "MQTT-3-8.3-4", "requested QoS",
				"options byte "+ReasonCode(o).hex2()+": reserved bits or QoS 3")
		}
		s.QoS = QoS(o & 3)
		p.Subscriptions = append(p.Subscriptions, s)
	}
	return nil
}
