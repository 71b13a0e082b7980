package v5

import "github.com/gatehouse-iot/gatehouse/packet"

// codeSet is a set of reason codes one packet type may carry, as the tables of the
// specification list them. The checks keep their own copy of each table rather than asking the
// codec, so that a codec mistake cannot hide a broker's.
type codeSet map[packet.ReasonCode]bool

func codes(cs ...byte) codeSet {
	s := codeSet{}
	for _, c := range cs {
		s[packet.ReasonCode(c)] = true
	}
	return s
}

var (
	// connackCodes is Table 3-1, Connect Reason Code values (section 3.2.2.2).
	connackCodes = codes(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
		0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)
	// pubackCodes: PUBACK Reason Codes (section 3.4.2.1); PUBREC has the same (3.5.2.1).
	pubackCodes = codes(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
	// pubrelCodes: PUBREL Reason Codes (3.6.2.1); PUBCOMP has the same (3.7.2.1).
	pubrelCodes = codes(0x00, 0x92)
	// subackCodes: Subscribe Reason Codes, Table 3-10 (3.9.3).
	subackCodes = codes(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
	// unsubackCodes: Unsubscribe Reason Codes (3.11.3).
	unsubackCodes = codes(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
	// serverDisconnectCodes: the Disconnect Reason Codes (3.14.2.1) a Server may send; 0x04
	// (Disconnect with Will Message) is the Client's alone.
	serverDisconnectCodes = codes(0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
		0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)
	// authCodes: Authenticate Reason Codes (3.15.2.1).
	authCodes = codes(0x00, 0x18, 0x19)
)
