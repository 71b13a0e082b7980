package broker_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// violation is one malformed packet or forbidden sequence. The offender is disconnected — a 5.0
// client with DISCONNECT carrying code first — while a bystander keeps being served.
type violation struct {
	name    string
	rule    string
	v       packet.Version
	noConn  bool                  // send before CONNECT
	cfg     func(*broker.Config)  // broker configuration for this case
	mod     func(*packet.Connect) // CONNECT changes
	prepare func(w *wire)         // legal packets first
	bytes   func(v packet.Version) []byte
	code    packet.ReasonCode // expected DISCONNECT code for 5.0 (0: close without DISCONNECT)
	connack packet.ReasonCode // for a refused CONNECT: expected CONNACK code first (0: none)
}

func pub(topic string, qos packet.QoS, pid uint16) *packet.Publish {
	return &packet.Publish{Topic: topic, QoS: qos, PacketID: pid, Payload: []byte("x")}
}

func build(p packet.Packet, muts ...packet.Mutation) func(packet.Version) []byte {
	return func(v packet.Version) []byte { return packet.Build(p, v, muts...) }
}

var violations = []violation{
	// 3.1.1: the connection is closed.
	{name: "second CONNECT", rule: "MQTT-3.1.0-2", v: packet.V311, bytes: build(&packet.Connect{ClientID: "again", CleanStart: true})},
	{name: "PUBLISH before CONNECT", rule: "MQTT-3.1.0-1", v: packet.V311, noConn: true, bytes: build(pub("t", 0, 0))},
	{name: "SUBSCRIBE before CONNECT", rule: "MQTT-3.1.0-1", v: packet.V311, noConn: true, bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t"}}})},
	{name: "CONNECT with the reserved flag set", rule: "MQTT-3.1.2-3", v: packet.V311, noConn: true, bytes: build(&packet.Connect{ClientID: "r", CleanStart: true, ReservedFlag: true})},
	{name: "CONNECT with will QoS but no will flag", rule: "MQTT-3.1.2-13", v: packet.V311, noConn: true, bytes: build(&packet.Connect{ClientID: "w", CleanStart: true}, packet.WithConnectFlags(0x02|0x08))},
	{name: "CONNECT with password but no user name", rule: "MQTT-3.1.2-22", v: packet.V311, noConn: true, bytes: build(&packet.Connect{ClientID: "p", CleanStart: true, Password: []byte("pw"), PasswordFlag: true})},
	{name: "CONNECT with a bad protocol name", rule: "MQTT-3.1.2-1", v: packet.V311, noConn: true, connack: packet.ConnRefusedProtocolVersion, bytes: build(&packet.Connect{ClientID: "n", CleanStart: true, ProtocolName: "MQTX"})},
	{name: "PUBLISH QoS 3", rule: "MQTT-3.3.1-4", v: packet.V311, bytes: build(pub("t", 3, 1))},
	{name: "PUBLISH with + in the topic", rule: "MQTT-3.3.2-2", v: packet.V311, bytes: build(pub("a/+/b", 0, 0))},
	{name: "PUBLISH with # in the topic", rule: "MQTT-3.3.2-2", v: packet.V311, bytes: build(pub("a/#", 1, 1))},
	{name: "PUBLISH QoS 1 with packet id 0", rule: "MQTT-2.3.1-1", v: packet.V311, bytes: build(pub("t", 1, 0))},
	{name: "PUBLISH with ill-formed UTF-8 topic", rule: "MQTT-1.5.3-1", v: packet.V311, bytes: build(pub("a/\xff\xfe", 0, 0))},
	{name: "PUBLISH with U+0000 in the topic", rule: "MQTT-1.5.3-2", v: packet.V311, bytes: build(pub("a/\x00", 0, 0))},
	{name: "PUBLISH with an empty topic", rule: "MQTT-4.7.3-1", v: packet.V311, bytes: build(pub("", 0, 0))},
	{name: "PUBLISH QoS 0 with DUP", rule: "MQTT-3.3.1-2", v: packet.V311, bytes: build(&packet.Publish{Topic: "t", Dup: true, Payload: []byte("x")})},
	{name: "SUBSCRIBE with no filters", rule: "MQTT-3.8.3-3", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 1})},
	{name: "SUBSCRIBE with flags 0000", rule: "MQTT-3.8.1-1", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t"}}}, packet.WithFlags(0))},
	{name: "SUBSCRIBE with # not last", rule: "MQTT-4.7.1-2", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#/b"}}})},
	{name: "SUBSCRIBE with + not alone in its level", rule: "MQTT-4.7.1-3", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a+/b"}}})},
	{name: "SUBSCRIBE with requested QoS 3", rule: "MQTT-3.8.3-4", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t", QoS: 3}}})},
	{name: "SUBSCRIBE with packet id 0", rule: "MQTT-2.3.1-1", v: packet.V311, bytes: build(&packet.Subscribe{PacketID: 0, Subscriptions: []packet.Subscription{{Filter: "t"}}})},
	{name: "UNSUBSCRIBE with no filters", rule: "MQTT-3.10.3-2", v: packet.V311, bytes: build(&packet.Unsubscribe{PacketID: 1})},
	{name: "UNSUBSCRIBE with flags 0000", rule: "MQTT-3.10.1-1", v: packet.V311, bytes: build(&packet.Unsubscribe{PacketID: 1, Filters: []string{"t"}}, packet.WithFlags(0))},
	{name: "PUBREL with flags 0000", rule: "MQTT-3.6.1-1", v: packet.V311, bytes: build(&packet.Pubrel{PacketID: 1}, packet.WithFlags(0))},
	{name: "PINGREQ with flags 0001", rule: "MQTT-2.2.2-2", v: packet.V311, bytes: build(&packet.Pingreq{}, packet.WithFlags(1))},
	{name: "remaining length of five bytes", rule: "§2.2.3", v: packet.V311, bytes: build(&packet.Pingreq{}, packet.WithLongRemainingLength(5))},
	{name: "reserved packet type 0", rule: "§2.2.1", v: packet.V311, bytes: build(&packet.Pingreq{}, packet.WithType(0))},
	{name: "AUTH packet type in 3.1.1", rule: "§2.2.1", v: packet.V311, bytes: build(&packet.Pingreq{}, packet.WithType(15))},
	{name: "CONNACK sent by a client", rule: "§2.2.1", v: packet.V311, bytes: build(&packet.Connack{})},
	{name: "SUBACK sent by a client", rule: "§2.2.1", v: packet.V311, bytes: build(&packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{0}})},
	{name: "packet over the maximum packet size", rule: "§2.2.3", v: packet.V311, cfg: func(c *broker.Config) { c.MaxPacketSize = 256 },
		bytes: build(&packet.Publish{Topic: "big", Payload: make([]byte, 300)})},

	// 5.0: DISCONNECT with the reason code, then close.
	{name: "second CONNECT (5.0)", rule: "MQTT-3.1.0-2", v: packet.V5, code: packet.ProtocolError, bytes: build(&packet.Connect{ClientID: "again", CleanStart: true})},
	{name: "PUBLISH QoS 3 (5.0)", rule: "MQTT-3.3.1-4", v: packet.V5, code: packet.MalformedPacket, bytes: build(pub("t", 3, 1))},
	{name: "PUBLISH with a wildcard topic (5.0)", rule: "MQTT-3.3.2-2", v: packet.V5, code: packet.TopicNameInvalid, bytes: build(pub("a/+", 0, 0))},
	{name: "PUBLISH with ill-formed UTF-8 (5.0)", rule: "MQTT-1.5.4-1", v: packet.V5, code: packet.MalformedPacket, bytes: build(pub("\xc3\x28", 0, 0))},
	// 0x94 is for an alias above the maximum (DISCONNECT reason code table); alias 0 is a protocol error.
	{name: "topic alias 0", rule: "MQTT-3.3.2-8", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Publish{Topic: "t", Props: packet.Properties{Present: presentSet(packet.PropTopicAlias)}})},
	{name: "topic alias over the maximum", rule: "MQTT-3.3.2-9", v: packet.V5, code: packet.TopicAliasInvalid,
		bytes: build(&packet.Publish{Topic: "t", Props: packet.Properties{TopicAlias: 11}})},
	{name: "unknown topic alias with an empty topic", rule: "§3.3.4", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Publish{Props: packet.Properties{TopicAlias: 3}})},
	{name: "receive maximum exceeded", rule: "MQTT-3.3.4-7", v: packet.V5, code: packet.ReceiveMaximumExceeded,
		cfg: func(c *broker.Config) { c.MaxInflight = 2 },
		prepare: func(w *wire) {
			for id := uint16(1); id <= 2; id++ {
				w.send(pub("t", 2, id))
				expectPacket[*packet.Pubrec](w)
			}
		},
		bytes: build(pub("t", 2, 3))},
	{name: "packet over the maximum packet size (5.0)", rule: "MQTT-3.2.2-15", v: packet.V5, code: packet.PacketTooLarge, cfg: func(c *broker.Config) { c.MaxPacketSize = 256 },
		bytes: build(&packet.Publish{Topic: "big", Payload: make([]byte, 300)})},
	{name: "SUBSCRIBE with no filters (5.0)", rule: "MQTT-3.8.3-2", v: packet.V5, code: packet.ProtocolError, bytes: build(&packet.Subscribe{PacketID: 1})},
	{name: "SUBSCRIBE with retain handling 3", rule: "§3.8.3.1", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t", RetainHandling: 3}}})},
	{name: "SUBSCRIBE with reserved option bits", rule: "MQTT-3.8.3-5", v: packet.V5, code: packet.MalformedPacket,
		bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t", ReservedBits: 3}}})},
	{name: "no local on a shared subscription", rule: "MQTT-3.8.3-4", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/t", NoLocal: true}}})},
	{name: "PUBLISH with a property not allowed in it", rule: "§2.2.2.2", v: packet.V5, code: packet.MalformedPacket,
		bytes: build(&packet.Publish{Topic: "t", Props: packet.Properties{Raw: []packet.RawProperty{{ID: packet.PropSessionExpiry, Value: []byte{0, 0, 0, 1}}}}})},
	{name: "PUBLISH with a property given twice", rule: "§2.2.2.2", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Publish{Topic: "t", Props: packet.Properties{MessageExpiry: 5, Raw: []packet.RawProperty{{ID: packet.PropMessageExpiry, Value: []byte{0, 0, 0, 1}}}}})},
	{name: "PUBLISH with a subscription identifier from the client", rule: "MQTT-3.3.4-6", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Publish{Topic: "t", Props: packet.Properties{SubscriptionIDs: []uint32{4}}})},
	{name: "payload format 1 with a payload that is not UTF-8", rule: "§3.3.2.3.2", v: packet.V5, code: packet.PayloadFormatInvalid,
		bytes: build(&packet.Publish{Topic: "t", Payload: []byte{0xff, 0xfe}, Props: packet.Properties{PayloadFormat: 1}})},
	{name: "retained PUBLISH when retain is not available", rule: "MQTT-3.2.2-14", v: packet.V5, code: packet.RetainNotSupported,
		cfg: func(c *broker.Config) { c.RetainUnavailable = true }, bytes: build(&packet.Publish{Topic: "t", Retain: true, Payload: []byte("x")})},
	{name: "AUTH without an authentication method", rule: "MQTT-4.12.0-7", v: packet.V5, code: packet.ProtocolError, bytes: build(&packet.Auth{Code: packet.ContinueAuthentication})},
	{name: "session expiry set on DISCONNECT after 0", rule: "§3.14.2.2.2", v: packet.V5, code: packet.ProtocolError,
		bytes: build(&packet.Disconnect{Props: packet.Properties{SessionExpiry: 30}})},
	{name: "PUBACK with flags 0001 (5.0)", rule: "MQTT-2.1.3-1", v: packet.V5, code: packet.MalformedPacket, bytes: build(&packet.Puback{PacketID: 1}, packet.WithFlags(1))},
}

func presentSet(ids ...packet.PropID) packet.PropSet {
	var s packet.PropSet
	s.Add(ids...)
	return s
}

var _ = Describe("Protocol violations", func() {
	It("has at least 30 cases", func() { Expect(len(violations)).To(BeNumerically(">=", 30)) })

	for _, tc := range violations {
		It("disconnects only the offender: "+tc.name+" (MQTT "+tc.v.String()+")", Label(tc.rule), func() {
			var opts []func(*broker.Config)
			if tc.cfg != nil {
				opts = append(opts, tc.cfg)
			}
			b := start(withConfig(func(c *broker.Config) {
				for _, f := range opts {
					f(c)
				}
			}))
			bystander := connectWire(b, packet.V5, "bystander")
			bystander.subscribe(1, "still/#", 1)
			talker := connectWire(b, packet.V311, "talker")

			w := dialWire(b, tc.v)
			w.id = "offender"
			if !tc.noConn {
				ack := w.connect("offender", func(c *packet.Connect) {
					if tc.mod != nil {
						tc.mod(c)
					}
				})
				Expect(ack.Code).To(Equal(packet.Success))
				if tc.prepare != nil {
					tc.prepare(w)
				}
			}
			w.raw(tc.bytes(tc.v))
			if tc.connack != 0 {
				Expect(expectPacket[*packet.Connack](w).Code).To(Equal(tc.connack))
			}
			d := w.expectClosed()
			if tc.v == packet.V5 && !tc.noConn {
				Expect(d).NotTo(BeNil(), "5.0 offender closed without DISCONNECT")
				Expect(d.Code).To(Equal(tc.code))
			} else {
				Expect(d).To(BeNil())
			}
			Eventually(func() uint64 { return b.Stats().ProtocolErrors.Load() }).WithTimeout(wait).Should(BeNumerically(">=", 1))

			talker.publish("still/served", 1, false, "yes", 1)
			Expect(string(bystander.receive().Payload)).To(Equal("yes"))
		})
	}

	It("answers PUBREL for an unknown packet id with PUBCOMP 0x92 in 5.0 and stays connected", Label("§3.7.2.1"), func() {
		b := start()
		w := connectWire(b, packet.V5, "c")
		w.send(&packet.Pubrel{PacketID: 77})
		comp := expectPacket[*packet.Pubcomp](w)
		Expect(comp.PacketID).To(BeEquivalentTo(77))
		Expect(comp.Code).To(Equal(packet.PacketIdentifierNotFound))
		w.ping()
	})

	It("answers PUBREL for an unknown packet id with PUBCOMP in 3.1.1", Label("MQTT-4.3.3-2"), func() {
		b := start()
		w := connectWire(b, packet.V311, "c")
		w.send(&packet.Pubrel{PacketID: 77})
		Expect(expectPacket[*packet.Pubcomp](w).PacketID).To(BeEquivalentTo(77))
		w.ping()
	})

	It("drops a message bigger than the client's Maximum Packet Size for that client only", Label("MQTT-3.1.2-25"), func() {
		b := start()
		small := connectWire(b, packet.V5, "small", func(c *packet.Connect) { c.Props.MaximumPacketSize = 64 })
		small.subscribe(1, "t", 1)
		large := connectWire(b, packet.V5, "large")
		large.subscribe(1, "t", 1)
		p := connectWire(b, packet.V5, "pub")
		p.publish("t", 1, false, string(make([]byte, 100)), 1)
		p.publish("t", 1, false, "tiny", 2)
		Expect(large.receive().Payload).To(HaveLen(100))
		Expect(string(large.receive().Payload)).To(Equal("tiny"))
		Expect(string(small.receive().Payload)).To(Equal("tiny"))
		Expect(b.Stats().DroppedTooLarge.Load()).To(BeEquivalentTo(1))
		small.expectSilence(100 * time.Millisecond)
	})
})
