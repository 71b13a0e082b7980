package v311

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Sessions", func() {
	suite.Must("starts a persistent session with session present 0 when it holds no state for the ClientId",
		ids(spec.V311_3_2_2_3), func(c *suite.C) {
			_, ack := c.Connect("dev", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeFalse(), "session present for a ClientId never seen")
		})

	suite.Must("resumes a persistent session: session present 1 and its subscriptions still in effect",
		ids(spec.V311_3_1_2_4, spec.V311_3_1_4_3, spec.V311_3_2_2_2, spec.V311_4_1_0_1), func(c *suite.C) {
			topic := c.Topic("cmd", "open")
			conn, _ := c.Connect("dev", c.Persistent())
			c.Subscribe(conn, 1, topic)
			c.Disconnect(conn)
			conn, ack := c.Connect("dev", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeTrue(), "session present when resuming a session")
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "open", 1, false)
			c.AwaitPublish(conn, wire.PublishWith(topic, []byte("open")))
		})

	suite.Must("keeps QoS 1 and QoS 2 messages for a disconnected persistent session and delivers them on reconnect",
		ids(spec.V311_3_1_2_5, spec.V311_4_5_0_1), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			codes := c.Subscribe(conn, 2, topic)
			flows.NeedQoS(c, 2, packet.QoS(codes[0]))
			c.Disconnect(conn)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "one", 1, false)
			c.PutMsg(p, topic, "two", 2, false)
			conn, _ = c.Connect("dev", c.Persistent())
			for _, want := range []string{"one", "two"} {
				in := c.AwaitPublish(conn, wire.PublishWith(topic, []byte(want)))
				c.Ack(conn, in)
			}
		})

	suite.Must("discards the session on CleanSession 1 and does not keep the clean session afterwards",
		ids(spec.V311_3_1_2_6, spec.V311_3_2_2_1), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, _ := c.Connect("dev", c.Persistent())
			c.Subscribe(conn, 1, topic)
			c.Disconnect(conn)
			conn, ack := c.Connect("dev")
			c.Expect(ack.SessionPresent).To(BeFalse(), "session present with CleanSession 1")
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "stale subscription", 1, false)
			c.AwaitNothing(conn, wire.PublishOn(topic))
			c.Disconnect(conn)
			_, ack = c.Connect("dev", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeFalse(), "session present after a clean session ended")
		})

	suite.Must("identifies sessions by ClientId",
		ids(spec.V311_3_1_3_2, spec.V311_3_1_2_5), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, _ := c.Connect("devA", c.Persistent())
			c.Subscribe(conn, 1, topic)
			c.Disconnect(conn)
			other, ack := c.Connect("devB", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeFalse(), "session present for another ClientId")
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "for A", 1, false)
			c.AwaitNothing(other, wire.PublishOn(topic))
			a, _ := c.Connect("devA", c.Persistent())
			if _, err := a.ExpectPacket(c.Timeout(), wire.PublishWith(topic, []byte("for A"))); err != nil {
				c.For(spec.V311_3_1_2_5).Failf("the QoS 1 message for the disconnected session of devA: %v", err)
			}
		})

	suite.Must("keeps a session's subscriptions for as long as its connection lasts",
		ids(spec.V311_4_1_0_2), func(c *suite.C) {
			topic := c.Topic("telemetry")
			sub := flows.Subscriber(c, "sub", 0, topic)
			p, _ := c.Connect("pub")
			for _, payload := range []string{"t1", "t2", "t3"} {
				c.Send(sub, &packet.Pingreq{})
				c.Await(sub, wire.IsType(packet.TypePingresp))
				c.Send(p, flows.Pub(topic, payload, 0, false))
				c.AwaitPublish(sub, wire.PublishWith(topic, []byte(payload)))
			}
		})

	suite.Must("hands a persistent session to a new connection with the same ClientId and closes the old one",
		ids(spec.V311_3_1_4_2, spec.V311_3_1_2_4, spec.V311_3_2_2_2), func(c *suite.C) {
			topic := c.Topic("cmd")
			first, _ := c.Connect("dev", c.Persistent())
			c.Subscribe(first, 1, topic)
			second, ack := c.Connect("dev", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeTrue(), "session present on take-over")
			c.AwaitClosed(first)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "open", 1, false)
			c.AwaitPublish(second, wire.PublishWith(topic, []byte("open")))
		})

	suite.Must("resends an unacknowledged QoS 1 PUBLISH on reconnect with DUP 1 and its Packet Identifier",
		ids(spec.V311_4_4_0_1, spec.V311_3_3_1_1, spec.V311_4_3_2_1, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			c.Subscribe(conn, 1, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "unlock", 1, false)
			first := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(first.QoS).To(Equal(packet.QoS1), "QoS of a QoS 1 message on a QoS 1 subscription")
			c.Step("the device loses its connection before sending PUBACK")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			again := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.Expect(again.PacketID).To(Equal(first.PacketID), "Packet Identifier of the resent PUBLISH")
			c.For(spec.V311_3_3_1_1).Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
			c.Expect(string(again.Payload)).To(Equal("unlock"))
			c.Ack(conn, again)
		})

	suite.Must("does not resend a QoS 1 message once it has been acknowledged",
		ids(spec.V311_4_3_2_1), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			c.Subscribe(conn, 1, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "unlock", 1, false)
			c.Ack(conn, c.AwaitPublish(conn, wire.PublishOn(topic)))
			c.Send(conn, &packet.Pingreq{})
			c.Await(conn, wire.IsType(packet.TypePingresp))
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("resends an unacknowledged QoS 2 PUBLISH on reconnect with DUP 1 and its Packet Identifier",
		ids(spec.V311_4_4_0_1, spec.V311_3_3_1_1, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("charge")
			conn, _ := c.Connect("dev", c.Persistent())
			codes := c.Subscribe(conn, 2, topic)
			flows.NeedQoS(c, 2, packet.QoS(codes[0]))
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "4.50", 2, false)
			first := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(first.QoS).To(Equal(packet.QoS2), "QoS of a QoS 2 message on a QoS 2 subscription")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			again := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.Expect(again.PacketID).To(Equal(first.PacketID), "Packet Identifier of the resent PUBLISH")
			c.For(spec.V311_3_3_1_1).Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
			c.Ack(conn, again)
		})

	suite.Must("resends PUBREL, not the PUBLISH, when a QoS 2 delivery was interrupted after PUBREC",
		ids(spec.V311_4_4_0_1, spec.V311_4_3_3_1, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("charge")
			conn, _ := c.Connect("dev", c.Persistent())
			codes := c.Subscribe(conn, 2, topic)
			flows.NeedQoS(c, 2, packet.QoS(codes[0]))
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "4.50", 2, false)
			in := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS2), "QoS of a QoS 2 message on a QoS 2 subscription")
			c.Send(conn, &packet.Pubrec{PacketID: in.PacketID})
			c.Await(conn, wire.PubrelFor(in.PacketID))
			c.Step("the device loses its connection before sending PUBCOMP")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.Await(conn, wire.PubrelFor(in.PacketID))
			c.Send(conn, &packet.Pubcomp{PacketID: in.PacketID})
			// Never the PUBLISH again once PUBREL has gone out (a second message, with another
			// Packet Identifier, is the exactly-once checks' business).
			c.AwaitNothing(conn, wire.And(wire.PublishOn(topic), wire.Where(fmt.Sprintf("packet id %d", in.PacketID), func(p packet.Packet) bool {
				return p.(*packet.Publish).PacketID == in.PacketID
			})))
		})
})
