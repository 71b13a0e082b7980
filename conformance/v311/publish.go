package v311

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("PUBLISH", func() {
	suite.Must("closes the connection on a PUBLISH with both QoS bits set",
		ids(spec.V311_3_3_1_4), func(c *suite.C) {
			topic := c.Topic("qos3")
			watcher := flows.Subscriber(c, "watch", 1, topic)
			conn, _ := c.Connect("pub")
			c.TrySendRaw(conn, packet.Build(&packet.Publish{Topic: topic, QoS: 1, PacketID: 1, Payload: []byte("x")},
				packet.V311, packet.WithFlags(0x06)))
			closedWithout(c, conn, packet.TypePuback)
			c.AwaitNothing(watcher, wire.PublishOn(topic))
		})

	suite.Must("closes the connection on a PUBLISH whose topic name holds a wildcard, and delivers nothing",
		ids(spec.V311_3_3_2_2, spec.V311_4_7_1_1), func(c *suite.C) {
			watcher := flows.Subscriber(c, "watch", 0, c.Topic("#"))
			for _, topic := range []string{c.Topic("a", "+"), c.Topic("#"), c.Topic("b+")} {
				c.Step("PUBLISH to %q", topic)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, packet.Build(flows.Pub(topic, "wild", 0, false), packet.V311))
				c.AwaitClosed(conn)
			}
			c.AwaitNothing(watcher, wire.PublishUnder(c.Topic()))
		})

	suite.Must("answers PUBLISH as its QoS requires: nothing for 0, PUBACK for 1, PUBREC for 2",
		ids(spec.V311_3_3_4_1), func(c *suite.C) {
			conn, _ := c.Connect("pub")
			c.Send(conn, flows.Pub(c.Topic("q0"), "zero", 0, false))
			// A PINGREQ after the QoS 0 PUBLISH: its PINGRESP is the first and only answer.
			c.Send(conn, &packet.Pingreq{})
			first := c.AwaitNext(conn)
			if first.Type() != packet.TypePingresp {
				c.Failf("the broker answered a QoS 0 PUBLISH with %s", wire.Describe(first))
			}
			c.Send(conn, &packet.Publish{Topic: c.Topic("q1"), Payload: []byte("one"), QoS: 1, PacketID: 11})
			c.Await(conn, wire.PubackFor(11))
			c.Send(conn, &packet.Publish{Topic: c.Topic("q2"), Payload: []byte("two"), QoS: 2, PacketID: 12})
			c.Await(conn, wire.PubrecFor(12))
			c.Send(conn, &packet.Pubrel{PacketID: 12})
			c.Sync(conn)
		})

	suite.Must("acknowledges with the Packet Identifier of the PUBLISH that started each exchange",
		ids(spec.V311_2_3_1_6, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("ids")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("one"), QoS: 1, PacketID: 0x1234})
			ack := c.Await(conn, wire.IsType(packet.TypePuback)).(*packet.Puback)
			c.Expect(ack.PacketID).To(Equal(uint16(0x1234)), "PUBACK packet identifier")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("two"), QoS: 2, PacketID: 0xABCD})
			rec := c.Await(conn, wire.IsType(packet.TypePubrec)).(*packet.Pubrec)
			c.Expect(rec.PacketID).To(Equal(uint16(0xABCD)), "PUBREC packet identifier")
			// The broker may deliver a QoS 2 message on PUBLISH or only once PUBREL arrives
			// (section 4.3.3 allows both): complete the exchange before looking for it.
			c.Send(conn, &packet.Pubrel{PacketID: 0xABCD})
			c.Sync(conn)
			// As sender of QoS 2 the broker's PUBREL carries the identifier of its own PUBLISH.
			in := c.AwaitPublish(sub, wire.PublishWith(topic, []byte("one")))
			c.Ack(sub, in)
			in2 := c.AwaitPublish(sub, wire.PublishWith(topic, []byte("two")))
			c.For(spec.V311_3_8_4_6).Expect(in2.QoS).To(Equal(packet.QoS2), "QoS of a QoS 2 message on a QoS 2 subscription")
			c.Send(sub, &packet.Pubrec{PacketID: in2.PacketID})
			rel := c.Await(sub, wire.IsType(packet.TypePubrel)).(*packet.Pubrel)
			c.Expect(rel.PacketID).To(Equal(in2.PacketID), "PUBREL packet identifier")
			c.Send(sub, &packet.Pubcomp{PacketID: in2.PacketID})
		})

	suite.Must("treats a QoS 1 PUBLISH that reuses an acknowledged Packet Identifier as a new message",
		ids(spec.V311_4_3_2_2), func(c *suite.C) {
			topic := c.Topic("reuse")
			sub := flows.Subscriber(c, "sub", 1, topic)
			conn, _ := c.Connect("pub")
			for _, payload := range []string{"first", "second"} {
				c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: 1, PacketID: 7})
				c.Await(conn, wire.PubackFor(7))
				in := c.AwaitPublish(sub, wire.PublishWith(topic, []byte(payload)))
				c.Ack(sub, in)
			}
		})

	suite.Must("delivers a QoS 2 message once although its PUBLISH is repeated before PUBREL",
		ids(spec.V311_4_3_3_2), func(c *suite.C) {
			topic := c.Topic("once")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			p := &packet.Publish{Topic: topic, Payload: []byte("charge 4.50"), QoS: 2, PacketID: 9}
			c.Send(conn, p)
			c.Await(conn, wire.PubrecFor(9))
			c.Step("the client resends the PUBLISH as if the PUBREC had been lost")
			p.Dup = true
			c.Send(conn, p)
			c.Await(conn, wire.PubrecFor(9))
			c.Send(conn, &packet.Pubrel{PacketID: 9})
			c.Await(conn, wire.PubcompFor(9))
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Ack(sub, in)
			c.AwaitNothing(sub, wire.PublishOn(topic))
			c.Step("after PUBCOMP the identifier is free: the same identifier is a new message")
			c.Send(conn, &packet.Publish{Topic: topic, Payload: []byte("charge 2.00"), QoS: 2, PacketID: 9})
			c.Await(conn, wire.PubrecFor(9))
			c.Send(conn, &packet.Pubrel{PacketID: 9})
			c.Await(conn, wire.PubcompFor(9))
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("charge 2.00")))
		})

	suite.Must("sets DUP on forwarded messages by its own retransmission, not by the DUP they arrived with",
		ids(spec.V311_3_3_1_3), flows.DupNotInherited)

	suite.Must("delivers QoS 0 messages as QoS 0 with DUP 0 and no Packet Identifier",
		ids(spec.V311_3_3_1_2, spec.V311_4_3_1_1, spec.V311_2_3_1_5), func(c *suite.C) {
			topic := c.Topic("q0")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.Send(conn, flows.Pub(topic, "temp 21.5", 0, false))
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.For(spec.V311_4_3_1_1).Expect(in.QoS).To(Equal(packet.QoS0), "QoS")
			c.For(spec.V311_3_3_1_2, spec.V311_4_3_1_1).Expect(in.Dup).To(BeFalse(), "DUP")
			// A Packet Identifier in a QoS 0 PUBLISH would have been decoded as the first two
			// bytes of the payload.
			c.For(spec.V311_2_3_1_5).Expect(string(in.Payload)).To(Equal("temp 21.5"), "payload")
		})

	suite.Must("delivers QoS 1 messages with DUP 0 and a non-zero Packet Identifier",
		ids(spec.V311_4_3_2_1, spec.V311_2_3_1_1, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("q1")
			sub := flows.Subscriber(c, "sub", 1, topic)
			conn, _ := c.Connect("pub")
			c.PutMsg(conn, topic, "card 0451", 1, false)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS1), "QoS of a QoS 1 message on a QoS 1 subscription")
			c.Expect(in.Dup).To(BeFalse(), "DUP of a first transmission")
			c.Expect(in.PacketID).NotTo(Equal(uint16(0)), "Packet Identifier")
			c.Ack(sub, in)
		})

	suite.Must("sends QoS 2 messages as QoS 2 with DUP 0, answers PUBREC with PUBREL and completes on PUBCOMP",
		ids(spec.V311_4_3_3_1, spec.V311_2_3_1_1, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("q2")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			c.PutMsg(conn, topic, "charge 4.50", 2, false)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS2), "QoS of a QoS 2 message on a QoS 2 subscription")
			c.Expect(in.Dup).To(BeFalse(), "DUP of a first transmission")
			c.Expect(in.PacketID).NotTo(Equal(uint16(0)), "Packet Identifier")
			c.Send(sub, &packet.Pubrec{PacketID: in.PacketID})
			c.Await(sub, wire.PubrelFor(in.PacketID))
			c.Send(sub, &packet.Pubcomp{PacketID: in.PacketID})
			// Exactly once: the message is not sent again as a new one.
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("uses a distinct Packet Identifier for each QoS 1 and QoS 2 message in flight",
		ids(spec.V311_2_3_1_4, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("inflight")
			sub := flows.Subscriber(c, "sub", 2, topic)
			conn, _ := c.Connect("pub")
			const n = 6
			for i := 0; i < n; i++ {
				c.PutMsg(conn, topic, fmt.Sprintf("m%d", i), packet.QoS(1+i%2), false)
			}
			seen := map[uint16]string{}
			for i := 0; i < n; i++ {
				in := c.AwaitPublish(sub, wire.PublishOn(topic))
				c.For(spec.V311_3_8_4_6).Expect(in.QoS).NotTo(Equal(packet.QoS0), "QoS of %q, published at QoS 1 or 2 on a QoS 2 subscription", in.Payload)
				if other, dup := seen[in.PacketID]; dup {
					c.Failf("Packet Identifier %d is used for %q while %q is still unacknowledged", in.PacketID, in.Payload, other)
				}
				seen[in.PacketID] = string(in.Payload)
			}
		})

	suite.Must("delivers a message to every client whose subscription matches",
		ids(spec.V311_4_5_0_1), flows.EveryMatchingSubscriber)

	suite.Must("sends a subscriber only topic names that match its topic filter",
		ids(spec.V311_3_3_2_3), flows.OnlyMatchingTopics)

	suite.Must("sends topic names as the UTF-8 strings they were published as",
		ids(spec.V311_3_3_2_1), func(c *suite.C) {
			topic := c.Topic("zone-Ü", "gate-€", "état")
			sub := flows.Subscriber(c, "sub", 0, c.Topic("#"))
			p, _ := c.Connect("pub")
			c.Send(p, flows.Pub(topic, "x", 0, false))
			in := c.AwaitPublish(sub, wire.PublishUnder(c.Topic()))
			c.Expect([]byte(in.Topic)).To(Equal([]byte(topic)), "topic name bytes as delivered")
			c.Expect(sub.Invalid()).To(BeEmpty(), "packets from the broker that are not valid")
		})

	suite.Must("delivers a message matching overlapping subscriptions at the highest QoS among them",
		ids(spec.V311_3_3_5_1), flows.OverlappingHighestQoS)
})
