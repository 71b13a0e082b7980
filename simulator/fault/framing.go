package fault

import "errors"

// Outgoing framing is read with the fixed header rules of MQTT 3.1.1 §2.2 (the same in 5.0 §2.1):
// a type nibble, four flag bits and a remaining length of one to four 7-bit groups.

const (
	typePublish = 3
	typePingreq = 12
)

var (
	errIncomplete = errors.New("fixed header incomplete")
	errMalformed  = errors.New("remaining length longer than four bytes")
)

type fixedHeader struct {
	typ       byte
	remaining int
}

// readFixedHeader parses the fixed header at the start of b.
func readFixedHeader(b []byte) (fixedHeader, error) {
	if len(b) < 2 {
		return fixedHeader{}, errIncomplete
	}
	h := fixedHeader{typ: b[0] >> 4}
	mult := 1
	for i := 1; i < len(b); i++ {
		if i > 4 {
			return h, errMalformed
		}
		h.remaining += int(b[i]&0x7F) * mult
		if b[i]&0x80 == 0 {
			return h, nil
		}
		mult <<= 7
	}
	if len(b) > 4 {
		return h, errMalformed
	}
	return h, errIncomplete
}
