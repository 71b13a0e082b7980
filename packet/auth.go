package packet

// Auth carries an extended authentication exchange (5.0 only). Success with no properties is
// encoded with remaining length 0. The encoder writes the 5.0 layout for any version, so that an
// AUTH can be sent to a 3.1.1 peer on purpose; decoding one for 3.1.1 fails (type 15 is reserved).
type Auth struct {
	Code  ReasonCode
	Props Properties
}

// Type returns TypeAuth.
func (*Auth) Type() Type { return TypeAuth }

// Size returns the encoded length.
func (p *Auth) Size(Version) int {
	r := reasonRemaining(p.Code, &p.Props, V5, false)
	return headerSize(r) + r
}

// AppendTo appends the encoded AUTH to dst.
func (p *Auth) AppendTo(dst []byte, _ Version) ([]byte, error) {
	return appendReason(dst, TypeAuth, p.Code, &p.Props, V5, false)
}

// Unmarshal decodes an AUTH body into p; Props may alias body.
func (p *Auth) Unmarshal(h FixedHeader, body []byte, v Version) error {
	*p = Auth{}
	return unmarshalReason(h, body, v, TypeAuth, &p.Code, &p.Props)
}
