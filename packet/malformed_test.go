package packet_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/packet/packettest"
)

// hx parses an annotated hex string (as the golden vectors are written).
func hx(s string) []byte {
	b, _, err := packettest.ParseHex(s)
	if err != nil {
		panic(err)
	}
	return b
}

func raw(id packet.PropID, value ...byte) packet.RawProperty {
	return packet.RawProperty{ID: id, Value: value}
}

// check decodes b for v and, when it decodes, validates it as sent by from. It returns the first
// error and the stage that found it.
func check(b []byte, v packet.Version, from packet.Side, maxSize int) (string, error) {
	p, _, err := packet.Decode(b, v, maxSize)
	if err != nil {
		return "decode", err
	}
	return "validate", packet.Validate(p, v, from)
}

type badCase struct {
	name  string
	v     packet.Version
	from  packet.Side
	b     []byte
	code  packet.ReasonCode
	rule  string
	stage string // "decode" or "validate": documents where the rule is enforced
	max   int
}

var (
	v311 = packet.V311
	v5   = packet.V5
	cli  = packet.Client
	srv  = packet.Server
)

func pub(topic string) *packet.Publish { return &packet.Publish{Topic: topic, Payload: []byte("p")} }

func sub(v packet.Version, subs ...packet.Subscription) []byte {
	return packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: subs}, v)
}

func connect(c packet.Connect, v packet.Version, muts ...packet.Mutation) []byte {
	if c.ClientID == "" {
		c.ClientID = "c1"
	}
	c.CleanStart = true
	return packet.Build(&c, v, muts...)
}

var badCases = []badCase{
	// Fixed header and lengths.
	{name: "remaining length of five bytes 3.1.1", v: v311, b: packet.Build(&packet.Pingreq{}, v311, packet.WithLongRemainingLength(5)),
		code: packet.MalformedPacket, rule: "§2.2.3", stage: "decode"},
	{name: "remaining length of five bytes 5.0", v: v5, b: hx("30 ff ff ff ff 01"),
		code: packet.MalformedPacket, rule: "§1.5.5", stage: "decode"},
	{name: "remaining length not in shortest form 5.0", v: v5, b: packet.Build(&packet.Pingreq{}, v5, packet.WithLongRemainingLength(2)),
		code: packet.MalformedPacket, rule: "MQTT-1.5.5-1", stage: "decode"},
	{name: "subscription identifier not in shortest form", v: v5, from: srv,
		b:    packet.Build(&packet.Publish{Topic: "t", Props: packet.Properties{Raw: []packet.RawProperty{raw(packet.PropSubscriptionID, 0x85, 0x00)}}}, v5),
		code: packet.MalformedPacket, rule: "MQTT-1.5.5-1", stage: "decode"},
	{name: "packet type 0", v: v311, b: hx("00 00"), code: packet.MalformedPacket, rule: "§2.2.1", stage: "decode"},
	{name: "packet type 0 in 5.0", v: v5, b: hx("00 00"), code: packet.MalformedPacket, rule: "§2.1.2", stage: "decode"},
	{name: "AUTH in 3.1.1", v: v311, b: hx("f0 00"), code: packet.MalformedPacket, rule: "§2.2.1", stage: "decode"},
	{name: "AUTH before the version is known", v: 0, b: hx("f0 00"), code: packet.MalformedPacket, rule: "§2.2.1", stage: "decode"},
	{name: "truncated: PUBACK body shorter than a packet identifier", v: v311, b: packet.Build(&packet.Puback{PacketID: 1}, v311, packet.Truncate(1)),
		code: packet.MalformedPacket, rule: "§2.2.3", stage: "decode"},
	{name: "truncated: CONNECT client identifier cut short", v: v311, b: connect(packet.Connect{ClientID: "gate-01"}, v311, packet.Truncate(3)),
		code: packet.MalformedPacket, rule: "§1.5.3", stage: "decode"},
	{name: "string length past the remaining length 5.0", v: v5, b: packet.Build(pub("abc"), v5, packet.SetBody(1, 40)),
		code: packet.MalformedPacket, rule: "§1.5.4", stage: "decode"},
	{name: "string one byte past the remaining length", v: v311, b: packet.Build(pub("abc"), v311, packet.SetBody(1, 5)),
		code: packet.MalformedPacket, rule: "§1.5.3", stage: "decode"},
	{name: "trailing bytes after PUBACK 3.1.1", v: v311, b: packet.Build(&packet.Puback{PacketID: 1}, v311, packet.AppendBytes(0)),
		code: packet.MalformedPacket, rule: "§2.2.3", stage: "decode"},
	{name: "trailing bytes after PINGREQ", v: v5, b: packet.Build(&packet.Pingreq{}, v5, packet.AppendBytes(1, 2)),
		code: packet.MalformedPacket, rule: "§2.1.4", stage: "decode"},
	{name: "trailing bytes after CONNECT payload", v: v5, b: connect(packet.Connect{}, v5, packet.AppendBytes(0)),
		code: packet.MalformedPacket, rule: "§2.1.4", stage: "decode"},
	{name: "trailing bytes after DISCONNECT properties", v: v5,
		b:    packet.Build(&packet.Disconnect{Code: packet.UnspecifiedError, Props: packet.Properties{ReasonString: "x"}}, v5, packet.AppendBytes(9)),
		code: packet.MalformedPacket, rule: "§2.1.4", stage: "decode"},
	{name: "packet larger than the maximum packet size", v: v5, b: packet.Build(&packet.Publish{Topic: "t", Payload: make([]byte, 100)}, v5),
		max: 64, code: packet.PacketTooLarge, rule: "§3.1.2.11.4", stage: "decode"},

	// Fixed header flags that have one statement of their own.
	{name: "PUBREL flags 0000", v: v311, b: packet.Build(&packet.Pubrel{PacketID: 1}, v311, packet.WithFlags(0)),
		code: packet.MalformedPacket, rule: "MQTT-3.6.1-1", stage: "decode"},
	{name: "UNSUBSCRIBE flags 0011", v: v311, b: packet.Build(&packet.Unsubscribe{PacketID: 1, Filters: []string{"a"}}, v311, packet.WithFlags(3)),
		code: packet.MalformedPacket, rule: "MQTT-3.10.1-1", stage: "decode"},
	{name: "DISCONNECT flags 0001", v: v311, b: hx("e1 00"), code: packet.MalformedPacket, rule: "MQTT-3.14.1-1", stage: "decode"},
	{name: "AUTH flags 1000", v: v5, b: hx("f8 00"), code: packet.MalformedPacket, rule: "MQTT-3.15.1-1", stage: "decode"},

	// PUBLISH.
	{name: "PUBLISH QoS 3 3.1.1", v: v311, b: packet.Build(&packet.Publish{QoS: 3, Topic: "a", PacketID: 1}, v311),
		code: packet.MalformedPacket, rule: "MQTT-3.3.1-4", stage: "decode"},
	{name: "PUBLISH QoS 3 5.0", v: v5, b: packet.Build(&packet.Publish{QoS: 3, Topic: "a", PacketID: 1}, v5),
		code: packet.MalformedPacket, rule: "MQTT-3.3.1-4", stage: "decode"},
	{name: "PUBLISH DUP on QoS 0", v: v311, b: packet.Build(&packet.Publish{Dup: true, Topic: "a"}, v311),
		code: packet.ProtocolError, rule: "MQTT-3.3.1-2", stage: "validate"},
	{name: "PUBLISH wildcard '+' in topic 3.1.1", v: v311, b: packet.Build(pub("acs/+/state"), v311),
		code: packet.TopicNameInvalid, rule: "MQTT-3.3.2-2", stage: "validate"},
	{name: "PUBLISH wildcard '#' in topic 5.0", v: v5, b: packet.Build(pub("acs/#"), v5),
		code: packet.TopicNameInvalid, rule: "MQTT-3.3.2-2", stage: "validate"},
	{name: "PUBLISH empty topic 3.1.1", v: v311, b: packet.Build(pub(""), v311),
		code: packet.TopicNameInvalid, rule: "MQTT-4.7.3-1", stage: "validate"},
	{name: "PUBLISH empty topic without topic alias 5.0", v: v5, b: packet.Build(pub(""), v5),
		code: packet.ProtocolError, rule: "§3.3.2.3.4", stage: "validate"},
	{name: "PUBLISH ill-formed UTF-8 topic 3.1.1", v: v311, b: packet.Build(pub("a\xc3\x28"), v311),
		code: packet.MalformedPacket, rule: "MQTT-1.5.3-1", stage: "validate"},
	{name: "PUBLISH ill-formed UTF-8 topic 5.0", v: v5, b: packet.Build(pub("a\xc3\x28"), v5),
		code: packet.MalformedPacket, rule: "MQTT-1.5.4-1", stage: "validate"},
	{name: "PUBLISH UTF-16 surrogate in topic", v: v311, b: packet.Build(pub("a\xed\xa0\x80"), v311),
		code: packet.MalformedPacket, rule: "MQTT-1.5.3-1", stage: "validate"},
	{name: "PUBLISH U+0000 in topic 3.1.1", v: v311, b: packet.Build(pub("a\x00b"), v311),
		code: packet.MalformedPacket, rule: "MQTT-1.5.3-2", stage: "validate"},
	{name: "PUBLISH U+0000 in topic 5.0", v: v5, b: packet.Build(pub("a\x00b"), v5),
		code: packet.MalformedPacket, rule: "MQTT-1.5.4-2", stage: "validate"},
	{name: "PUBLISH packet id 0 from a 3.1.1 client", v: v311, b: packet.Build(&packet.Publish{QoS: 1, Topic: "a"}, v311),
		code: packet.ProtocolError, rule: "MQTT-2.3.1-1", stage: "validate"},
	{name: "PUBLISH packet id 0 from a 5.0 client", v: v5, b: packet.Build(&packet.Publish{QoS: 2, Topic: "a"}, v5),
		code: packet.ProtocolError, rule: "MQTT-2.2.1-3", stage: "validate"},
	{name: "PUBLISH packet id 0 from a 5.0 server", v: v5, from: srv, b: packet.Build(&packet.Publish{QoS: 1, Topic: "a"}, v5),
		code: packet.ProtocolError, rule: "MQTT-2.2.1-4", stage: "validate"},
	{name: "PUBLISH topic alias 0", v: v5, b: packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{Present: present(packet.PropTopicAlias)}}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.3.2-8", stage: "decode"},
	{name: "PUBLISH message expiry twice", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{MessageExpiry: 1, Raw: []packet.RawProperty{raw(packet.PropMessageExpiry, 0, 0, 0, 2)}}}, v5),
		code: packet.ProtocolError, rule: "§3.3.2.3.3", stage: "decode"},
	{name: "PUBLISH property not allowed (session expiry)", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{SessionExpiry: 10}}, v5),
		code: packet.MalformedPacket, rule: "§2.2.2.2", stage: "decode"},
	{name: "PUBLISH unknown property identifier", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{Raw: []packet.RawProperty{raw(0x05, 0)}}}, v5),
		code: packet.MalformedPacket, rule: "§2.2.2.2", stage: "decode"},
	{name: "PUBLISH payload format indicator 2", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{PayloadFormat: 2}}, v5),
		code: packet.ProtocolError, rule: "§3.3.2.3.2", stage: "decode"},
	{name: "PUBLISH payload not UTF-8 though declared so", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{PayloadFormat: 1}, Payload: []byte{0xFF}}, v5),
		code: packet.PayloadFormatInvalid, rule: "§3.3.2.3.2", stage: "validate"},
	{name: "PUBLISH subscription identifier from a client", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{SubscriptionIDs: []uint32{4}}}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.3.4-6", stage: "validate"},
	{name: "PUBLISH response topic with a wildcard", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{ResponseTopic: "r/+"}}, v5),
		code: packet.TopicNameInvalid, rule: "MQTT-3.3.2-14", stage: "validate"},
	{name: "PUBLISH user property with U+0000", v: v5,
		b:    packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{User: []packet.UserProperty{{Key: "k", Value: "\x00"}}}}, v5),
		code: packet.MalformedPacket, rule: "MQTT-1.5.7-1", stage: "validate"},
	{name: "PUBLISH property length past the remaining length", v: v5, b: packet.Build(pub("a"), v5, packet.SetBody(3, 0x7F)),
		code: packet.MalformedPacket, rule: "§2.2.2.1", stage: "decode"},

	// Acknowledgements.
	{name: "PUBACK property not allowed (topic alias)", v: v5,
		b:    packet.Build(&packet.Puback{PacketID: 1, Props: packet.Properties{TopicAlias: 1}}, v5),
		code: packet.MalformedPacket, rule: "§2.2.2.2", stage: "decode"},
	{name: "PUBACK reason code of PUBREL", v: v5, b: packet.Build(&packet.Puback{PacketID: 1, Code: packet.PacketIdentifierNotFound}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.4.2-1", stage: "validate"},
	{name: "PUBREC reason string twice", v: v5,
		b:    packet.Build(&packet.Pubrec{PacketID: 1, Code: 0x80, Props: packet.Properties{ReasonString: "a", Raw: []packet.RawProperty{raw(packet.PropReasonString, 0, 1, 'b')}}}, v5),
		code: packet.ProtocolError, rule: "§3.5.2.2.2", stage: "decode"},
	{name: "PUBREL reason code of PUBACK", v: v5, b: packet.Build(&packet.Pubrel{PacketID: 1, Code: packet.NoMatchingSubscribers}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.6.2-1", stage: "validate"},
	{name: "PUBCOMP packet id 0", v: v311, b: packet.Build(&packet.Pubcomp{}, v311),
		code: packet.ProtocolError, rule: "MQTT-2.3.1-1", stage: "validate"},

	// SUBSCRIBE and topic filters.
	{name: "SUBSCRIBE with no filters 3.1.1", v: v311, b: sub(v311), code: packet.ProtocolError, rule: "MQTT-3.8.3-3", stage: "validate"},
	{name: "SUBSCRIBE with no filters 5.0", v: v5, b: sub(v5), code: packet.ProtocolError, rule: "MQTT-3.8.3-2", stage: "validate"},
	{name: "SUBSCRIBE packet id 0", v: v311, b: packet.Build(&packet.Subscribe{Subscriptions: []packet.Subscription{{Filter: "a"}}}, v311),
		code: packet.ProtocolError, rule: "MQTT-2.3.1-1", stage: "validate"},
	{name: "SUBSCRIBE empty topic filter", v: v311, b: sub(v311, packet.Subscription{Filter: ""}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.3-1", stage: "validate"},
	{name: "SUBSCRIBE '#' not last 3.1.1", v: v311, b: sub(v311, packet.Subscription{Filter: "a/#/b"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-2", stage: "validate"},
	{name: "SUBSCRIBE '#' not last 5.0", v: v5, b: sub(v5, packet.Subscription{Filter: "a/#/b"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-1", stage: "validate"},
	{name: "SUBSCRIBE '#' not alone in its level", v: v311, b: sub(v311, packet.Subscription{Filter: "a/b#"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-2", stage: "validate"},
	{name: "SUBSCRIBE '+' not alone in its level 3.1.1", v: v311, b: sub(v311, packet.Subscription{Filter: "a/b+/c"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-3", stage: "validate"},
	{name: "SUBSCRIBE '+' not alone in its level 5.0", v: v5, b: sub(v5, packet.Subscription{Filter: "+a"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-2", stage: "validate"},
	{name: "SUBSCRIBE ill-formed UTF-8 filter", v: v5, b: sub(v5, packet.Subscription{Filter: "\xff"}),
		code: packet.MalformedPacket, rule: "MQTT-1.5.4-1", stage: "validate"},
	{name: "SUBSCRIBE requested QoS 3 3.1.1", v: v311, b: sub(v311, packet.Subscription{Filter: "a", QoS: 3}),
		code: packet.MalformedPacket, rule: "MQTT-3-8.3-4", stage: "decode"},
	{name: "SUBSCRIBE reserved bits 3.1.1", v: v311, b: sub(v311, packet.Subscription{Filter: "a", NoLocal: true}),
		code: packet.MalformedPacket, rule: "MQTT-3-8.3-4", stage: "decode"},
	{name: "SUBSCRIBE options reserved bits 5.0", v: v5, b: sub(v5, packet.Subscription{Filter: "a", ReservedBits: 2}),
		code: packet.MalformedPacket, rule: "MQTT-3.8.3-5", stage: "decode"},
	{name: "SUBSCRIBE options reserved bit 6", v: v5, b: sub(v5, packet.Subscription{Filter: "a", ReservedBits: 1}),
		code: packet.MalformedPacket, rule: "MQTT-3.8.3-5", stage: "decode"},
	{name: "SUBSCRIBE retain handling 3", v: v5, b: sub(v5, packet.Subscription{Filter: "a", RetainHandling: 3}),
		code: packet.ProtocolError, rule: "§3.8.3.1", stage: "validate"},
	{name: "SUBSCRIBE maximum QoS 3 5.0", v: v5, b: sub(v5, packet.Subscription{Filter: "a", QoS: 3}),
		code: packet.ProtocolError, rule: "§3.8.3.1", stage: "validate"},
	{name: "SUBSCRIBE no local on a shared subscription", v: v5, b: sub(v5, packet.Subscription{Filter: "$share/g/a", NoLocal: true}),
		code: packet.ProtocolError, rule: "MQTT-3.8.3-4", stage: "validate"},
	{name: "SUBSCRIBE shared subscription with empty share name", v: v5, b: sub(v5, packet.Subscription{Filter: "$share//a"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.8.2-1", stage: "validate"},
	{name: "SUBSCRIBE shared subscription without a filter", v: v5, b: sub(v5, packet.Subscription{Filter: "$share/g"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.8.2-2", stage: "validate"},
	{name: "SUBSCRIBE share name with a wildcard", v: v5, b: sub(v5, packet.Subscription{Filter: "$share/g+/a"}),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.8.2-2", stage: "validate"},
	{name: "SUBSCRIBE subscription identifier 0", v: v5,
		b:    packet.Build(&packet.Subscribe{PacketID: 1, Props: packet.Properties{Raw: []packet.RawProperty{raw(packet.PropSubscriptionID, 0)}}, Subscriptions: []packet.Subscription{{Filter: "a"}}}, v5),
		code: packet.ProtocolError, rule: "§3.8.2.1.2", stage: "decode"},
	{name: "SUBSCRIBE subscription identifier twice", v: v5,
		b:    packet.Build(&packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: []uint32{1, 2}}, Subscriptions: []packet.Subscription{{Filter: "a"}}}, v5),
		code: packet.ProtocolError, rule: "§3.8.2.1.2", stage: "decode"},
	{name: "SUBSCRIBE sent by a server", v: v311, from: srv, b: sub(v311, packet.Subscription{Filter: "a"}),
		code: packet.ProtocolError, rule: "§2.2.1", stage: "validate"},

	// UNSUBSCRIBE.
	{name: "UNSUBSCRIBE with no filters", v: v311, b: packet.Build(&packet.Unsubscribe{PacketID: 1}, v311),
		code: packet.ProtocolError, rule: "MQTT-3.10.3-2", stage: "validate"},
	{name: "UNSUBSCRIBE with no filters 5.0", v: v5, b: packet.Build(&packet.Unsubscribe{PacketID: 1}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.10.3-2", stage: "validate"},
	{name: "UNSUBSCRIBE '+' not alone", v: v311, b: packet.Build(&packet.Unsubscribe{PacketID: 1, Filters: []string{"a+"}}, v311),
		code: packet.TopicFilterInvalid, rule: "MQTT-4.7.1-3", stage: "validate"},

	// CONNECT.
	{name: "CONNECT bad protocol name", v: v311, b: connect(packet.Connect{ProtocolName: "MQTX"}, v311),
		code: packet.UnsupportedProtocolVersion, rule: "MQTT-3.1.2-1", stage: "decode"},
	{name: "CONNECT protocol name MQTT with level 3", v: v311, b: connect(packet.Connect{ProtocolName: "MQTT", Version: 3}, v311),
		code: packet.UnsupportedProtocolVersion, rule: "MQTT-3.1.2-1", stage: "decode"},
	{name: "CONNECT unsupported protocol level 6", v: v5, b: connect(packet.Connect{Version: 6}, v5),
		code: packet.UnsupportedProtocolVersion, rule: "MQTT-3.1.2-2", stage: "decode"},
	{name: "CONNECT reserved flag 3.1.1", v: v311, b: connect(packet.Connect{ReservedFlag: true}, v311),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-3", stage: "decode"},
	{name: "CONNECT reserved flag 5.0", v: v5, b: connect(packet.Connect{ReservedFlag: true}, v5),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-3", stage: "decode"},
	{name: "CONNECT will QoS without will flag 3.1.1", v: v311, b: connect(packet.Connect{}, v311, packet.WithConnectFlags(0x02|0x08)),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-13", stage: "decode"},
	{name: "CONNECT will QoS without will flag 5.0", v: v5, b: connect(packet.Connect{}, v5, packet.WithConnectFlags(0x02|0x10)),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-11", stage: "decode"},
	{name: "CONNECT will retain without will flag 3.1.1", v: v311, b: connect(packet.Connect{}, v311, packet.WithConnectFlags(0x02|0x20)),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-15", stage: "decode"},
	{name: "CONNECT will retain without will flag 5.0", v: v5, b: connect(packet.Connect{}, v5, packet.WithConnectFlags(0x02|0x20)),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-13", stage: "decode"},
	{name: "CONNECT will QoS 3 3.1.1", v: v311, b: connect(packet.Connect{Will: &packet.Will{Topic: "w", QoS: 3}}, v311),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-14", stage: "decode"},
	{name: "CONNECT will QoS 3 5.0", v: v5, b: connect(packet.Connect{Will: &packet.Will{Topic: "w", QoS: 3}}, v5),
		code: packet.MalformedPacket, rule: "MQTT-3.1.2-12", stage: "decode"},
	{name: "CONNECT password without user name 3.1.1", v: v311, b: connect(packet.Connect{Password: []byte("p")}, v311),
		code: packet.ProtocolError, rule: "MQTT-3.1.2-22", stage: "validate"},
	{name: "CONNECT U+0000 in client identifier", v: v311, b: connect(packet.Connect{ClientID: "a\x00"}, v311),
		code: packet.MalformedPacket, rule: "MQTT-1.5.3-2", stage: "validate"},
	{name: "CONNECT ill-formed UTF-8 user name 5.0", v: v5, b: connect(packet.Connect{Username: "\xc0\xaf"}, v5),
		code: packet.MalformedPacket, rule: "MQTT-1.5.4-1", stage: "validate"},
	{name: "CONNECT wildcard in will topic 3.1.1", v: v311, b: connect(packet.Connect{Will: &packet.Will{Topic: "a/#"}}, v311),
		code: packet.TopicNameInvalid, rule: "MQTT-4.7.1-1", stage: "validate"},
	{name: "CONNECT wildcard in will topic 5.0", v: v5, b: connect(packet.Connect{Will: &packet.Will{Topic: "a/+"}}, v5),
		code: packet.TopicNameInvalid, rule: "MQTT-4.7.0-1", stage: "validate"},
	{name: "CONNECT 3.1 client identifier over 23 bytes", v: packet.V31, b: connect(packet.Connect{ClientID: strings.Repeat("x", 24)}, packet.V31),
		code: packet.ClientIdentifierNotValid, rule: "§3.1.3.1", stage: "validate"},
	{name: "CONNECT empty client identifier without clean session", v: v311, b: packet.Build(&packet.Connect{}, v311),
		code: packet.ClientIdentifierNotValid, rule: "MQTT-3.1.3-7", stage: "validate"},
	{name: "CONNECT receive maximum 0", v: v5, b: connect(packet.Connect{Props: packet.Properties{Present: present(packet.PropReceiveMaximum)}}, v5),
		code: packet.ProtocolError, rule: "§3.1.2.11.3", stage: "decode"},
	{name: "CONNECT maximum packet size 0", v: v5, b: connect(packet.Connect{Props: packet.Properties{Present: present(packet.PropMaximumPacketSize)}}, v5),
		code: packet.ProtocolError, rule: "§3.1.2.11.4", stage: "decode"},
	{name: "CONNECT receive maximum twice", v: v5,
		b:    connect(packet.Connect{Props: packet.Properties{ReceiveMaximum: 5, Raw: []packet.RawProperty{raw(packet.PropReceiveMaximum, 0, 6)}}}, v5),
		code: packet.ProtocolError, rule: "§3.1.2.11.3", stage: "decode"},
	{name: "CONNECT request problem information 2", v: v5, b: connect(packet.Connect{Props: packet.Properties{RequestProblemInfo: 2}}, v5),
		code: packet.ProtocolError, rule: "§3.1.2.11.7", stage: "decode"},
	{name: "CONNECT will property not allowed (session expiry)", v: v5,
		b:    connect(packet.Connect{Will: &packet.Will{Topic: "w", Props: packet.Properties{SessionExpiry: 1}}}, v5),
		code: packet.MalformedPacket, rule: "§2.2.2.2", stage: "decode"},
	{name: "CONNECT authentication data without method", v: v5, b: connect(packet.Connect{Props: packet.Properties{AuthData: []byte{1}}}, v5),
		code: packet.ProtocolError, rule: "§3.1.2.11.10", stage: "validate"},

	// CONNACK.
	{name: "CONNACK reserved acknowledge flags 3.1.1", v: v311, from: srv, b: hx("20 02 02 00"),
		code: packet.MalformedPacket, rule: "§3.2.2.1", stage: "decode"},
	{name: "CONNACK reserved acknowledge flags 5.0", v: v5, from: srv, b: hx("20 03 80 00 00"),
		code: packet.MalformedPacket, rule: "MQTT-3.2.2-1", stage: "decode"},
	{name: "CONNACK session present with a refusal 3.1.1", v: v311, from: srv, b: hx("20 02 01 05"),
		code: packet.ProtocolError, rule: "MQTT-3.2.2-4", stage: "validate"},
	{name: "CONNACK session present with a refusal 5.0", v: v5, from: srv, b: hx("20 03 01 87 00"),
		code: packet.ProtocolError, rule: "MQTT-3.2.2-6", stage: "validate"},
	{name: "CONNACK return code 6 3.1.1", v: v311, from: srv, b: hx("20 02 00 06"),
		code: packet.ProtocolError, rule: "§3.2.2.3", stage: "validate"},
	{name: "CONNACK reason code not for CONNACK 5.0", v: v5, from: srv, b: hx("20 03 00 10 00"),
		code: packet.ProtocolError, rule: "MQTT-3.2.2-8", stage: "validate"},
	{name: "CONNACK receive maximum 0", v: v5, from: srv, b: hx("20 06 00 00 03 21 00 00"),
		code: packet.ProtocolError, rule: "§3.2.2.3.3", stage: "decode"},
	{name: "CONNACK maximum QoS 2", v: v5, from: srv, b: hx("20 05 00 00 02 24 02"),
		code: packet.ProtocolError, rule: "§3.2.2.3.4", stage: "decode"},
	{name: "CONNACK sent by a client", v: v311, from: cli, b: hx("20 02 00 00"),
		code: packet.ProtocolError, rule: "§2.2.1", stage: "validate"},

	// SUBACK, UNSUBACK, DISCONNECT, AUTH.
	{name: "SUBACK return code 3 3.1.1", v: v311, from: srv, b: hx("90 03 00 01 03"),
		code: packet.ProtocolError, rule: "MQTT-3.9.3-2", stage: "validate"},
	{name: "SUBACK reason code not for SUBACK 5.0", v: v5, from: srv, b: hx("90 04 00 01 00 10"),
		code: packet.ProtocolError, rule: "MQTT-3.9.3-2", stage: "validate"},
	{name: "UNSUBACK reason code not for UNSUBACK", v: v5, from: srv, b: hx("b0 04 00 01 00 92"),
		code: packet.ProtocolError, rule: "MQTT-3.11.3-2", stage: "validate"},
	{name: "DISCONNECT server-only reason code from a client", v: v5, b: hx("e0 01 8b"),
		code: packet.ProtocolError, rule: "MQTT-3.14.2-1", stage: "validate"},
	{name: "DISCONNECT session expiry sent by a server", v: v5, from: srv, b: hx("e0 07 8b 05 11 00 00 00 0a"),
		code: packet.ProtocolError, rule: "MQTT-3.14.2-2", stage: "validate"},
	{name: "DISCONNECT property not allowed (topic alias)", v: v5, b: hx("e0 05 00 03 23 00 01"),
		code: packet.MalformedPacket, rule: "§2.2.2.2", stage: "decode"},
	{name: "AUTH reason code not for AUTH", v: v5, b: packet.Build(&packet.Auth{Code: 0x80, Props: packet.Properties{AuthMethod: "m"}}, v5),
		code: packet.ProtocolError, rule: "MQTT-3.15.2-1", stage: "validate"},
	{name: "AUTH without authentication method", v: v5, b: packet.Build(&packet.Auth{Code: packet.ContinueAuthentication}, v5),
		code: packet.ProtocolError, rule: "§3.15.2.2.2", stage: "validate"},
	{name: "AUTH authentication method twice", v: v5,
		b:    packet.Build(&packet.Auth{Code: 0x18, Props: packet.Properties{AuthMethod: "m", Raw: []packet.RawProperty{raw(packet.PropAuthMethod, 0, 1, 'n')}}}, v5),
		code: packet.ProtocolError, rule: "§3.15.2.2.2", stage: "decode"},
}

// fixedFlagCases adds one case per packet type whose fixed header flags are fixed, per version:
// every such type rejects a wrong value, and each cites its own statement where it has one.
func fixedFlagCases() []badCase {
	var out []badCase
	samples := map[packet.Type]packet.Packet{
		packet.TypeConnect: &packet.Connect{ClientID: "c", CleanStart: true}, packet.TypeConnack: &packet.Connack{},
		packet.TypePuback: &packet.Puback{PacketID: 1}, packet.TypePubrec: &packet.Pubrec{PacketID: 1},
		packet.TypePubrel: &packet.Pubrel{PacketID: 1}, packet.TypePubcomp: &packet.Pubcomp{PacketID: 1},
		packet.TypeSubscribe:   &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a"}}},
		packet.TypeSuback:      &packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{0}},
		packet.TypeUnsubscribe: &packet.Unsubscribe{PacketID: 1, Filters: []string{"a"}}, packet.TypeUnsuback: &packet.Unsuback{PacketID: 1},
		packet.TypePingreq: &packet.Pingreq{}, packet.TypePingresp: &packet.Pingresp{}, packet.TypeDisconnect: &packet.Disconnect{},
		packet.TypeAuth: &packet.Auth{},
	}
	own := map[packet.Type]string{packet.TypePubrel: "MQTT-3.6.1-1", packet.TypeSubscribe: "MQTT-3.8.1-1",
		packet.TypeUnsubscribe: "MQTT-3.10.1-1", packet.TypeDisconnect: "MQTT-3.14.1-1", packet.TypeAuth: "MQTT-3.15.1-1"}
	for _, v := range []packet.Version{v311, v5} {
		for typ := packet.TypeConnect; typ <= packet.TypeAuth; typ++ {
			if typ == packet.TypePublish || (typ == packet.TypeAuth && v != v5) {
				continue
			}
			p := samples[typ]
			b := packet.Build(p, v)
			rule := own[typ]
			if rule == "" {
				rule = map[packet.Version]string{v311: "MQTT-2.2.2-1", v5: "MQTT-2.1.3-1"}[v]
			}
			for _, bit := range []byte{1, 2, 4, 8} {
				out = append(out, badCase{
					name: "flags: " + p.Type().String() + " " + v.String() + " bit " + hex.EncodeToString([]byte{bit}),
					v:    v, b: packet.Build(p, v, packet.WithFlags(b[0]&0x0F^bit)),
					code: packet.MalformedPacket, rule: rule, stage: "decode",
				})
			}
		}
	}
	return out
}

// TestMalformed runs every case: decoding (and validating what decodes) must fail with the reason
// code and the statement the case names, at the stage the case names.
func TestMalformed(t *testing.T) {
	cases := append(append([]badCase(nil), badCases...), fixedFlagCases()...)
	n := 0
	for _, tc := range cases {
		n++
		t.Run(tc.name, func(t *testing.T) {
			stage, err := check(tc.b, tc.v, tc.from, tc.max)
			if err == nil {
				t.Fatalf("% x accepted, want %s (%s)", tc.b, tc.rule, tc.code)
			}
			var pe *packet.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *packet.Error", err)
			}
			if pe.Code != tc.code || pe.Rule != tc.rule {
				t.Errorf("got %s / %s, want %s / %s\n  error: %v", pe.Code.Error(), pe.Rule, tc.code.Error(), tc.rule, err)
			}
			if !errors.Is(err, tc.code) {
				t.Errorf("errors.Is(err, %v) is false", tc.code)
			}
			if stage != tc.stage {
				t.Errorf("found at %s, want %s: %v", stage, tc.stage, err)
			}
			if (pe.Packet == 0 && pe.Field != "packet type") || pe.Reason == "" || pe.Field == "" {
				t.Errorf("error lacks packet, field or reason: %#v", pe)
			}
		})
	}
	if n < 40 {
		t.Fatalf("only %d malformed cases", n)
	}
}
