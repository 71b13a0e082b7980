package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// deliveredQoS requires a message delivered on a subscription to carry the QoS it must: the
// lower of the QoS it was published with and the QoS granted ([MQTT-3.8.4-8]). Checks of other
// rules call it before relying on the QoS, so that a broker that downgrades is blamed for that
// statement and not for the one the check was on its way to judge; they must cite
// MQTT-3.8.4-8.
func deliveredQoS(c *suite.C, in *packet.Publish, want packet.QoS) {
	c.For(spec.V5_3_8_4_8).Expect(in.QoS).To(Equal(want), "QoS of the delivery (the lower of the published and the granted QoS)")
}

var _ = describe("PUBLISH", func() {
	suite.Must("treats a PUBLISH with both QoS bits set as malformed: closes the connection and delivers nothing",
		ids(spec.V5_3_3_1_4, spec.V5_4_13_1_1), func(c *suite.C) {
			topic := c.Topic("qos3")
			watcher := flows.Subscriber(c, "watch", 1, topic)
			conn, _ := c.Connect("pub")
			c.TrySendRaw(conn, packet.Build(&packet.Publish{Topic: topic, QoS: 1, PacketID: 1, Payload: []byte("x")},
				v5, packet.WithFlags(0x06)))
			closedWithout(c, conn, packet.TypePuback, packet.TypePubrec)
			c.AwaitNothing(watcher, wire.PublishOn(topic))
		})

	suite.Must("closes the connection on a PUBLISH whose Topic Name holds a wildcard, and delivers nothing",
		ids(spec.V5_3_3_2_2, spec.V5_4_7_0_1), func(c *suite.C) {
			watcher := flows.Subscriber(c, "watch", 0, c.Topic("#"))
			for _, topic := range []string{c.Topic("a", "+"), c.Topic("#"), c.Topic("b+")} {
				c.Step("PUBLISH to %q", topic)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, packet.Build(flows.Pub(topic, "wild", 0, false), v5))
				closedWithout(c, conn)
			}
			c.AwaitNothing(watcher, wire.PublishUnder(c.Topic()))
		})

	suite.Must("closes the connection on a Topic Name that is not well-formed UTF-8",
		ids(spec.V5_3_3_2_1, spec.V5_1_5_4_1), func(c *suite.C) {
			badTopic(c, "a UTF-16 surrogate (ED A0 80)", append([]byte(c.Topic()+"/"), 0xED, 0xA0, 0x80))
			badTopic(c, "an overlong encoding (C0 AF)", append([]byte(c.Topic()+"/"), 0xC0, 0xAF))
		})

	suite.Must("answers PUBLISH as its QoS requires: nothing for 0, PUBACK for 1, PUBREC for 2 and PUBCOMP for PUBREL",
		ids(spec.V5_3_3_4_1, spec.V5_4_3_2_4, spec.V5_4_3_3_8, spec.V5_4_3_3_11), func(c *suite.C) {
			conn, _ := c.Connect("pub")
			c.Send(conn, flows.Pub(c.Topic("q0"), "zero", 0, false))
			// A PINGREQ after the QoS 0 PUBLISH: its PINGRESP is the first and only answer.
			c.Send(conn, &packet.Pingreq{})
			if first := c.AwaitNext(conn); first.Type() != packet.TypePingresp {
				c.For(spec.V5_3_3_4_1).Failf("the broker answered a QoS 0 PUBLISH with %s", wire.Describe(first))
			}
			c.Send(conn, &packet.Publish{Topic: c.Topic("q1"), Payload: []byte("one"), QoS: 1, PacketID: 11})
			c.For(spec.V5_3_3_4_1, spec.V5_4_3_2_4).Await(conn, wire.PubackFor(11))
			c.Send(conn, &packet.Publish{Topic: c.Topic("q2"), Payload: []byte("two"), QoS: 2, PacketID: 12})
			c.For(spec.V5_3_3_4_1, spec.V5_4_3_3_8).Await(conn, wire.PubrecFor(12))
			c.Send(conn, &packet.Pubrel{PacketID: 12})
			c.For(spec.V5_4_3_3_11).Await(conn, wire.PubcompFor(12))
		})

	suite.Must("acknowledges with the Packet Identifier of the PUBLISH, and releases with the one of its own PUBLISH",
		ids(spec.V5_2_2_1_5, spec.V5_4_3_2_4, spec.V5_4_3_3_8, spec.V5_4_3_3_11, spec.V5_4_3_3_4, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("ids")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("one"), QoS: 1, PacketID: 0x1234})
			ack := c.For(spec.V5_4_3_2_4).Await(conn, wire.IsType(packet.TypePuback)).(*packet.Puback)
			c.For(spec.V5_2_2_1_5).Expect(ack.PacketID).To(Equal(uint16(0x1234)), "PUBACK Packet Identifier")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("two"), QoS: 2, PacketID: 0xABCD})
			rec := c.For(spec.V5_4_3_3_8).Await(conn, wire.IsType(packet.TypePubrec)).(*packet.Pubrec)
			c.For(spec.V5_2_2_1_5).Expect(rec.PacketID).To(Equal(uint16(0xABCD)), "PUBREC Packet Identifier")
			c.Send(conn, &packet.Pubrel{PacketID: 0xABCD})
			comp := c.For(spec.V5_4_3_3_11).Await(conn, wire.IsType(packet.TypePubcomp)).(*packet.Pubcomp)
			c.For(spec.V5_2_2_1_5).Expect(comp.PacketID).To(Equal(uint16(0xABCD)), "PUBCOMP Packet Identifier")
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishWith(topic, []byte("one"))))
			in := c.AwaitPublish(sub, wire.PublishWith(topic, []byte("two")))
			deliveredQoS(c, in, 2)
			c.Send(sub, &packet.Pubrec{PacketID: in.PacketID})
			rel := c.For(spec.V5_4_3_3_4).Await(sub, wire.IsType(packet.TypePubrel)).(*packet.Pubrel)
			c.Expect(rel.PacketID).To(Equal(in.PacketID), "PUBREL Packet Identifier")
			c.Send(sub, &packet.Pubcomp{PacketID: in.PacketID})
		})

	suite.Must("treats a QoS 1 PUBLISH that reuses an acknowledged Packet Identifier as a new message",
		ids(spec.V5_4_3_2_5, spec.V5_4_3_2_4), func(c *suite.C) {
			topic := c.Topic("reuse")
			sub := flows.Subscriber(c, "sub", 1, topic)
			conn, _ := c.Connect("pub")
			for i, payload := range []string{"first", "second"} {
				p := &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: 1, PacketID: 7}
				// The client may even set DUP: once PUBACK has gone, it is a new message all the same.
				p.Dup = i == 1
				c.Send(conn, p)
				c.For(spec.V5_4_3_2_4).Await(conn, wire.PubackFor(7))
				c.Ack(sub, c.AwaitPublish(sub, wire.PublishWith(topic, []byte(payload))))
			}
		})

	suite.Must("answers a repeated QoS 2 PUBLISH with PUBREC and delivers it once; after PUBCOMP the identifier is new",
		ids(spec.V5_4_3_3_10, spec.V5_4_3_3_12, spec.V5_4_3_3_8, spec.V5_4_3_3_11), func(c *suite.C) {
			topic := c.Topic("once")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			p := &packet.Publish{Topic: topic, Payload: []byte("charge 4.50"), QoS: 2, PacketID: 9}
			c.Send(conn, p)
			c.For(spec.V5_4_3_3_8).Await(conn, wire.PubrecFor(9))
			c.Step("the client resends the PUBLISH as if the PUBREC had been lost")
			p.Dup = true
			c.Send(conn, p)
			c.For(spec.V5_4_3_3_10).Await(conn, wire.PubrecFor(9))
			c.Send(conn, &packet.Pubrel{PacketID: 9})
			c.For(spec.V5_4_3_3_11).Await(conn, wire.PubcompFor(9))
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishOn(topic)))
			c.For(spec.V5_4_3_3_10).AwaitNothing(sub, wire.PublishOn(topic))
			c.Step("after PUBCOMP the same identifier is a new message")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("charge 2.00"), QoS: 2, PacketID: 9})
			c.For(spec.V5_4_3_3_8).Await(conn, wire.PubrecFor(9))
			c.Send(conn, &packet.Pubrel{PacketID: 9})
			c.For(spec.V5_4_3_3_11).Await(conn, wire.PubcompFor(9))
			c.For(spec.V5_4_3_3_12).AwaitPublish(sub, wire.PublishWith(topic, []byte("charge 2.00")))
		})

	suite.Must("sets DUP on forwarded messages by its own retransmission, not by the DUP they arrived with",
		ids(spec.V5_3_3_1_3), flows.DupNotInherited)

	suite.Must("delivers QoS 0 messages as QoS 0 with DUP 0 and no Packet Identifier",
		ids(spec.V5_3_3_1_2, spec.V5_4_3_1_1, spec.V5_2_2_1_2), func(c *suite.C) {
			topic := c.Topic("q0")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.Send(conn, flows.Pub(topic, "temp 21.5", 0, false))
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.QoS).To(Equal(packet.QoS0), "QoS")
			c.Expect(in.Dup).To(BeFalse(), "DUP")
			// A Packet Identifier in a QoS 0 PUBLISH would have been decoded as the property
			// length and the start of the payload.
			c.Expect(string(in.Payload)).To(Equal("temp 21.5"), "payload")
		})

	suite.Must("sends QoS 1 messages with QoS 1, DUP 0 and a non-zero Packet Identifier",
		ids(spec.V5_4_3_2_1, spec.V5_4_3_2_2, spec.V5_2_2_1_4, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("q1")
			sub := flows.Subscriber(c, "sub", 1, topic)
			conn, _ := c.Connect("pub")
			c.PutMsg(conn, topic, "card 0451", 1, false)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			deliveredQoS(c, in, 1)
			c.Expect(in.Dup).To(BeFalse(), "DUP of a first transmission")
			c.Expect(in.PacketID).NotTo(Equal(uint16(0)), "Packet Identifier")
			c.Ack(sub, in)
		})

	suite.Must("sends QoS 2 messages with QoS 2, DUP 0 and a non-zero Packet Identifier, releases on PUBREC and completes on PUBCOMP",
		ids(spec.V5_4_3_3_1, spec.V5_4_3_3_2, spec.V5_4_3_3_4, spec.V5_2_2_1_4, spec.V5_4_3_3_10, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("q2")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.PutMsg(conn, topic, "charge 4.50", 2, false)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			deliveredQoS(c, in, 2)
			c.Expect(in.Dup).To(BeFalse(), "DUP of a first transmission")
			c.Expect(in.PacketID).NotTo(Equal(uint16(0)), "Packet Identifier")
			c.Send(sub, &packet.Pubrec{PacketID: in.PacketID})
			c.Await(sub, wire.PubrelFor(in.PacketID))
			c.Send(sub, &packet.Pubcomp{PacketID: in.PacketID})
			// Exactly once: having received the message once, the broker delivers it onward once.
			c.For(spec.V5_4_3_3_10).AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("uses a distinct, unused Packet Identifier for each QoS 1 and QoS 2 message in flight",
		ids(spec.V5_2_2_1_4, spec.V5_4_3_2_1, spec.V5_4_3_3_1, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("inflight")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			const n = 6
			for i := range n {
				c.PutMsg(conn, topic, fmt.Sprintf("m%d", i), packet.QoS(1+i%2), false)
			}
			seen := map[uint16]string{}
			for range n {
				in := c.AwaitPublish(sub, wire.PublishOn(topic))
				if in.QoS == 0 {
					c.For(spec.V5_3_8_4_8).Failf("%q, published at QoS 1 or 2 on a QoS 2 subscription, arrived at QoS 0", in.Payload)
				}
				if other, dup := seen[in.PacketID]; dup {
					c.Failf("Packet Identifier %d is used for %q while %q is still unacknowledged", in.PacketID, in.Payload, other)
				}
				seen[in.PacketID] = string(in.Payload)
			}
		})

	suite.Must("does not resend a message the client acknowledged with a PUBACK or PUBREC error code",
		ids(spec.V5_4_4_0_2, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("refused")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 2, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "one", 1, false)
			c.PutMsg(p, topic, "two", 2, false)
			one := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("one")))
			deliveredQoS(c, one, 1)
			c.Send(conn, &packet.Puback{PacketID: one.PacketID, Code: packet.UnspecifiedError})
			two := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("two")))
			deliveredQoS(c, two, 2)
			c.Send(conn, &packet.Pubrec{PacketID: two.PacketID, Code: packet.UnspecifiedError})
			c.Step("PUBREC 0x80 ends the exchange: no PUBREL follows, and neither message is sent again")
			again := wire.Or(wire.PubrelFor(two.PacketID), publishID(topic, one.PacketID), publishID(topic, two.PacketID))
			c.AwaitNothing(conn, again)
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.AwaitNothing(conn, again)
		})

	suite.Must("delivers a message to every client whose subscription matches",
		ids(spec.V5_4_5_0_1), flows.EveryMatchingSubscriber)

	suite.Must("sends a subscriber only Topic Names that match its Topic Filter",
		ids(spec.V5_3_3_2_3), flows.OnlyMatchingTopics)

	suite.Must("delivers a message matching overlapping subscriptions at the highest QoS among them",
		ids(spec.V5_3_3_4_2), flows.OverlappingHighestQoS)
})
