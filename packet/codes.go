package packet

// ReasonCode is a one-byte MQTT reason code. It is a comparable error value, so that
// errors.Is(err, packet.MalformedPacket) works through any wrapping. In 3.1 and 3.1.1 the same byte
// carries a CONNACK return code or a SUBACK return code; constants for those are below.
type ReasonCode byte

// MQTT 5.0 reason codes (§2.4). Several names share a value; which one applies depends on the
// packet that carries it.
const (
	Success                             ReasonCode = 0x00
	NormalDisconnection                 ReasonCode = 0x00
	GrantedQoS0                         ReasonCode = 0x00
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWill                  ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

// MQTT 3.1 and 3.1.1 CONNACK return codes (3.1.1 §3.2.2.3) and the 3.1.1 SUBACK failure code.
const (
	ConnAccepted                     ReasonCode = 0x00
	ConnRefusedProtocolVersion       ReasonCode = 0x01
	ConnRefusedIdentifierRejected    ReasonCode = 0x02
	ConnRefusedServerUnavailable     ReasonCode = 0x03
	ConnRefusedBadUsernameOrPassword ReasonCode = 0x04
	ConnRefusedNotAuthorized         ReasonCode = 0x05
	SubackFailure                    ReasonCode = 0x80
)

var reasonNames = map[ReasonCode]string{
	0x00: "success",
	0x01: "granted QoS 1",
	0x02: "granted QoS 2",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x18: "continue authentication",
	0x19: "re-authenticate",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

var connackNames311 = [...]string{
	"connection accepted",
	"connection refused: unacceptable protocol version",
	"connection refused: identifier rejected",
	"connection refused: server unavailable",
	"connection refused: bad user name or password",
	"connection refused: not authorized",
}

var hexDigits = "0123456789ABCDEF"

// hex2 formats r as "0x81" without fmt.
func (r ReasonCode) hex2() string {
	return string([]byte{'0', 'x', hexDigits[r>>4], hexDigits[r&0xF]})
}

// String returns the MQTT 5.0 name of the code in lower case, e.g. "malformed packet".
// Codes that share a value are named by their most general meaning (0x00 is "success").
func (r ReasonCode) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "reason code " + r.hex2()
}

// Error returns the name and value, e.g. "malformed packet (0x81)".
func (r ReasonCode) Error() string { return r.String() + " (" + r.hex2() + ")" }

// IsError reports whether the code signals failure (0x80 and above).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// Text names r as it reads in a packet of type t for version v: 0x00 in a DISCONNECT is "normal
// disconnection", 0x04 in a 3.1.1 CONNACK is "connection refused: bad user name or password".
func (r ReasonCode) Text(t Type, v Version) string {
	if v != V5 {
		switch t {
		case TypeConnack:
			if int(r) < len(connackNames311) {
				return connackNames311[r]
			}
		case TypeSuback:
			if r == SubackFailure {
				return "failure"
			}
			if r <= 2 {
				return "granted QoS " + itoa(int(r))
			}
		}
		return "reason code " + r.hex2()
	}
	if r == 0 {
		switch t {
		case TypeDisconnect:
			return "normal disconnection"
		case TypeSuback:
			return "granted QoS 0"
		}
	}
	return r.String()
}

// ConnackCode maps a 5.0 CONNACK reason code to the code that version v sends: itself for 5.0,
// the nearest 3.1.1 return code otherwise (e.g. BadUserNameOrPassword 0x86 → 0x04). A reason with
// no 3.1.1 counterpart maps to ConnRefusedServerUnavailable; see ConnackCodeOK to tell them apart.
func ConnackCode(v Version, r ReasonCode) ReasonCode {
	c, _ := ConnackCodeOK(v, r)
	return c
}

// ConnackCodeOK is ConnackCode that also reports whether the mapping is exact. When it is not, a
// 3.1.1 server should close the connection without a CONNACK ([MQTT-3.2.2-6] in 3.1.1).
func ConnackCodeOK(v Version, r ReasonCode) (ReasonCode, bool) {
	if v == V5 {
		return r, true
	}
	switch r {
	case Success:
		return ConnAccepted, true
	case UnsupportedProtocolVersion:
		return ConnRefusedProtocolVersion, true
	case ClientIdentifierNotValid:
		return ConnRefusedIdentifierRejected, true
	case ServerUnavailable, ServerBusy, ServerShuttingDown, UseAnotherServer, ServerMoved,
		ConnectionRateExceeded, QuotaExceeded:
		return ConnRefusedServerUnavailable, true
	case BadUserNameOrPassword, BadAuthenticationMethod:
		return ConnRefusedBadUsernameOrPassword, true
	case NotAuthorized, Banned:
		return ConnRefusedNotAuthorized, true
	}
	return ConnRefusedServerUnavailable, false
}

// ConnackReason maps a CONNACK code received in version v to its 5.0 meaning (0x04 in 3.1.1 →
// BadUserNameOrPassword), so that clients can treat every version alike.
func ConnackReason(v Version, c ReasonCode) ReasonCode {
	if v == V5 {
		return c
	}
	switch c {
	case ConnAccepted:
		return Success
	case ConnRefusedProtocolVersion:
		return UnsupportedProtocolVersion
	case ConnRefusedIdentifierRejected:
		return ClientIdentifierNotValid
	case ConnRefusedServerUnavailable:
		return ServerUnavailable
	case ConnRefusedBadUsernameOrPassword:
		return BadUserNameOrPassword
	case ConnRefusedNotAuthorized:
		return NotAuthorized
	}
	return UnspecifiedError
}
