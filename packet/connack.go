package packet

// Connack answers a CONNECT. In 3.1 and 3.1.1 Code is a return code (ConnAccepted,
// ConnRefusedProtocolVersion, ...); use ConnackCode to map a 5.0 reason to it.
type Connack struct {
	SessionPresent bool
	Code           ReasonCode
	Props          Properties
	// ReservedFlags are bits 7-1 of the acknowledge flags, set only to build malformed CONNACKs.
	ReservedFlags byte
}

// Type returns TypeConnack.
func (*Connack) Type() Type { return TypeConnack }

func (p *Connack) remaining(v Version) int {
	if v == V5 {
		return 2 + p.Props.blockSize()
	}
	return 2
}

// Size returns the encoded length for version v.
func (p *Connack) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded CONNACK to dst.
func (p *Connack) AppendTo(dst []byte, v Version) ([]byte, error) {
	if v == V5 {
		if err := p.Props.check(TypeConnack); err != nil {
			return dst, err
		}
	}
	dst, err := appendHeader(dst, TypeConnack, 0, p.remaining(v), v)
	if err != nil {
		return dst, err
	}
	f := p.ReservedFlags &^ 1
	if p.SessionPresent {
		f |= 1
	}
	dst = append(dst, f, byte(p.Code))
	if v == V5 {
		dst = p.Props.appendBlock(dst)
	}
	return dst, nil
}

// Unmarshal decodes a CONNACK body into p; Props may alias body.
func (p *Connack) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Connack{}
	d, err := begin(h, body, v, TypeConnack)
	if err != nil {
		return err
	}
	f, err := d.u8("acknowledge flags")
	if err != nil {
		return err
	}
	// Bits 7-1 of the acknowledge flags are reserved ([MQTT-3.2.2-1] in 5.0, §3.2.2.1 in 3.1.1).
	// 3.1 has no session present bit and calls the whole byte unused, so it is not checked there.
	if f&^1 != 0 && v != V31 {
		return d.errAt(0, MalformedPacket, pick(v, "§3.2.2.1", "MQTT-3.2.2-1"), "acknowledge flags",
			"reserved bits "+ReasonCode(f&^1).hex2()+" set")
	}
	p.SessionPresent = f&1 != 0
	p.ReservedFlags = f &^ 1
	c, err := d.u8("reason code")
	if err != nil {
		return err
	}
	p.Code = ReasonCode(c)
	if v == V5 {
		if err := d.props(&p.Props, propCtx(TypeConnack)); err != nil {
			return err
		}
	}
	return d.end()
}
