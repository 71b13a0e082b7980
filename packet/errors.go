package packet

import "errors"

// ErrIncomplete is returned (possibly wrapped) by Decode and ReadFixedHeader when the bytes given
// hold less than one whole packet; the caller reads more and tries again.
var ErrIncomplete = errors.New("incomplete packet")

// Error is what decoding and validation return for a packet that breaks a rule. It names the
// reason code a 5.0 peer would report and the normative statement broken, so that the broker, the
// clients and the conformance suite all report a violation the same way.
type Error struct {
	Code   ReasonCode // the reason code a 5.0 peer reports (MalformedPacket, ProtocolError, TopicNameInvalid, ...)
	Rule   string     // normative statement ID for the version, e.g. "MQTT-3.3.2-2"; a section ("§2.2.3") when none is numbered
	Packet Type       // packet being decoded or validated
	Field  string     // e.g. "topic name", "fixed header flags", "property 0x23 topic alias"
	Offset int        // byte offset in the packet where detected, -1 when not applicable
	Reason string     // what is wrong, in words
}

// Error formats the violation, e.g.
// "PUBLISH topic name: wildcard '+' in topic name (MQTT-3.3.2-2, topic name invalid 0x90)".
func (e *Error) Error() string {
	b := make([]byte, 0, 96)
	b = append(b, e.Packet.String()...)
	if e.Field != "" {
		b = append(b, ' ')
		b = append(b, e.Field...)
	}
	if e.Offset >= 0 {
		b = append(b, " at byte "...)
		b = append(b, itoa(e.Offset)...)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	b = append(b, " ("...)
	if e.Rule != "" {
		b = append(b, e.Rule...)
		b = append(b, ", "...)
	}
	b = append(b, e.Code.String()...)
	b = append(b, ' ')
	b = append(b, e.Code.hex2()...)
	b = append(b, ')')
	return string(b)
}

// Unwrap returns the reason code, so that errors.Is(err, packet.MalformedPacket) works.
func (e *Error) Unwrap() error { return e.Code }

// Is reports whether target is an *Error with the same code and rule, so that tests can write
// errors.Is(err, &packet.Error{Code: packet.ProtocolError, Rule: "MQTT-3.8.3-4"}).
// An empty Rule in target matches any rule.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Rule == "" || t.Rule == e.Rule)
}
