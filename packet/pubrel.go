package packet

// Pubrel releases a QoS 2 PUBLISH after its PUBREC; its fixed header flags are 0010.
// Code and Props exist in 5.0 only; Success with no properties is encoded in the short form.
type Pubrel struct {
	PacketID uint16
	Code     ReasonCode
	Props    Properties
}

// Type returns TypePubrel.
func (*Pubrel) Type() Type { return TypePubrel }

// Size returns the encoded length for version v.
func (p *Pubrel) Size(v Version) int {
	r := ackRemaining(p.Code, &p.Props, v)
	return headerSize(r) + r
}

// AppendTo appends the encoded PUBREL to dst.
func (p *Pubrel) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, TypePubrel, p.PacketID, p.Code, &p.Props, v)
}

// Unmarshal decodes a PUBREL body into p; Props may alias body.
func (p *Pubrel) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Pubrel{}
	return unmarshalAck(h, body, v, TypePubrel, &p.PacketID, &p.Code, &p.Props)
}
