package packet

// Pingresp answers PINGREQ; it has no body.
type Pingresp struct{}

// Type returns TypePingresp.
func (*Pingresp) Type() Type { return TypePingresp }

// Size returns 2.
func (*Pingresp) Size(Version) int { return 2 }

// AppendTo appends D0 00.
func (*Pingresp) AppendTo(dst []byte, _ Version) ([]byte, error) {
	return append(dst, byte(TypePingresp)<<4, 0), nil
}

// Unmarshal checks that the PINGRESP has no body and no flags.
func (*Pingresp) Unmarshal(h FixedHeader, body []byte, v Version) error {
	d, err := begin(h, body, v, TypePingresp)
	if err != nil {
		return err
	}
	return d.end()
}
