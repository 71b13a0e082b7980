package packet

// Pubcomp completes a QoS 2 exchange, answering PUBREL.
// Code and Props exist in 5.0 only; Success with no properties is encoded in the short form.
type Pubcomp struct {
	PacketID uint16
	Code     ReasonCode
	Props    Properties
}

// Type returns TypePubcomp.
func (*Pubcomp) Type() Type { return TypePubcomp }

// Size returns the encoded length for version v.
func (p *Pubcomp) Size(v Version) int {
	r := ackRemaining(p.Code, &p.Props, v)
	return headerSize(r) + r
}

// AppendTo appends the encoded PUBCOMP to dst.
func (p *Pubcomp) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendAck(dst, TypePubcomp, p.PacketID, p.Code, &p.Props, v)
}

// Unmarshal decodes a PUBCOMP body into p; Props may alias body.
func (p *Pubcomp) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Pubcomp{}
	return unmarshalAck(h, body, v, TypePubcomp, &p.PacketID, &p.Code, &p.Props)
}
