package packet

// Unsubscribe removes subscriptions. Its fixed header flags are 0010.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Type returns TypeUnsubscribe.
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }

func (p *Unsubscribe) remaining(v Version) int {
	n := 2
	if v == V5 {
		n += p.Props.blockSize()
	}
	for _, f := range p.Filters {
		n += 2 + len(f)
	}
	return n
}

// Size returns the encoded length for version v.
func (p *Unsubscribe) Size(v Version) int {
	r := p.remaining(v)
	return headerSize(r) + r
}

// AppendTo appends the encoded UNSUBSCRIBE to dst; an empty filter list is encoded as given.
func (p *Unsubscribe) AppendTo(dst []byte, v Version) ([]byte, error) {
	for _, f := range p.Filters {
		if err := checkLen(TypeUnsubscribe, "topic filter", len(f)); err != nil {
			return dst, err
		}
	}
	if v == V5 {
		if err := p.Props.check(TypeUnsubscribe); err != nil {
			return dst, err
		}
	}
	dst, err := appendHeader(dst, TypeUnsubscribe, 0x02, p.remaining(v), v)
	if err != nil {
		return dst, err
	}
	dst = appendU16(dst, p.PacketID)
	if v == V5 {
		dst = p.Props.appendBlock(dst)
	}
	for _, f := range p.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// Unmarshal decodes an UNSUBSCRIBE body into p; filters alias body.
func (p *Unsubscribe) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Unsubscribe{}
	d, err := begin(h, body, v, TypeUnsubscribe)
	if err != nil {
		return err
	}
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return err
	}
	if v == V5 {
		if err := d.props(&p.Props, propCtx(TypeUnsubscribe)); err != nil {
			return err
		}
	}
	for d.left() > 0 {
		f, err := d.str("topic filter")
		if err != nil {
			return err
		}
		p.Filters = append(p.Filters, f)
	}
	return nil
}
