package packet

// Unsuback answers an UNSUBSCRIBE. Codes (one per filter) and Props exist in 5.0 only.
type Unsuback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Type returns TypeUnsuback.
func (*Unsuback) Type() Type { return TypeUnsuback }

func (p *Unsuback) remaining(v Version) int {
	if v != V5 {
		return 2
	}
	return 2 + p.Props.blockSize() + len(p.Codes)
}

// Size returns the encoded length for version v.
func (p *Unsuback) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded UNSUBACK to dst.
func (p *Unsuback) AppendTo(dst []byte, v Version) ([]byte, error) {
	return appendCodes(dst, TypeUnsuback, p.PacketID, &p.Props, p.Codes, v, v == V5)
}

// Unmarshal decodes an UNSUBACK body into p; Codes aliases body.
func (p *Unsuback) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Unsuback{}
	if v != V5 {
		d, err := begin(h, body, v, TypeUnsuback)
		if err != nil {
			return err
		}
		if p.PacketID, err = d.u16("packet identifier"); err != nil {
			return err
		}
		return d.end()
	}
	var err error
	p.Codes, err = unmarshalCodes(h, body, v, TypeUnsuback, &p.PacketID, &p.Props)
	return err
}
