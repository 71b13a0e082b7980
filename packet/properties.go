package packet

import "encoding/binary"

// PropID is an MQTT 5.0 property identifier (§2.2.2.2).
type PropID byte

// MQTT 5.0 property identifiers.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUserProperty         PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// propKind is the wire data type of a property's value.
type propKind byte

const (
	kindNone propKind = iota
	kindByte
	kindU16
	kindU32
	kindVarint
	kindString
	kindBinary
	kindPair
)

type propInfo struct {
	name string
	kind propKind
}

var propInfos = [...]propInfo{
	PropPayloadFormat:        {"payload format indicator", kindByte},
	PropMessageExpiry:        {"message expiry interval", kindU32},
	PropContentType:          {"content type", kindString},
	PropResponseTopic:        {"response topic", kindString},
	PropCorrelationData:      {"correlation data", kindBinary},
	PropSubscriptionID:       {"subscription identifier", kindVarint},
	PropSessionExpiry:        {"session expiry interval", kindU32},
	PropAssignedClientID:     {"assigned client identifier", kindString},
	PropServerKeepAlive:      {"server keep alive", kindU16},
	PropAuthMethod:           {"authentication method", kindString},
	PropAuthData:             {"authentication data", kindBinary},
	PropRequestProblemInfo:   {"request problem information", kindByte},
	PropWillDelay:            {"will delay interval", kindU32},
	PropRequestResponseInfo:  {"request response information", kindByte},
	PropResponseInfo:         {"response information", kindString},
	PropServerReference:      {"server reference", kindString},
	PropReasonString:         {"reason string", kindString},
	PropReceiveMaximum:       {"receive maximum", kindU16},
	PropTopicAliasMaximum:    {"topic alias maximum", kindU16},
	PropTopicAlias:           {"topic alias", kindU16},
	PropMaximumQoS:           {"maximum QoS", kindByte},
	PropRetainAvailable:      {"retain available", kindByte},
	PropUserProperty:         {"user property", kindPair},
	PropMaximumPacketSize:    {"maximum packet size", kindU32},
	PropWildcardSubAvailable: {"wildcard subscription available", kindByte},
	PropSubIDAvailable:       {"subscription identifier available", kindByte},
	PropSharedSubAvailable:   {"shared subscription available", kindByte},
}

// Known reports whether id is a property identifier of MQTT 5.0.
func (id PropID) Known() bool { return int(id) < len(propInfos) && propInfos[id].kind != kindNone }

// String returns the property's name as the specification writes it in lower case.
func (id PropID) String() string {
	if id.Known() {
		return propInfos[id].name
	}
	return "property " + ReasonCode(id).hex2()
}

// propFields holds each property's name for errors, built once so that naming a field costs
// nothing on the decoding path.
var propFields = func() (f [256]string) {
	for i := range f {
		id := PropID(i)
		f[i] = "property " + ReasonCode(id).hex2()
		if id.Known() {
			f[i] += " " + propInfos[id].name
		}
	}
	return f
}()

// field names the property for errors: "property 0x23 topic alias".
func (id PropID) field() string { return propFields[id] }

// PropSet is a set of property identifiers, one bit per identifier.
type PropSet uint64

// Has reports whether id is in the set.
func (s PropSet) Has(id PropID) bool { return id < 64 && s&(1<<id) != 0 }

// Add puts ids in the set.
func (s *PropSet) Add(ids ...PropID) {
	for _, id := range ids {
		if id < 64 {
			*s |= 1 << id
		}
	}
}

// UserProperty is one name/value pair; the same name may appear more than once.
type UserProperty struct{ Key, Value string }

// RawProperty is a property the encoder appends verbatim after the others: Value is already encoded
// for the property's type. It exists to build malformed packets (forbidden or duplicated ids).
type RawProperty struct {
	ID    PropID
	Value []byte
}

// Properties holds every MQTT 5.0 property. A scalar, string or binary property is encoded when its
// value is non-zero (non-empty) or its bit is set in Present, so that a zero value can be sent
// explicitly; the decoder sets Present for each property it reads. Subscription identifiers and
// user properties are encoded once per element. The encoder writes properties in identifier order
// followed by Raw, and writes whatever is set whether or not the packet type allows it; the
// decoder enforces the §2.2.2.2 table.
type Properties struct {
	Present PropSet

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          string
	ResponseTopic        string
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     string
	ServerKeepAlive      uint16
	AuthMethod           string
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         string
	ServerReference      string
	ReasonString         string
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte

	Raw []RawProperty
}

// propCtx says where a property block sits: a packet type, or the will properties of a CONNECT.
type propCtx byte

const ctxWill propCtx = 16

func (c propCtx) packet() Type {
	if c == ctxWill {
		return TypeConnect
	}
	return Type(c)
}

func set(ids ...PropID) PropSet {
	var s PropSet
	s.Add(ids...)
	return s
}

// allowedProps is the §2.2.2.2 table: which properties each packet (and the will) may carry.
var allowedProps = [17]PropSet{
	TypeConnect: set(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
		PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropUserProperty,
		PropMaximumPacketSize),
	TypeConnack: set(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
		PropAuthData, PropResponseInfo, PropServerReference, PropReasonString, PropReceiveMaximum,
		PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable, PropUserProperty,
		PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable),
	TypePublish: set(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUserProperty),
	TypePuback:      set(PropReasonString, PropUserProperty),
	TypePubrec:      set(PropReasonString, PropUserProperty),
	TypePubrel:      set(PropReasonString, PropUserProperty),
	TypePubcomp:     set(PropReasonString, PropUserProperty),
	TypeSubscribe:   set(PropSubscriptionID, PropUserProperty),
	TypeSuback:      set(PropReasonString, PropUserProperty),
	TypeUnsubscribe: set(PropUserProperty),
	TypeUnsuback:    set(PropReasonString, PropUserProperty),
	TypeDisconnect:  set(PropSessionExpiry, PropServerReference, PropReasonString, PropUserProperty),
	TypeAuth:        set(PropAuthMethod, PropAuthData, PropReasonString, PropUserProperty),
	ctxWill: set(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropWillDelay, PropUserProperty),
}

// AllowedProps returns the properties a packet of type t may carry (5.0 §2.2.2.2).
func AllowedProps(t Type) PropSet {
	if int(t) < len(allowedProps) && t != 0 {
		return allowedProps[t]
	}
	return 0
}

// AllowedWillProps returns the properties a will may carry (5.0 §3.1.3.2).
func AllowedWillProps() PropSet { return allowedProps[ctxWill] }

// propSection gives, for each place a property can appear, the section that defines it there and
// thereby the rule that it appears at most once. Index: the subsection number under the base.
var propSection = [17]struct {
	base string
	sub  map[PropID]int
}{
	TypeConnect: {"§3.1.2.11.", map[PropID]int{PropSessionExpiry: 2, PropReceiveMaximum: 3,
		PropMaximumPacketSize: 4, PropTopicAliasMaximum: 5, PropRequestResponseInfo: 6,
		PropRequestProblemInfo: 7, PropUserProperty: 8, PropAuthMethod: 9, PropAuthData: 10}},
	ctxWill: {"§3.1.3.2.", map[PropID]int{PropWillDelay: 2, PropPayloadFormat: 3, PropMessageExpiry: 4,
		PropContentType: 5, PropResponseTopic: 6, PropCorrelationData: 7, PropUserProperty: 8}},
	TypeConnack: {"§3.2.2.3.", map[PropID]int{PropSessionExpiry: 2, PropReceiveMaximum: 3,
		PropMaximumQoS: 4, PropRetainAvailable: 5, PropMaximumPacketSize: 6, PropAssignedClientID: 7,
		PropTopicAliasMaximum: 8, PropReasonString: 9, PropUserProperty: 10, PropWildcardSubAvailable: 11,
		PropSubIDAvailable: 12, PropSharedSubAvailable: 13, PropServerKeepAlive: 14, PropResponseInfo: 15,
		PropServerReference: 16, PropAuthMethod: 17, PropAuthData: 18}},
	TypePublish: {"§3.3.2.3.", map[PropID]int{PropPayloadFormat: 2, PropMessageExpiry: 3, PropTopicAlias: 4,
		PropResponseTopic: 5, PropCorrelationData: 6, PropUserProperty: 7, PropSubscriptionID: 8,
		PropContentType: 9}},
	TypePuback:      {"§3.4.2.2.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypePubrec:      {"§3.5.2.2.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypePubrel:      {"§3.6.2.2.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypePubcomp:     {"§3.7.2.2.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypeSubscribe:   {"§3.8.2.1.", map[PropID]int{PropSubscriptionID: 2, PropUserProperty: 3}},
	TypeSuback:      {"§3.9.2.1.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypeUnsubscribe: {"§3.10.2.1.", map[PropID]int{PropUserProperty: 2}},
	TypeUnsuback:    {"§3.11.2.1.", map[PropID]int{PropReasonString: 2, PropUserProperty: 3}},
	TypeDisconnect: {"§3.14.2.2.", map[PropID]int{PropSessionExpiry: 2, PropReasonString: 3,
		PropUserProperty: 4, PropServerReference: 5}},
	TypeAuth: {"§3.15.2.2.", map[PropID]int{PropAuthMethod: 2, PropAuthData: 3, PropReasonString: 4,
		PropUserProperty: 5}},
}

// propRule returns the section defining property id inside ctx, e.g. "§3.3.2.3.4" for a PUBLISH
// topic alias, or "§2.2.2.2" when id is not defined there.
func propRule(c propCtx, id PropID) string {
	if int(c) < len(propSection) {
		if n, ok := propSection[c].sub[id]; ok {
			return propSection[c].base + itoa(n)
		}
	}
	return "§2.2.2.2"
}

// repeatable reports whether id may appear more than once in ctx: user properties anywhere, and
// subscription identifiers in a PUBLISH (one per matching subscription, §3.3.2.3.8).
func repeatable(c propCtx, id PropID) bool {
	return id == PropUserProperty || (id == PropSubscriptionID && c == propCtx(TypePublish))
}

// has reports whether a scalar or string property is to be encoded.
func (p *Properties) has(id PropID, nonZero bool) bool { return nonZero || p.Present.Has(id) }

// size returns the length of the encoded properties, without the property length in front.
func (p *Properties) size() int {
	n := 0
	if p.has(PropPayloadFormat, p.PayloadFormat != 0) {
		n += 2
	}
	if p.has(PropMessageExpiry, p.MessageExpiry != 0) {
		n += 5
	}
	if p.has(PropContentType, p.ContentType != "") {
		n += 3 + len(p.ContentType)
	}
	if p.has(PropResponseTopic, p.ResponseTopic != "") {
		n += 3 + len(p.ResponseTopic)
	}
	if p.has(PropCorrelationData, len(p.CorrelationData) != 0) {
		n += 3 + len(p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		n += 1 + VarintSize(int(id))
	}
	if p.has(PropSessionExpiry, p.SessionExpiry != 0) {
		n += 5
	}
	if p.has(PropAssignedClientID, p.AssignedClientID != "") {
		n += 3 + len(p.AssignedClientID)
	}
	if p.has(PropServerKeepAlive, p.ServerKeepAlive != 0) {
		n += 3
	}
	if p.has(PropAuthMethod, p.AuthMethod != "") {
		n += 3 + len(p.AuthMethod)
	}
	if p.has(PropAuthData, len(p.AuthData) != 0) {
		n += 3 + len(p.AuthData)
	}
	if p.has(PropRequestProblemInfo, p.RequestProblemInfo != 0) {
		n += 2
	}
	if p.has(PropWillDelay, p.WillDelay != 0) {
		n += 5
	}
	if p.has(PropRequestResponseInfo, p.RequestResponseInfo != 0) {
		n += 2
	}
	if p.has(PropResponseInfo, p.ResponseInfo != "") {
		n += 3 + len(p.ResponseInfo)
	}
	if p.has(PropServerReference, p.ServerReference != "") {
		n += 3 + len(p.ServerReference)
	}
	if p.has(PropReasonString, p.ReasonString != "") {
		n += 3 + len(p.ReasonString)
	}
	if p.has(PropReceiveMaximum, p.ReceiveMaximum != 0) {
		n += 3
	}
	if p.has(PropTopicAliasMaximum, p.TopicAliasMaximum != 0) {
		n += 3
	}
	if p.has(PropTopicAlias, p.TopicAlias != 0) {
		n += 3
	}
	if p.has(PropMaximumQoS, p.MaximumQoS != 0) {
		n += 2
	}
	if p.has(PropRetainAvailable, p.RetainAvailable != 0) {
		n += 2
	}
	for _, u := range p.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	if p.has(PropMaximumPacketSize, p.MaximumPacketSize != 0) {
		n += 5
	}
	if p.has(PropWildcardSubAvailable, p.WildcardSubAvailable != 0) {
		n += 2
	}
	if p.has(PropSubIDAvailable, p.SubIDAvailable != 0) {
		n += 2
	}
	if p.has(PropSharedSubAvailable, p.SharedSubAvailable != 0) {
		n += 2
	}
	for _, r := range p.Raw {
		n += 1 + len(r.Value)
	}
	return n
}

// blockSize returns the length of the property block: property length plus properties.
func (p *Properties) blockSize() int {
	n := p.size()
	return VarintSize(n) + n
}

func appendU16(dst []byte, n uint16) []byte { return append(dst, byte(n>>8), byte(n)) }

func appendU32(dst []byte, n uint32) []byte {
	return append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendString(dst []byte, s string) []byte {
	dst = appendU16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

// appendBlock appends the property length and the properties. The caller has checked that every
// string fits in 65,535 bytes (see check).
func (p *Properties) appendBlock(dst []byte) []byte { return p.appendBlockN(dst, p.size()) }

// appendBlockN is appendBlock for a caller that already knows p.size().
func (p *Properties) appendBlockN(dst []byte, n int) []byte {
	dst = AppendVarint(dst, n)
	if p.has(PropPayloadFormat, p.PayloadFormat != 0) {
		dst = append(dst, byte(PropPayloadFormat), p.PayloadFormat)
	}
	if p.has(PropMessageExpiry, p.MessageExpiry != 0) {
		dst = appendU32(append(dst, byte(PropMessageExpiry)), p.MessageExpiry)
	}
	if p.has(PropContentType, p.ContentType != "") {
		dst = appendString(append(dst, byte(PropContentType)), p.ContentType)
	}
	if p.has(PropResponseTopic, p.ResponseTopic != "") {
		dst = appendString(append(dst, byte(PropResponseTopic)), p.ResponseTopic)
	}
	if p.has(PropCorrelationData, len(p.CorrelationData) != 0) {
		dst = appendBinary(append(dst, byte(PropCorrelationData)), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		dst = AppendVarint(append(dst, byte(PropSubscriptionID)), int(id))
	}
	if p.has(PropSessionExpiry, p.SessionExpiry != 0) {
		dst = appendU32(append(dst, byte(PropSessionExpiry)), p.SessionExpiry)
	}
	if p.has(PropAssignedClientID, p.AssignedClientID != "") {
		dst = appendString(append(dst, byte(PropAssignedClientID)), p.AssignedClientID)
	}
	if p.has(PropServerKeepAlive, p.ServerKeepAlive != 0) {
		dst = appendU16(append(dst, byte(PropServerKeepAlive)), p.ServerKeepAlive)
	}
	if p.has(PropAuthMethod, p.AuthMethod != "") {
		dst = appendString(append(dst, byte(PropAuthMethod)), p.AuthMethod)
	}
	if p.has(PropAuthData, len(p.AuthData) != 0) {
		dst = appendBinary(append(dst, byte(PropAuthData)), p.AuthData)
	}
	if p.has(PropRequestProblemInfo, p.RequestProblemInfo != 0) {
		dst = append(dst, byte(PropRequestProblemInfo), p.RequestProblemInfo)
	}
	if p.has(PropWillDelay, p.WillDelay != 0) {
		dst = appendU32(append(dst, byte(PropWillDelay)), p.WillDelay)
	}
	if p.has(PropRequestResponseInfo, p.RequestResponseInfo != 0) {
		dst = append(dst, byte(PropRequestResponseInfo), p.RequestResponseInfo)
	}
	if p.has(PropResponseInfo, p.ResponseInfo != "") {
		dst = appendString(append(dst, byte(PropResponseInfo)), p.ResponseInfo)
	}
	if p.has(PropServerReference, p.ServerReference != "") {
		dst = appendString(append(dst, byte(PropServerReference)), p.ServerReference)
	}
	if p.has(PropReasonString, p.ReasonString != "") {
		dst = appendString(append(dst, byte(PropReasonString)), p.ReasonString)
	}
	if p.has(PropReceiveMaximum, p.ReceiveMaximum != 0) {
		dst = appendU16(append(dst, byte(PropReceiveMaximum)), p.ReceiveMaximum)
	}
	if p.has(PropTopicAliasMaximum, p.TopicAliasMaximum != 0) {
		dst = appendU16(append(dst, byte(PropTopicAliasMaximum)), p.TopicAliasMaximum)
	}
	if p.has(PropTopicAlias, p.TopicAlias != 0) {
		dst = appendU16(append(dst, byte(PropTopicAlias)), p.TopicAlias)
	}
	if p.has(PropMaximumQoS, p.MaximumQoS != 0) {
		dst = append(dst, byte(PropMaximumQoS), p.MaximumQoS)
	}
	if p.has(PropRetainAvailable, p.RetainAvailable != 0) {
		dst = append(dst, byte(PropRetainAvailable), p.RetainAvailable)
	}
	for _, u := range p.User {
		dst = appendString(appendString(append(dst, byte(PropUserProperty)), u.Key), u.Value)
	}
	if p.has(PropMaximumPacketSize, p.MaximumPacketSize != 0) {
		dst = appendU32(append(dst, byte(PropMaximumPacketSize)), p.MaximumPacketSize)
	}
	if p.has(PropWildcardSubAvailable, p.WildcardSubAvailable != 0) {
		dst = append(dst, byte(PropWildcardSubAvailable), p.WildcardSubAvailable)
	}
	if p.has(PropSubIDAvailable, p.SubIDAvailable != 0) {
		dst = append(dst, byte(PropSubIDAvailable), p.SubIDAvailable)
	}
	if p.has(PropSharedSubAvailable, p.SharedSubAvailable != 0) {
		dst = append(dst, byte(PropSharedSubAvailable), p.SharedSubAvailable)
	}
	for _, r := range p.Raw {
		dst = append(append(dst, byte(r.ID)), r.Value...)
	}
	return dst
}

// check refuses what the wire cannot carry: strings and binary data over 65,535 bytes and
// subscription identifiers over 268,435,455.
func (p *Properties) check(t Type) error {
	for _, s := range [...]struct {
		id PropID
		n  int
	}{
		{PropContentType, len(p.ContentType)}, {PropResponseTopic, len(p.ResponseTopic)},
		{PropCorrelationData, len(p.CorrelationData)}, {PropAssignedClientID, len(p.AssignedClientID)},
		{PropAuthMethod, len(p.AuthMethod)}, {PropAuthData, len(p.AuthData)},
		{PropResponseInfo, len(p.ResponseInfo)}, {PropServerReference, len(p.ServerReference)},
		{PropReasonString, len(p.ReasonString)},
	} {
		if s.n > 65535 {
			return tooLong(t, s.id.field(), s.n)
		}
	}
	for _, u := range p.User {
		if len(u.Key) > 65535 || len(u.Value) > 65535 {
			return tooLong(t, PropUserProperty.field(), max(len(u.Key), len(u.Value)))
		}
	}
	for _, id := range p.SubscriptionIDs {
		if id > MaxRemaining {
			return &Error{Code: MalformedPacket, Rule: "§1.5.5", Packet: t, Field: PropSubscriptionID.field(),
				Offset: -1, Reason: "value " + itoa(int(id)) + " does not fit a variable byte integer"}
		}
	}
	return nil
}

// tooLong reports a string or binary field that a two-byte length cannot describe.
func tooLong(t Type, field string, n int) *Error {
	return &Error{Code: MalformedPacket, Rule: "§1.5.4", Packet: t, Field: field, Offset: -1,
		Reason: "length " + itoa(n) + " exceeds 65535 bytes"}
}

// props reads a property block for ctx into p, enforcing the §2.2.2.2 table, the at-most-once
// rules and the value ranges the specification fixes for each property.
func (d *dec) props(p *Properties, c propCtx) error {
	start := d.pos
	n, err := d.varint("property length")
	if err != nil {
		return err
	}
	if n > d.left() {
		return d.errAt(start, MalformedPacket, "§2.2.2.1", "property length",
			"property length "+itoa(n)+" runs past the remaining length")
	}
	// Read the properties from a sub-decoder bounded by the property length, so that no value can
	// run into the fields that follow.
	sub := dec{b: d.b[:d.pos+n], pos: d.pos, base: d.base, t: d.t, v: d.v}
	d.pos += n
	allowed := allowedProps[c]
	var seen PropSet
	for sub.left() > 0 {
		at := sub.pos
		idv, err := sub.varint("property identifier")
		if err != nil {
			return err
		}
		id := PropID(idv)
		if idv > 0xFF || !id.Known() {
			return sub.errAt(at, MalformedPacket, "§2.2.2.2", "property identifier",
				"unknown property identifier "+itoa(idv))
		}
		if !allowed.Has(id) {
			where := c.packet().String()
			if c == ctxWill {
				where = "will properties"
			}
			return sub.errAt(at, MalformedPacket, "§2.2.2.2", id.field(), id.String()+" is not allowed in "+where)
		}
		if seen.Has(id) && !repeatable(c, id) {
			return sub.errAt(at, ProtocolError, propRule(c, id), id.field(), "included more than once")
		}
		seen.Add(id)
		field := id.field()
		switch propInfos[id].kind {
		case kindByte:
			v, err := sub.u8(field)
			if err != nil {
				return err
			}
			if v > 1 {
				return sub.errAt(at, ProtocolError, propRule(c, id), field, "value "+itoa(int(v))+", must be 0 or 1")
			}
			switch id {
			case PropPayloadFormat:
				p.PayloadFormat = v
			case PropRequestProblemInfo:
				p.RequestProblemInfo = v
			case PropRequestResponseInfo:
				p.RequestResponseInfo = v
			case PropMaximumQoS:
				p.MaximumQoS = v
			case PropRetainAvailable:
				p.RetainAvailable = v
			case PropWildcardSubAvailable:
				p.WildcardSubAvailable = v
			case PropSubIDAvailable:
				p.SubIDAvailable = v
			case PropSharedSubAvailable:
				p.SharedSubAvailable = v
			}
		case kindU16:
			v, err := sub.u16(field)
			if err != nil {
				return err
			}
			switch id {
			case PropServerKeepAlive:
				p.ServerKeepAlive = v
			case PropReceiveMaximum:
				if v == 0 {
					return sub.errAt(at, ProtocolError, propRule(c, id), field, "receive maximum 0")
				}
				p.ReceiveMaximum = v
			case PropTopicAliasMaximum:
				p.TopicAliasMaximum = v
			case PropTopicAlias:
				if v == 0 {
					// A sender MUST NOT send a Topic Alias of 0 [MQTT-3.3.2-8].
					return sub.errAt(at, ProtocolError, "MQTT-3.3.2-8", field, "topic alias 0")
				}
				p.TopicAlias = v
			}
		case kindU32:
			v, err := sub.u32(field)
			if err != nil {
				return err
			}
			switch id {
			case PropMessageExpiry:
				p.MessageExpiry = v
			case PropSessionExpiry:
				p.SessionExpiry = v
			case PropWillDelay:
				p.WillDelay = v
			case PropMaximumPacketSize:
				if v == 0 {
					return sub.errAt(at, ProtocolError, propRule(c, id), field, "maximum packet size 0")
				}
				p.MaximumPacketSize = v
			}
		case kindVarint:
			v, err := sub.varint(field)
			if err != nil {
				return err
			}
			if v == 0 {
				return sub.errAt(at, ProtocolError, propRule(c, id), field, "subscription identifier 0")
			}
			if p.SubscriptionIDs == nil {
				p.SubscriptionIDs = make([]uint32, 0, 1)
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
		case kindString:
			s, err := sub.str(field)
			if err != nil {
				return err
			}
			switch id {
			case PropContentType:
				p.ContentType = s
			case PropResponseTopic:
				p.ResponseTopic = s
			case PropAssignedClientID:
				p.AssignedClientID = s
			case PropAuthMethod:
				p.AuthMethod = s
			case PropResponseInfo:
				p.ResponseInfo = s
			case PropServerReference:
				p.ServerReference = s
			case PropReasonString:
				p.ReasonString = s
			}
		case kindBinary:
			b, err := sub.bin(field)
			if err != nil {
				return err
			}
			if id == PropCorrelationData {
				p.CorrelationData = b
			} else {
				p.AuthData = b
			}
		case kindPair:
			k, err := sub.str(field + " name")
			if err != nil {
				return err
			}
			v, err := sub.str(field + " value")
			if err != nil {
				return err
			}
			p.User = append(p.User, UserProperty{Key: k, Value: v})
		}
	}
	p.Present |= seen
	return nil
}

// u16At reads a big-endian uint16; callers have checked the length.
func u16At(b []byte, i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
