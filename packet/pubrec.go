package packet

// Pubrec is the first acknowledgement of a QoS 2 PUBLISH.
// Code and Props exist in 5.0 only; Success with no properties is encoded in the short form.
type Pubrec struct {
	PacketID uint16
	Code     ReasonCode
	Props    Properties
}

// Type returns TypePubrec.
func (*Pubrec) Type() Type { return TypePubrec }

// Size returns the encoded length for version v.
func (p *Pubrec) Size(v Version) int {
	r := ackRemaining(p.Code, &p.Props, v)
	return headerSize(r) + r
}

// AppendTo appends the encoded PUBREC to dst.
func (p *Pubrec) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, TypePubrec, p.PacketID, p.Code, &p.Props, v)
}

// Unmarshal decodes a PUBREC body into p; Props may alias body.
func (p *Pubrec) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Pubrec{}
	return unmarshalAck(h, body, v, TypePubrec, &p.PacketID, &p.Code, &p.Props)
}
