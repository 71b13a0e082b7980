package packet

// MaxRemaining is the largest remaining length (and variable byte integer) MQTT can express:
// four bytes of seven bits each (3.1.1 §2.2.3, 5.0 §1.5.5).
const MaxRemaining = 268_435_455

// MaxVarintLen is the longest valid variable byte integer.
const MaxVarintLen = 4

// VarintSize returns how many bytes the variable byte integer n takes (1 to 4; 5 for values the
// protocol cannot express, which AppendVarint refuses).
func VarintSize(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16_384:
		return 2
	case n < 2_097_152:
		return 3
	case n <= MaxRemaining:
		return 4
	}
	return 5
}

// AppendVarint appends n as a variable byte integer. It does not check the range: callers check
// 0 <= n <= MaxRemaining first (a larger n yields five or more bytes, which only malformed packets
// use).
func AppendVarint(dst []byte, n int) []byte {
	u := uint(n) // unsigned, so that even a negative n ends the loop
	for {
		b := byte(u & 0x7F)
		u >>= 7
		if u > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if u == 0 {
			return dst
		}
	}
}

// varintResult says why ReadVarint stopped.
type varintResult byte

const (
	varintOK         varintResult = iota
	varintShort                   // the buffer ended inside the integer
	varintTooLong                 // a fifth byte would be needed
	varintNonMinimal              // valid, but more bytes than the value needs
)

// readVarint decodes a variable byte integer from the start of b and returns the value, its
// length and whether it is complete, too long or encoded with more bytes than needed.
func readVarint(b []byte) (int, int, varintResult) {
	n := 0
	for i := 0; i < MaxVarintLen; i++ {
		if i >= len(b) {
			return 0, 0, varintShort
		}
		c := b[i]
		n |= int(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return n, i + 1, varintNonMinimal
			}
			return n, i + 1, varintOK
		}
	}
	return 0, 0, varintTooLong
}

// ReadVarint decodes a variable byte integer from the start of b and returns its value and length.
// It returns ErrIncomplete when b ends inside the integer and an *Error for a fifth byte.
func ReadVarint(b []byte) (int, int, error) {
	n, l, res := readVarint(b)
	switch res {
	case varintShort:
		return 0, 0, ErrIncomplete
	case varintTooLong:
		return 0, 0, &Error{Code: MalformedPacket, Rule: "§1.5.5", Field: "variable byte integer", Offset: 4,
			Reason: "variable byte integer longer than four bytes"}
	}
	return n, l, nil
}
