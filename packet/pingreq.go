package packet

// Pingreq is the client's keepalive probe; it has no body.
type Pingreq struct{}

// Type returns TypePingreq.
func (*Pingreq) Type() Type { return TypePingreq }

// Size returns 2.
func (*Pingreq) Size(Version) int { return 2 }

// AppendTo appends C0 00.
func (*Pingreq) AppendTo(dst []byte, _ Version) ([]byte, error) {
	return append(dst, byte(TypePingreq)<<4, 0), nil
}

// Unmarshal checks that the PINGREQ has no body and no flags.
func (*Pingreq) Unmarshal(h FixedHeader, body []byte, v Version) error {
	d, err := begin(h, body, v, TypePingreq)
	if err != nil {
		return err
	}
	return d.end()
}
