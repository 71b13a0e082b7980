package packet

// Puback acknowledges a QoS 1 PUBLISH.
// Code and Props exist in 5.0 only; Success with no properties is encoded in the short form.
type Puback struct {
	PacketID uint16
	Code     ReasonCode
	Props    Properties
}

// Type returns TypePuback.
func (*Puback) Type() Type { return TypePuback }

// Size returns the encoded length for version v.
func (p *Puback) Size(v Version) int {
	r := ackRemaining(p.Code, &p.Props, v)
	return headerSize(r) + r
}

// AppendTo appends the encoded PUBACK to dst.
func (p *Puback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, TypePuback, p.PacketID, p.Code, &p.Props, v)
}

// Unmarshal decodes a PUBACK body into p; Props may alias body.
func (p *Puback) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Puback{}
	return unmarshalAck(h, body, v, TypePuback, &p.PacketID, &p.Code, &p.Props)
}
