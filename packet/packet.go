// Package packet is the MQTT 3.1, 3.1.1 and 5.0 wire codec of Gatehouse: control packets as Go
// structs, their encoding and decoding, the MQTT 5.0 properties and reason codes, a validation step
// that names the normative statement a packet breaks, and builders for deliberately malformed
// packets. It is a pure codec: it imports only the standard library, does no I/O beyond reading
// from an io.Reader, and keeps no connection state (topic aliases, in-flight windows and packet
// identifier bookkeeping belong to its callers).
//
// Decoding checks structure (lengths, flags, the property table) and is separate from Validate,
// which checks content (UTF-8, topic syntax, packet identifiers, direction rules). Encoding never
// validates content, so that tests can send what a faulty peer would send; it refuses only what
// cannot be represented on the wire.
package packet

// Version is the protocol level carried in CONNECT.
type Version byte

// Protocol levels: 3 is MQTT 3.1 ("MQIsdp"), 4 is MQTT 3.1.1 and 5 is MQTT 5.0 (both "MQTT").
const (
	V31  Version = 3
	V311 Version = 4
	V5   Version = 5
)

// String returns the version as people write it: "3.1", "3.1.1" or "5.0".
func (v Version) String() string {
	switch v {
	case V31:
		return "3.1"
	case V311:
		return "3.1.1"
	case V5:
		return "5.0"
	}
	return "level " + itoa(int(v))
}

// ProtocolName is the protocol name a CONNECT of version v carries.
func (v Version) ProtocolName() string {
	if v == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// Known reports whether v is one of the protocol levels this codec speaks.
func (v Version) Known() bool { return v == V31 || v == V311 || v == V5 }

// Type is the MQTT control packet type, the high nibble of the first byte.
type Type byte

// Control packet types. AUTH exists in 5.0 only.
const (
	TypeConnect Type = iota + 1
	TypeConnack
	TypePublish
	TypePuback
	TypePubrec
	TypePubrel
	TypePubcomp
	TypeSubscribe
	TypeSuback
	TypeUnsubscribe
	TypeUnsuback
	TypePingreq
	TypePingresp
	TypeDisconnect
	TypeAuth
)

var typeNames = [...]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the packet type's name as the specification writes it, e.g. "CONNECT".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "TYPE(" + itoa(int(t)) + ")"
}

// ValidFor reports whether packets of type t exist in version v (AUTH is 5.0 only; 0 never).
func (t Type) ValidFor(v Version) bool {
	if t == TypeAuth {
		return v == V5
	}
	return t >= TypeConnect && t < TypeAuth
}

// fixedFlags is the value the fixed header flags must have for every type whose flags are not
// PUBLISH's DUP/QoS/RETAIN ([MQTT-2.2.2-1] in 3.1.1, [MQTT-2.1.3-1] in 5.0).
func (t Type) fixedFlags() byte {
	switch t {
	case TypePubrel, TypeSubscribe, TypeUnsubscribe:
		return 0x02
	}
	return 0
}

// QoS is a quality of service level. 3 is representable so that malformed packets can be built.
type QoS byte

// Quality of service levels.
const (
	QoS0 QoS = 0
	QoS1 QoS = 1
	QoS2 QoS = 2
)

// Side says which end of a connection sent a packet; some rules bind only clients or servers.
type Side byte

// The two ends of an MQTT connection.
const (
	Client Side = iota
	Server
)

// String returns "client" or "server".
func (s Side) String() string {
	if s == Server {
		return "server"
	}
	return "client"
}

// FixedHeader is the first part of every control packet: its type, the four flag bits and the
// remaining length (the number of bytes after the fixed header).
type FixedHeader struct {
	Type      Type
	Flags     byte
	Remaining int
}

// Packet is implemented by *Connect, *Connack, *Publish, *Puback, *Pubrec, *Pubrel, *Pubcomp,
// *Subscribe, *Suback, *Unsubscribe, *Unsuback, *Pingreq, *Pingresp, *Disconnect and *Auth.
//
// Each concrete type also has Unmarshal(h FixedHeader, body []byte, v Version) error, which decodes
// a packet body into the receiver. Decoded strings and byte slices alias body: the caller must not
// modify or reuse body while the packet is in use.
type Packet interface {
	// Type returns the control packet type.
	Type() Type
	// AppendTo appends the whole encoded packet (fixed header included) for version v to dst.
	// It does not validate content; it fails only when the packet cannot be represented.
	AppendTo(dst []byte, v Version) ([]byte, error)
	// Size returns the encoded length for version v, computed without encoding.
	Size(v Version) int
}

// unmarshaler is what Decode needs from each concrete packet.
type unmarshaler interface {
	Packet
	Unmarshal(h FixedHeader, body []byte, v Version) error
}

// New returns an empty packet of type t, or nil for a type that does not exist.
func New(t Type) Packet {
	switch t {
	case TypeConnect:
		return &Connect{}
	case TypeConnack:
		return &Connack{}
	case TypePublish:
		return &Publish{}
	case TypePuback:
		return &Puback{}
	case TypePubrec:
		return &Pubrec{}
	case TypePubrel:
		return &Pubrel{}
	case TypePubcomp:
		return &Pubcomp{}
	case TypeSubscribe:
		return &Subscribe{}
	case TypeSuback:
		return &Suback{}
	case TypeUnsubscribe:
		return &Unsubscribe{}
	case TypeUnsuback:
		return &Unsuback{}
	case TypePingreq:
		return &Pingreq{}
	case TypePingresp:
		return &Pingresp{}
	case TypeDisconnect:
		return &Disconnect{}
	case TypeAuth:
		return &Auth{}
	}
	return nil
}

// Encode returns p encoded for version v in a new slice of exactly the right size.
func Encode(p Packet, v Version) ([]byte, error) {
	return p.AppendTo(make([]byte, 0, p.Size(v)), v)
}

// itoa formats small non-negative integers without fmt, which stays off the codec's paths.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
