package packet

import (
	"encoding/binary"
	"unsafe"
)

// dec reads the body of one packet. Every read checks the bytes left first, so a length field is
// never trusted before it has been compared with what remains of the packet.
type dec struct {
	b    []byte // the body: the bytes after the fixed header, exactly Remaining long
	pos  int    // next byte to read in b
	base int    // length of the fixed header, so that offsets count from the packet's first byte
	t    Type
	v    Version
}

func newDec(h FixedHeader, body []byte, v Version) dec {
	return dec{b: body, base: 1 + VarintSize(h.Remaining), t: h.Type, v: v}
}

func (d *dec) left() int { return len(d.b) - d.pos }

// errAt builds an *Error located at body position pos.
func (d *dec) errAt(pos int, code ReasonCode, rule, field, reason string) *Error {
	return &Error{Code: code, Rule: rule, Packet: d.t, Field: field, Offset: d.base + pos, Reason: reason}
}

// err builds an *Error located at the next byte to read.
func (d *dec) err(code ReasonCode, rule, field, reason string) *Error {
	return d.errAt(d.pos, code, rule, field, reason)
}

// short reports a field that runs past the end of the packet as its remaining length declares it.
func (d *dec) short(field string) *Error {
	return d.err(MalformedPacket, remainingRule(d.v), field, "field runs past the remaining length")
}

// remainingRule is the section defining the remaining length for v; a packet whose fields do not
// fill it exactly is malformed.
func remainingRule(v Version) string {
	if v == V5 {
		return "§2.1.4"
	}
	return "§2.2.3"
}

// varintRule is the section defining variable byte integers for v.
func varintRule(v Version) string {
	if v == V5 {
		return "§1.5.5"
	}
	return "§2.2.3"
}

func (d *dec) u8(field string) (byte, error) {
	if d.left() < 1 {
		return 0, d.short(field)
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *dec) u16(field string) (uint16, error) {
	if d.left() < 2 {
		return 0, d.short(field)
	}
	n := binary.BigEndian.Uint16(d.b[d.pos:])
	d.pos += 2
	return n, nil
}

func (d *dec) u32(field string) (uint32, error) {
	if d.left() < 4 {
		return 0, d.short(field)
	}
	n := binary.BigEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return n, nil
}

// varint reads a variable byte integer. 5.0 requires the shortest encoding ([MQTT-1.5.5-1]).
func (d *dec) varint(field string) (int, error) {
	n, l, res := readVarint(d.b[d.pos:])
	switch res {
	case varintShort:
		return 0, d.short(field)
	case varintTooLong:
		return 0, d.err(MalformedPacket, varintRule(d.v), field, "variable byte integer longer than four bytes")
	case varintNonMinimal:
		if d.v == V5 {
			return 0, d.err(MalformedPacket, "MQTT-1.5.5-1", field, "variable byte integer not in its shortest form")
		}
	}
	d.pos += l
	return n, nil
}

// bin reads a two-byte length and that many bytes, aliasing the body.
func (d *dec) bin(field string) ([]byte, error) {
	if d.left() < 2 {
		return nil, d.short(field)
	}
	n := int(binary.BigEndian.Uint16(d.b[d.pos:]))
	if d.left()-2 < n {
		return nil, d.err(MalformedPacket, stringRule(d.v), field, "length "+itoa(n)+" runs past the remaining length")
	}
	d.pos += 2
	s := d.b[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return s, nil
}

// str reads a length-prefixed string without copying: the string aliases the body. Its UTF-8
// content is checked by Validate, not here.
func (d *dec) str(field string) (string, error) {
	s, err := d.bin(field)
	if err != nil || len(s) == 0 {
		return "", err
	}
	return unsafe.String(&s[0], len(s)), nil
}

// stringRule is the section defining length-prefixed strings for v.
func stringRule(v Version) string {
	if v == V5 {
		return "§1.5.4"
	}
	return "§1.5.3"
}

// end reports bytes left over once every field of the packet has been read.
func (d *dec) end() error {
	if d.left() > 0 {
		return d.err(MalformedPacket, remainingRule(d.v), "remaining length",
			itoa(d.left())+" bytes after the last field")
	}
	return nil
}

// checkFlags compares the fixed header flags with the value the type requires.
func checkFlags(h FixedHeader, v Version) error {
	want := h.Type.fixedFlags()
	if h.Flags == want {
		return nil
	}
	return &Error{Code: MalformedPacket, Rule: flagsRule(h.Type, v), Packet: h.Type, Field: "fixed header flags",
		Offset: 0, Reason: "flags " + bits4(h.Flags) + ", must be " + bits4(want)}
}

// flagsRule names the statement that fixes the flags of type t in version v. Some packets have a
// statement of their own; the rest fall under the general rule.
func flagsRule(t Type, v Version) string {
	switch t {
	case TypePubrel:
		return "MQTT-3.6.1-1"
	case TypeSubscribe:
		return "MQTT-3.8.1-1"
	case TypeUnsubscribe:
		return "MQTT-3.10.1-1"
	case TypeDisconnect:
		return "MQTT-3.14.1-1"
	case TypeAuth:
		return "MQTT-3.15.1-1"
	}
	if v == V5 {
		return "MQTT-2.1.3-1"
	}
	return "MQTT-2.2.2-1"
}

func bits4(f byte) string {
	return string([]byte{'0' + f>>3&1, '0' + f>>2&1, '0' + f>>1&1, '0' + f&1})
}

// ReadFixedHeader parses a fixed header from the start of b and returns it with its length.
// It returns ErrIncomplete when b ends inside the header, and an *Error for a remaining length
// longer than four bytes or packet type 0. It does not check the flags (Unmarshal does, per type)
// nor whether the body is present. Rules are cited with 3.1.1 numbering; Decode cites them for the
// version it is given.
func ReadFixedHeader(b []byte) (FixedHeader, int, error) {
	return readFixedHeader(b, 0)
}

func readFixedHeader(b []byte, v Version) (FixedHeader, int, error) {
	if len(b) < 2 {
		return FixedHeader{}, 0, ErrIncomplete
	}
	h := FixedHeader{Type: Type(b[0] >> 4), Flags: b[0] & 0x0F}
	n, l, res := readVarint(b[1:])
	switch res {
	case varintShort:
		return h, 0, ErrIncomplete
	case varintTooLong:
		return h, 0, &Error{Code: MalformedPacket, Rule: varintRule(v), Packet: h.Type, Field: "remaining length",
			Offset: 1, Reason: "remaining length longer than four bytes"}
	case varintNonMinimal:
		if v == V5 {
			return h, 0, &Error{Code: MalformedPacket, Rule: "MQTT-1.5.5-1", Packet: h.Type, Field: "remaining length",
				Offset: 1, Reason: "remaining length not in its shortest form"}
		}
	}
	h.Remaining = n
	if h.Type == 0 || (v.Known() && !h.Type.ValidFor(v)) {
		rule := "§2.2.1"
		if v == V5 {
			rule = "§2.1.2"
		}
		return h, 0, &Error{Code: MalformedPacket, Rule: rule, Packet: h.Type, Field: "packet type", Offset: 0,
			Reason: "packet type " + itoa(int(h.Type)) + " is reserved in MQTT " + v.String()}
	}
	return h, 1 + l, nil
}

// Decode decodes one packet from the start of b and returns it with the number of bytes it took.
// Strings and byte slices of the packet alias b. Every length is checked against len(b) and
// against maxSize (0 means the protocol maximum) before it is used.
//
// A CONNECT carries its own version; other packets are decoded for v (pass 0 before the
// connection's version is known: a CONNECT decodes, other packets decode as 3.1.1). When b holds less than one
// whole packet Decode returns ErrIncomplete and 0. For a packet that breaks a rule it returns an
// *Error, the number of bytes the packet spans (so a lenient reader can skip it; 0 when not even
// the fixed header could be read) and, when the body was partly decoded, the partial packet: a
// server uses the partial *Connect's Version to answer an unsupported version in kind.
func Decode(b []byte, v Version, maxSize int) (Packet, int, error) {
	h, hl, err := readFixedHeader(b, v)
	if err != nil {
		return nil, 0, err
	}
	if err := checkSize(h, hl, v, maxSize); err != nil {
		return nil, 0, err
	}
	total := hl + h.Remaining
	if len(b) < total {
		return nil, 0, ErrIncomplete
	}
	p := New(h.Type).(unmarshaler)
	if err := p.Unmarshal(h, b[hl:total:total], v); err != nil {
		return p, total, err
	}
	return p, total, nil
}

// checkSize compares the whole packet's size with maxSize before any body is read or allocated.
func checkSize(h FixedHeader, hl int, v Version, maxSize int) error {
	if maxSize <= 0 || maxSize > MaxRemaining+5 {
		return nil
	}
	if size := hl + h.Remaining; size > maxSize {
		rule := "§2.2.3"
		if v == V5 {
			rule = "§3.1.2.11.4"
		}
		return &Error{Code: PacketTooLarge, Rule: rule, Packet: h.Type, Field: "remaining length", Offset: 1,
			Reason: "packet of " + itoa(size) + " bytes exceeds the maximum packet size " + itoa(maxSize)}
	}
	return nil
}
