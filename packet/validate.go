package packet

import (
	"unicode/utf8"
)

// Validate checks the content rules of a decoded (or built) packet for version v, as sent by from:
// UTF-8 strings, topic names and filters, packet identifiers, QoS and option values, reason codes
// allowed for the packet, properties whose meaning depends on the direction. It returns the first
// violation as an *Error (nil when the packet is valid). Structure (lengths, flags, which
// properties a packet may carry and how often) is checked by decoding; Validate repeats the
// structural checks a struct can still break (QoS 3, reserved bits) so that it also serves senders.
// Rules that need connection state (topic alias maximum, receive maximum, matching packet ids)
// belong to the caller.
func Validate(p Packet, v Version, from Side) error {
	if e := validate(p, v, from); e != nil {
		if e.Packet == 0 {
			e.Packet = p.Type()
		}
		return e
	}
	return nil
}

func validate(p Packet, v Version, from Side) *Error {
	if e := checkDirection(p.Type(), v, from); e != nil {
		return e
	}
	switch p := p.(type) {
	case *Connect:
		return validateConnect(p, v)
	case *Connack:
		return validateConnack(p, v)
	case *Publish:
		return validatePublish(p, v, from)
	case *Puback:
		return validateAck(TypePuback, p.PacketID, p.Code, &p.Props, v)
	case *Pubrec:
		return validateAck(TypePubrec, p.PacketID, p.Code, &p.Props, v)
	case *Pubrel:
		return validateAck(TypePubrel, p.PacketID, p.Code, &p.Props, v)
	case *Pubcomp:
		return validateAck(TypePubcomp, p.PacketID, p.Code, &p.Props, v)
	case *Subscribe:
		return validateSubscribe(p, v, from)
	case *Suback:
		return validateSuback(p, v)
	case *Unsubscribe:
		return validateUnsubscribe(p, v, from)
	case *Unsuback:
		return validateUnsuback(p, v)
	case *Disconnect:
		return validateDisconnect(p, v, from)
	case *Auth:
		return validateAuth(p, v)
	}
	return nil
}

// at labels an error found in a field of packet t.
func at(e *Error, t Type, field string) *Error {
	if e != nil {
		e.Packet = t
		e.Field = field
	}
	return e
}

func verr(t Type, code ReasonCode, rule, field, reason string) *Error {
	return &Error{Code: code, Rule: rule, Packet: t, Field: field, Offset: -1, Reason: reason}
}

// checkDirection refuses a packet sent by the side that never sends it (3.1.1 §2.2.1 Table 2.1,
// 5.0 §2.1.2 Table 2-1).
func checkDirection(t Type, v Version, from Side) *Error {
	var ok bool
	switch t {
	case TypeConnect, TypeSubscribe, TypeUnsubscribe, TypePingreq:
		ok = from == Client
	case TypeConnack, TypeSuback, TypeUnsuback, TypePingresp:
		ok = from == Server
	case TypeDisconnect:
		ok = from == Client || v == V5
	case TypeAuth:
		if v != V5 {
			return verr(t, MalformedPacket, "§2.2.1", "packet type", "AUTH does not exist in MQTT "+v.String())
		}
		ok = true
	default:
		ok = true
	}
	if !ok {
		return verr(t, ProtocolError, pick(v, "§2.2.1", "§2.1.2"), "packet type",
			t.String()+" is not sent by a "+from.String())
	}
	return nil
}

// str checks an MQTT string field.
func str(t Type, field string, v Version, s string) *Error { return at(utf8Error(v, s), t, field) }

// checkPacketID refuses packet identifier 0 where an identifier is required: [MQTT-2.3.1-1] in
// 3.1.1; in 5.0 [MQTT-2.2.1-3] binds clients and [MQTT-2.2.1-4] servers for new packets.
func checkPacketID(t Type, v Version, from Side, id uint16) *Error {
	if id != 0 {
		return nil
	}
	rule := "MQTT-2.3.1-1"
	if v == V5 {
		switch {
		case t != TypePublish && t != TypeSubscribe && t != TypeUnsubscribe:
			rule = "§2.2.1"
		case from == Server:
			rule = "MQTT-2.2.1-4"
		default:
			rule = "MQTT-2.2.1-3"
		}
	}
	return verr(t, ProtocolError, rule, "packet identifier", "packet identifier 0")
}

// validateProps checks the content of 5.0 properties: every string well-formed, user property
// pairs both well-formed ([MQTT-1.5.7-1]) and the scalar ranges decoding also enforces.
func validateProps(t Type, c propCtx, v Version, p *Properties) *Error {
	for _, s := range [...]struct {
		id PropID
		s  string
	}{
		{PropContentType, p.ContentType}, {PropResponseTopic, p.ResponseTopic},
		{PropAssignedClientID, p.AssignedClientID}, {PropAuthMethod, p.AuthMethod},
		{PropResponseInfo, p.ResponseInfo}, {PropServerReference, p.ServerReference},
		{PropReasonString, p.ReasonString},
	} {
		if e := str(t, s.id.field(), v, s.s); e != nil {
			return e
		}
	}
	for _, u := range p.User {
		for _, s := range [2]string{u.Key, u.Value} {
			if e := utf8Error(v, s); e != nil {
				e.Rule = "MQTT-1.5.7-1"
				return at(e, t, PropUserProperty.field())
			}
		}
	}
	for _, b := range [...]struct {
		id PropID
		v  byte
	}{
		{PropPayloadFormat, p.PayloadFormat}, {PropRequestProblemInfo, p.RequestProblemInfo},
		{PropRequestResponseInfo, p.RequestResponseInfo}, {PropMaximumQoS, p.MaximumQoS},
		{PropRetainAvailable, p.RetainAvailable}, {PropWildcardSubAvailable, p.WildcardSubAvailable},
		{PropSubIDAvailable, p.SubIDAvailable}, {PropSharedSubAvailable, p.SharedSubAvailable},
	} {
		if b.v > 1 {
			return verr(t, ProtocolError, propRule(c, b.id), b.id.field(), "value "+itoa(int(b.v))+", must be 0 or 1")
		}
	}
	if (p.Present.Has(PropReceiveMaximum) || p.ReceiveMaximum != 0) && p.ReceiveMaximum == 0 {
		return verr(t, ProtocolError, propRule(c, PropReceiveMaximum), PropReceiveMaximum.field(), "receive maximum 0")
	}
	if (p.Present.Has(PropMaximumPacketSize) || p.MaximumPacketSize != 0) && p.MaximumPacketSize == 0 {
		return verr(t, ProtocolError, propRule(c, PropMaximumPacketSize), PropMaximumPacketSize.field(), "maximum packet size 0")
	}
	if p.Present.Has(PropTopicAlias) && p.TopicAlias == 0 {
		return verr(t, ProtocolError, "MQTT-3.3.2-8", PropTopicAlias.field(), "topic alias 0")
	}
	for _, id := range p.SubscriptionIDs {
		if id == 0 || id > MaxRemaining {
			return verr(t, ProtocolError, propRule(c, PropSubscriptionID), PropSubscriptionID.field(),
				"subscription identifier "+itoa(int(id))+" outside 1..268435455")
		}
	}
	if len(p.AuthData) > 0 && p.AuthMethod == "" && !p.Present.Has(PropAuthMethod) {
		// Authentication data without a method is a protocol error (§3.1.2.11.10, §3.2.2.3.18).
		return verr(t, ProtocolError, propRule(c, PropAuthData), PropAuthData.field(),
			"authentication data without an authentication method")
	}
	return nil
}

func validateConnect(p *Connect, v Version) *Error {
	const t = TypeConnect
	if p.ProtocolName != "" && p.ProtocolName != v.ProtocolName() {
		return verr(t, UnsupportedProtocolVersion, "MQTT-3.1.2-1", "protocol name",
			"protocol name "+quote(p.ProtocolName)+" for MQTT "+v.String())
	}
	if p.Version != 0 && p.Version != v {
		return verr(t, UnsupportedProtocolVersion, "MQTT-3.1.2-2", "protocol level",
			"protocol level "+itoa(int(p.Version))+" for MQTT "+v.String())
	}
	if p.ReservedFlag {
		return verr(t, MalformedPacket, "MQTT-3.1.2-3", "connect flags", "reserved flag set")
	}
	if e := str(t, "client identifier", v, p.ClientID); e != nil {
		return e
	}
	switch {
	case v == V31 && (len(p.ClientID) < 1 || len(p.ClientID) > 23):
		// MQTT 3.1 limits the client identifier to 1..23 characters (3.1 §3.1 payload).
		return verr(t, ClientIdentifierNotValid, "§3.1.3.1", "client identifier",
			"MQTT 3.1 client identifier of "+itoa(len(p.ClientID))+" bytes, must be 1 to 23")
	case v == V311 && p.ClientID == "" && !p.CleanStart:
		// A zero-byte client identifier requires a clean session [MQTT-3.1.3-7].
		return verr(t, ClientIdentifierNotValid, "MQTT-3.1.3-7", "client identifier",
			"empty client identifier without clean session")
	}
	if w := p.Will; w != nil {
		if w.QoS > 2 {
			return verr(t, MalformedPacket, pick(v, "MQTT-3.1.2-14", "MQTT-3.1.2-12"), "will QoS", "will QoS 3")
		}
		// The will topic is a topic name: no wildcards ([MQTT-4.7.1-1] in 3.1.1, [MQTT-4.7.0-1] in 5.0).
		if e := topicNameError(v, w.Topic, pick(v, "MQTT-4.7.1-1", "MQTT-4.7.0-1")); e != nil {
			return at(e, t, "will topic")
		}
		if v == V5 {
			if e := validateProps(t, ctxWill, v, &w.Props); e != nil {
				return e
			}
			if e := payloadFormat(t, &w.Props, w.Payload); e != nil {
				return e
			}
			if w.Props.ResponseTopic != "" {
				if e := topicNameError(v, w.Props.ResponseTopic, "MQTT-3.3.2-14"); e != nil {
					return at(e, t, PropResponseTopic.field())
				}
			}
		}
	}
	if p.hasUsername() {
		if e := str(t, "user name", v, p.Username); e != nil {
			return e
		}
	} else if p.hasPassword() && v != V5 {
		// 3.1 and 3.1.1 allow a password only with a user name [MQTT-3.1.2-22]; 5.0 lifted this.
		return verr(t, ProtocolError, "MQTT-3.1.2-22", "connect flags", "password flag without user name flag")
	}
	if v == V5 {
		return validateProps(t, propCtx(t), v, &p.Props)
	}
	return nil
}

// connackCodes5 are the reason codes a 5.0 CONNACK may carry ([MQTT-3.2.2-8]).
var connackCodes5 = codeSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
	0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)

type reasonSet [4]uint64

func codeSet(codes ...ReasonCode) reasonSet {
	var s reasonSet
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *reasonSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func validateConnack(p *Connack, v Version) *Error {
	const t = TypeConnack
	if p.ReservedFlags&^1 != 0 && v != V31 {
		return verr(t, MalformedPacket, pick(v, "§3.2.2.1", "MQTT-3.2.2-1"), "acknowledge flags", "reserved bits set")
	}
	if v == V5 {
		if !connackCodes5.has(p.Code) {
			return verr(t, ProtocolError, "MQTT-3.2.2-8", "reason code", "reason code "+p.Code.hex2()+" is not a CONNACK reason code")
		}
	} else if p.Code > ConnRefusedNotAuthorized {
		return verr(t, ProtocolError, "§3.2.2.3", "return code", "return code "+p.Code.hex2()+" is reserved")
	}
	if p.SessionPresent && p.Code != 0 {
		return verr(t, ProtocolError, pick(v, "MQTT-3.2.2-4", "MQTT-3.2.2-6"), "session present",
			"session present with a refusal")
	}
	if v == V5 {
		return validateProps(t, propCtx(t), v, &p.Props)
	}
	return nil
}

func validatePublish(p *Publish, v Version, from Side) *Error {
	const t = TypePublish
	if p.QoS > 2 {
		return verr(t, MalformedPacket, "MQTT-3.3.1-4", "fixed header flags", "QoS 3")
	}
	if p.Dup && p.QoS == 0 {
		return verr(t, ProtocolError, "MQTT-3.3.1-2", "fixed header flags", "DUP set on a QoS 0 message")
	}
	if p.Topic == "" && v == V5 && p.Props.TopicAlias != 0 {
		// An empty topic name is how a 5.0 sender uses an established topic alias.
	} else if p.Topic == "" && v == V5 {
		return verr(t, ProtocolError, "§3.3.2.3.4", "topic name", "empty topic name without a topic alias")
	} else if e := topicNameError(v, p.Topic, "MQTT-3.3.2-2"); e != nil {
		return at(e, t, "topic name")
	}
	if p.QoS > 0 {
		if e := checkPacketID(t, v, from, p.PacketID); e != nil {
			return e
		}
	}
	if v != V5 {
		return nil
	}
	if e := validateProps(t, propCtx(t), v, &p.Props); e != nil {
		return e
	}
	if from == Client && len(p.Props.SubscriptionIDs) > 0 {
		// Subscription identifiers travel only from server to client [MQTT-3.3.4-6].
		return verr(t, ProtocolError, "MQTT-3.3.4-6", PropSubscriptionID.field(), "subscription identifier sent by a client")
	}
	if p.Props.ResponseTopic != "" || p.Props.Present.Has(PropResponseTopic) {
		if e := topicNameError(v, p.Props.ResponseTopic, "MQTT-3.3.2-14"); e != nil {
			return at(e, t, PropResponseTopic.field())
		}
	}
	return payloadFormat(t, &p.Props, p.Payload)
}

// payloadFormat checks a payload declared as UTF-8 (payload format indicator 1); the receiver may
// refuse it with PayloadFormatInvalid (§3.3.2.3.2).
func payloadFormat(t Type, p *Properties, payload []byte) *Error {
	if p.PayloadFormat == 1 && !utf8.Valid(payload) {
		return verr(t, PayloadFormatInvalid, "§3.3.2.3.2", "payload", "payload format indicator 1 but payload is not UTF-8")
	}
	return nil
}

// ackCodes5 lists the reason codes each 5.0 acknowledgement may carry, with the statement that
// binds its sender.
var ackCodes5 = map[Type]struct {
	rule  string
	codes reasonSet
}{
	TypePuback:   {"MQTT-3.4.2-1", codeSet(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)},
	TypePubrec:   {"MQTT-3.5.2-1", codeSet(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)},
	TypePubrel:   {"MQTT-3.6.2-1", codeSet(0x00, 0x92)},
	TypePubcomp:  {"MQTT-3.7.2-1", codeSet(0x00, 0x92)},
	TypeSuback:   {"MQTT-3.9.3-2", codeSet(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)},
	TypeUnsuback: {"MQTT-3.11.3-2", codeSet(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)},
	TypeAuth:     {"MQTT-3.15.2-1", codeSet(0x00, 0x18, 0x19)},
}

func checkCode(t Type, c ReasonCode) *Error {
	a := ackCodes5[t]
	if a.codes.has(c) {
		return nil
	}
	return verr(t, ProtocolError, a.rule, "reason code", "reason code "+c.hex2()+" is not a "+t.String()+" reason code")
}

func validateAck(t Type, id uint16, code ReasonCode, props *Properties, v Version) *Error {
	if e := checkPacketID(t, v, Client, id); e != nil {
		return e
	}
	if v != V5 {
		return nil
	}
	if e := checkCode(t, code); e != nil {
		return e
	}
	return validateProps(t, propCtx(t), v, props)
}

func validateSubscribe(p *Subscribe, v Version, from Side) *Error {
	const t = TypeSubscribe
	if e := checkPacketID(t, v, from, p.PacketID); e != nil {
		return e
	}
	if len(p.Subscriptions) == 0 {
		return verr(t, ProtocolError, pick(v, "MQTT-3.8.3-3", "MQTT-3.8.3-2"), "payload", "no topic filter")
	}
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		field := "subscription " + itoa(i+1)
		if e := topicFilterError(v, s.Filter); e != nil {
			return at(e, t, field+" topic filter")
		}
		if v != V5 {
			if s.QoS > 2 || s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0 || s.ReservedBits != 0 {
				return verr(t, MalformedPacket, "MQTT-3-8.3-4", field+" requested QoS",
					"options byte "+ReasonCode(s.Options()).hex2()+": reserved bits or QoS 3")
			}
			continue
		}
		switch {
		case s.ReservedBits != 0:
			return verr(t, MalformedPacket, "MQTT-3.8.3-5", field+" options", "reserved bits set")
		case s.QoS > 2:
			return verr(t, ProtocolError, "§3.8.3.1", field+" options", "maximum QoS 3")
		case s.RetainHandling > 2:
			return verr(t, ProtocolError, "§3.8.3.1", field+" options", "retain handling "+itoa(int(s.RetainHandling)))
		case s.NoLocal && IsSharedFilter(s.Filter):
			return verr(t, ProtocolError, "MQTT-3.8.3-4", field+" options", "no local on a shared subscription")
		}
	}
	if v != V5 {
		return nil
	}
	if len(p.Props.SubscriptionIDs) > 1 {
		return verr(t, ProtocolError, "§3.8.2.1.2", PropSubscriptionID.field(), "included more than once")
	}
	return validateProps(t, propCtx(t), v, &p.Props)
}

func validateSuback(p *Suback, v Version) *Error {
	const t = TypeSuback
	if e := checkPacketID(t, v, Server, p.PacketID); e != nil {
		return e
	}
	if v != V5 {
		for _, c := range p.Codes {
			if c > 2 && c != SubackFailure {
				return verr(t, ProtocolError, "MQTT-3.9.3-2", "return code", "return code "+c.hex2()+" is reserved")
			}
		}
		return nil
	}
	for _, c := range p.Codes {
		if e := checkCode(t, c); e != nil {
			return e
		}
	}
	return validateProps(t, propCtx(t), v, &p.Props)
}

func validateUnsubscribe(p *Unsubscribe, v Version, from Side) *Error {
	const t = TypeUnsubscribe
	if e := checkPacketID(t, v, from, p.PacketID); e != nil {
		return e
	}
	if len(p.Filters) == 0 {
		return verr(t, ProtocolError, "MQTT-3.10.3-2", "payload", "no topic filter")
	}
	for i, f := range p.Filters {
		if e := topicFilterError(v, f); e != nil {
			return at(e, t, "topic filter "+itoa(i+1))
		}
	}
	if v == V5 {
		return validateProps(t, propCtx(t), v, &p.Props)
	}
	return nil
}

func validateUnsuback(p *Unsuback, v Version) *Error {
	const t = TypeUnsuback
	if e := checkPacketID(t, v, Server, p.PacketID); e != nil {
		return e
	}
	if v != V5 {
		return nil
	}
	for _, c := range p.Codes {
		if e := checkCode(t, c); e != nil {
			return e
		}
	}
	return validateProps(t, propCtx(t), v, &p.Props)
}

// disconnectCodes5 are the DISCONNECT reason codes and who may send each ([MQTT-3.14.2-1]).
var (
	disconnectEither = codeSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99)
	disconnectClient = codeSet(0x04)
	disconnectServer = codeSet(0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)
)

func validateDisconnect(p *Disconnect, v Version, from Side) *Error {
	const t = TypeDisconnect
	if v != V5 {
		return nil
	}
	ok := disconnectEither.has(p.Code) ||
		(from == Client && disconnectClient.has(p.Code)) || (from == Server && disconnectServer.has(p.Code))
	if !ok {
		return verr(t, ProtocolError, "MQTT-3.14.2-1", "reason code",
			"reason code "+p.Code.hex2()+" is not a DISCONNECT reason code a "+from.String()+" sends")
	}
	if from == Server && (p.Props.SessionExpiry != 0 || p.Props.Present.Has(PropSessionExpiry)) {
		// A server never sends a session expiry interval in DISCONNECT [MQTT-3.14.2-2].
		return verr(t, ProtocolError, "MQTT-3.14.2-2", PropSessionExpiry.field(), "session expiry interval sent by the server")
	}
	return validateProps(t, propCtx(t), v, &p.Props)
}

func validateAuth(p *Auth, v Version) *Error {
	const t = TypeAuth
	if e := checkCode(t, p.Code); e != nil {
		return e
	}
	if p.Code != Success || p.Props.size() > 0 {
		if p.Props.AuthMethod == "" && !p.Props.Present.Has(PropAuthMethod) {
			return verr(t, ProtocolError, "§3.15.2.2.2", PropAuthMethod.field(), "authentication method missing")
		}
	}
	return validateProps(t, propCtx(t), v, &p.Props)
}
