package packet

// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout: a packet identifier and, in 5.0, a reason
// code and properties that may be left out when they are Success and empty (§3.4.2.1).

// ackRemaining returns the remaining length of an acknowledgement, choosing the shortest form.
func ackRemaining(code ReasonCode, props *Properties, v Version) int {
	if v != V5 {
		return 2
	}
	n := props.size()
	switch {
	case n > 0:
		return 3 + VarintSize(n) + n
	case code != Success:
		return 3
	}
	return 2
}

func appendAck(dst []byte, t Type, id uint16, code ReasonCode, props *Properties, v Version) ([]byte, error) {
	if v == V5 {
		if err := props.check(t); err != nil {
			return dst, err
		}
	}
	r := ackRemaining(code, props, v)
	dst, err := appendHeader(dst, t, t.fixedFlags(), r, v)
	if err != nil {
		return dst, err
	}
	dst = appendU16(dst, id)
	if r > 2 {
		dst = append(dst, byte(code))
	}
	if r > 3 {
		dst = props.appendBlock(dst)
	}
	return dst, nil
}

func unmarshalAck(h FixedHeader, body []byte, v Version, t Type, id *uint16, code *ReasonCode, props *Properties) error {
	d, err := begin(h, body, v, t)
	if err != nil {
		return err
	}
	if *id, err = d.u16("packet identifier"); err != nil {
		return err
	}
	if v != V5 {
		return d.end()
	}
	// The reason code and the property length may be omitted: remaining length 2 means Success
	// without properties, 3 means a reason code without properties (§3.4.2.1, §3.4.2.2.1).
	if d.left() == 0 {
		return nil
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

// begin checks what every Unmarshal checks first: that the header is for type t, its flags, and
// that body is as long as the header says.
func begin(h FixedHeader, body []byte, v Version, t Type) (dec, error) {
	d := newDec(h, body, v)
	d.t = t
	if h.Type != t {
		return d, &Error{Code: MalformedPacket, Rule: "", Packet: t, Field: "packet type", Offset: 0,
			Reason: "header is for " + h.Type.String()}
	}
	if (!t.ValidFor(v) && v.Known()) || (t == TypeAuth && v != V5) {
		rule := "§2.2.1"
		if v == V5 {
			rule = "§2.1.2"
		}
		return d, &Error{Code: MalformedPacket, Rule: rule, Packet: t, Field: "packet type", Offset: 0,
			Reason: t.String() + " does not exist in MQTT " + v.String()}
	}
	if t != TypePublish {
		if err := checkFlags(h, v); err != nil {
			return d, err
		}
	}
	if h.Remaining != len(body) {
		return d, &Error{Code: MalformedPacket, Rule: remainingRule(v), Packet: t, Field: "remaining length",
			Offset: 1, Reason: "remaining length " + itoa(h.Remaining) + " but body of " + itoa(len(body)) + " bytes"}
	}
	return d, nil
}
