package packet

import "unsafe"

// Suback answers a SUBSCRIBE with one code per subscription: the granted QoS or a failure.
type Suback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Type returns TypeSuback.
func (*Suback) Type() Type { return TypeSuback }

func (p *Suback) remaining(v Version) int {
	n := 2 + len(p.Codes)
	if v == V5 {
		n += p.Props.blockSize()
	}
	return n
}

// Size returns the encoded length for version v.
func (p *Suback) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded SUBACK to dst.
func (p *Suback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, TypeSuback, p.PacketID, &p.Props, p.Codes, v, true)
}

// Unmarshal decodes a SUBACK body into p; Codes aliases body.
func (p *Suback) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Suback{}
	var err error
	p.Codes, err = unmarshalCodes(h, body, v, TypeSuback, &p.PacketID, &p.Props)
	return err
}

// appendCodes encodes SUBACK and UNSUBACK: packet identifier, 5.0 properties, one byte per code.
// A 3.1.1 UNSUBACK has no codes (withCodes false).
func appendCodes(dst []byte, t Type, id uint16, props *Properties, codes []ReasonCode, v Version, withCodes bool) ([]byte, error) {
	if v == V5 {
		if err := props.check(t); err != nil {
			return dst, err
		}
	}
	r := 2
	if v == V5 {
		r += props.blockSize()
	}
	if withCodes {
		r += len(codes)
	}
	dst, err := appendHeader(dst, t, 0, r, v)
	if err != nil {
		return dst, err
	}
	dst = appendU16(dst, id)
	if v == V5 {
		dst = props.appendBlock(dst)
	}
	if withCodes {
		for _, c := range codes {
			dst = append(dst, byte(c))
		}
	}
	return dst, nil
}

// unmarshalCodes decodes SUBACK and the 5.0 UNSUBACK; the codes alias the body.
func unmarshalCodes(h FixedHeader, body []byte, v Version, t Type, id *uint16, props *Properties) ([]ReasonCode, error) {
	d, err := begin(h, body, v, t)
	if err != nil {
		return nil, err
	}
	if *id, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := d.props(props, propCtx(t)); err != nil {
			return nil, err
		}
	}
	if d.left() == 0 {
		return nil, nil
	}
	rest := d.b[d.pos:]
	// ReasonCode has byte as its underlying type, so the body can be viewed as codes in place.
	return unsafe.Slice((*ReasonCode)(unsafe.Pointer(&rest[0])), len(rest)), nil
}
