package packet

// Mutation changes an encoded packet to make it malformed on purpose. Mutations are applied in
// order by Build; each receives the bytes so far and returns the new bytes.
type Mutation func(b []byte) []byte

// Build encodes p for v and applies the mutations in order, for tests and the conformance suite:
//
//	packet.Build(p, packet.V5, packet.WithFlags(0x0F), packet.WithRemainingLength(300),
//	             packet.WithLongRemainingLength(5), packet.Truncate(3), packet.AppendBytes(0, 0))
//
// Content that breaks rules (QoS 3, wildcards in topics, forbidden or repeated properties through
// Properties.Raw) needs no mutation: the encoder writes it as given. Build panics only when p
// cannot be represented at all (a string over 65,535 bytes), which is a bug in the test.
func Build(p Packet, v Version, muts ...Mutation) []byte {
	b, err := p.AppendTo(make([]byte, 0, p.Size(v)+8), v)
	if err != nil {
		panic("packet.Build: " + err.Error())
	}
	for _, m := range muts {
		b = m(b)
	}
	return b
}

// headerLen returns the length of the fixed header at the start of b (1 when the remaining length
// cannot be parsed, so that mutations still do something predictable).
func headerLen(b []byte) int {
	for i := 1; i < len(b) && i <= 8; i++ {
		if b[i]&0x80 == 0 {
			return i + 1
		}
	}
	return min(len(b), 1)
}

// WithFlags replaces the four fixed header flag bits.
func WithFlags(flags byte) Mutation {
	return func(b []byte) []byte {
		if len(b) > 0 {
			b[0] = b[0]&0xF0 | flags&0x0F
		}
		return b
	}
}

// WithType replaces the packet type nibble (0 and 15 build reserved types).
func WithType(t Type) Mutation {
	return func(b []byte) []byte {
		if len(b) > 0 {
			b[0] = byte(t)<<4 | b[0]&0x0F
		}
		return b
	}
}

// WithRemainingLength rewrites the remaining length field to n without touching the body, so the
// declared length disagrees with the bytes that follow.
func WithRemainingLength(n int) Mutation {
	return func(b []byte) []byte {
		if len(b) == 0 {
			return b
		}
		hl := headerLen(b)
		out := AppendVarint(append(make([]byte, 0, len(b)+4), b[0]), n)
		return append(out, b[hl:]...)
	}
}

// WithLongRemainingLength re-encodes the remaining length (same value) in size bytes, padding with
// continuation bytes: 5 builds the over-long field that every version forbids; 2 to 4 build the
// non-minimal forms that 5.0 forbids ([MQTT-1.5.5-1]).
func WithLongRemainingLength(size int) Mutation {
	return func(b []byte) []byte {
		if len(b) == 0 || size < 1 {
			return b
		}
		hl := headerLen(b)
		n, _, _ := readVarint(b[1:hl])
		out := append(make([]byte, 0, len(b)+size), b[0])
		for i := 0; i < size; i++ {
			c := byte(n & 0x7F)
			n >>= 7
			if i < size-1 {
				c |= 0x80
			}
			out = append(out, c)
		}
		return append(out, b[hl:]...)
	}
}

// Truncate removes the last n bytes and fixes the remaining length to match, so the packet is
// whole on the wire but its last field is cut short.
func Truncate(n int) Mutation {
	return func(b []byte) []byte {
		hl := headerLen(b)
		keep := max(len(b)-n, hl)
		return WithRemainingLength(keep - hl)(b[:keep])
	}
}

// Cut removes the last n bytes without fixing the remaining length: the stream ends inside the
// packet.
func Cut(n int) Mutation {
	return func(b []byte) []byte { return b[:max(len(b)-n, 0)] }
}

// AppendBytes appends bytes and fixes the remaining length to count them: trailing bytes inside
// the packet.
func AppendBytes(extra ...byte) Mutation {
	return func(b []byte) []byte {
		hl := headerLen(b)
		b = append(b, extra...)
		return WithRemainingLength(len(b) - hl)(b)
	}
}

// SetByte overwrites the byte at offset i of the whole packet (fixed header included).
func SetByte(i int, c byte) Mutation {
	return func(b []byte) []byte {
		if i >= 0 && i < len(b) {
			b[i] = c
		}
		return b
	}
}

// SetBody overwrites the byte at offset i of the body (the byte after the fixed header is 0).
func SetBody(i int, c byte) Mutation {
	return func(b []byte) []byte { return SetByte(headerLen(b)+i, c)(b) }
}

// WithConnectFlags overwrites the connect flags byte of an encoded CONNECT, e.g. to set will QoS
// without the will flag, which the Connect struct cannot express.
func WithConnectFlags(flags byte) Mutation {
	return func(b []byte) []byte {
		hl := headerLen(b)
		if len(b) < hl+2 {
			return b
		}
		i := hl + 2 + int(u16At(b, hl)) + 1
		return SetByte(i, flags)(b)
	}
}
