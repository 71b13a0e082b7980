package packet

// Disconnect ends a connection. In 3.1 and 3.1.1 it has no body and only clients send it; in 5.0
// either side sends it with a reason code and properties, both omitted when Success and empty.
type Disconnect struct {
	Code  ReasonCode
	Props Properties
}

// Type returns TypeDisconnect.
func (*Disconnect) Type() Type { return TypeDisconnect }

// Size returns the encoded length for version v.
func (p *Disconnect) Size(v Version) int {
	r := reasonRemaining(p.Code, &p.Props, v, true)
	return headerSize(r) + r
}

// AppendTo appends the encoded DISCONNECT to dst in its shortest form.
func (p *Disconnect) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendReason(dst, TypeDisconnect, p.Code, &p.Props, v, true)
}

// Unmarshal decodes a DISCONNECT body into p; Props may alias body.
func (p *Disconnect) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Disconnect{}
	return unmarshalReason(h, body, v, TypeDisconnect, &p.Code, &p.Props)
}

// reasonRemaining returns the remaining length of a DISCONNECT or AUTH: 0 for Success without
// properties, 1 for a reason code alone (DISCONNECT only; §3.14.2.1), else code and properties.
func reasonRemaining(code ReasonCode, props *Properties, v Version, codeOnly bool) int {
	if v != V5 {
		return 0
	}
	n := props.size()
	switch {
	case n > 0:
		return 1 + VarintSize(n) + n
	case code == Success:
		return 0
	case codeOnly:
		return 1
	}
	return 2
}

func appendReason(dst []byte, t Type, code ReasonCode, props *Properties, v Version, codeOnly bool) ([]byte, error) {
	if v == V5 {
		if err := props.check(t); err != nil {
			return dst, err
		}
	}
	r := reasonRemaining(code, props, v, codeOnly)
	dst, err := appendHeader(dst, t, 0, r, v)
	if err != nil {
		return dst, err
	}
	if r > 0 {
		dst = append(dst, byte(code))
	}
	if r > 1 {
		dst = props.appendBlock(dst)
	}
	return dst, nil
}

// unmarshalReason decodes DISCONNECT and AUTH, both of which may omit the reason code (remaining
// length 0 means Success) and the property length (remaining length 1 means no properties).
func unmarshalReason(h FixedHeader, body []byte, v Version, t Type, code *ReasonCode, props *Properties) error {
	d, err := begin(h, body, v, t)
	if err != nil {
		return err
	}
	if v != V5 || d.left() == 0 {
		return d.end()
	}
	c, err := d.u8("reason code")
	if err != nil {
		return err
	}
	*code = ReasonCode(c)
	if d.left() == 0 {
		return nil
	}
	if err := d.props(props, propCtx(t)); err != nil {
		return err
	}
	return d.end()
}
