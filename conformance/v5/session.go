package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Sessions", func() {
	suite.Must("creates a new Session under Clean Start 0 when it holds none, with Session Present 0",
		ids(spec.V5_3_1_2_6, spec.V5_3_2_2_3), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, ack := c.Connect("dev", c.Persistent())
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeFalse(), "Session Present for a Client Identifier never seen")
			flows.Subscribe(c, conn, 1, topic)
			c.Disconnect(conn)
			c.Step("the new Session exists: it is resumed, with its subscription")
			conn, ack = c.Connect("dev", c.Persistent())
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "open", 1, false)
			c.For(spec.V5_3_1_2_6).AwaitPublish(conn, wire.PublishWith(topic, []byte("open")))
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present after a Session was created")
		})

	suite.Must("resumes a Session under Clean Start 0: Session Present 1 and its subscriptions still in effect",
		ids(spec.V5_3_1_2_5, spec.V5_3_1_2_23, spec.V5_3_2_2_3, spec.V5_3_1_4_4), func(c *suite.C) {
			topic := c.Topic("cmd", "open")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 1, topic)
			c.Disconnect(conn)
			conn, ack := c.Connect("dev", c.Persistent())
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "open", 1, false)
			c.For(spec.V5_3_1_2_5, spec.V5_3_1_2_23, spec.V5_3_1_4_4).AwaitPublish(conn, wire.PublishWith(topic, []byte("open")))
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present when resuming a Session")
		})

	suite.Must("keeps QoS 1 and QoS 2 messages for a disconnected Session and delivers them on reconnect",
		ids(spec.V5_3_1_2_23, spec.V5_4_5_0_1), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 2, topic)
			c.Disconnect(conn)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "one", 1, false)
			c.PutMsg(p, topic, "two", 2, false)
			conn, _ = c.Connect("dev", c.Persistent())
			for _, want := range []string{"one", "two"} {
				c.Ack(conn, c.AwaitPublish(conn, wire.PublishWith(topic, []byte(want))))
			}
		})

	suite.Must("discards the Session on Clean Start 1",
		ids(spec.V5_3_1_2_4, spec.V5_3_2_2_2, spec.V5_3_1_4_4), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 1, topic)
			c.Disconnect(conn)
			conn, ack := c.Connect("dev", expiry(3600))
			c.Expect(ack.SessionPresent).To(BeFalse(), "Session Present with Clean Start 1")
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "stale subscription", 1, false)
			c.AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("ends a Session with Session Expiry Interval 0 when its connection closes",
		ids(spec.V5_4_1_0_2), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, _ := c.Connect("dev", resume, expiry(0))
			flows.Subscribe(c, conn, 1, topic)
			c.Disconnect(conn)
			conn, ack := c.Connect("dev", c.Persistent())
			c.Expect(ack.SessionPresent).To(BeFalse(), "Session Present after a Session with expiry 0 was closed")
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "stale subscription", 1, false)
			c.AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("keeps a Session while connected past its expiry interval, and discards it once the interval passes after the close",
		ids(spec.V5_4_1_0_1, spec.V5_4_1_0_2, spec.V5_3_2_2_3), func(c *suite.C) {
			held := c.Topic("held")
			gone := c.Topic("gone")
			stay, _ := c.Connect("stay", resume, expiry(1))
			flows.Subscribe(c, stay, 1, held)
			leave, _ := c.Connect("leave", resume, expiry(1))
			flows.Subscribe(c, leave, 1, gone)
			c.Disconnect(leave)
			c.Step("a disconnected Session within its interval is still there")
			leave, ack := c.Connect("leave", resume, expiry(1))
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present within the Session Expiry Interval")
			c.Disconnect(leave)
			elapse(c, expiryWait)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, held, "still subscribed", 1, false)
			c.For(spec.V5_4_1_0_1).AwaitPublish(stay, wire.PublishWith(held, []byte("still subscribed")))
			_, ack = c.Connect("leave", c.Persistent())
			c.For(spec.V5_4_1_0_2).Expect(ack.SessionPresent).To(BeFalse(), "Session Present %s after a Session with expiry 1 s was closed", expiryWait)
		})

	suite.Must("identifies Sessions by Client Identifier",
		ids(spec.V5_3_1_3_2, spec.V5_3_2_2_3, spec.V5_3_1_2_23), func(c *suite.C) {
			topic := c.Topic("cmd")
			conn, _ := c.Connect("devA", c.Persistent())
			flows.Subscribe(c, conn, 1, topic)
			c.Disconnect(conn)
			other, ack := c.Connect("devB", c.Persistent())
			f := findings{c: c}
			if ack.SessionPresent {
				// Either Session Present is wrong, or devA's Session was taken for devB's.
				f.add(spec.V5_3_2_2_3, "Session Present 1 for another Client Identifier")
				f.add(spec.V5_3_1_3_2, "devB was given a Session although only devA had one")
			}
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "for A", 1, false)
			if err := other.ExpectNothing(c.Window(), wire.PublishOn(topic)); err != nil {
				f.add(spec.V5_3_1_3_2, "devB got devA's message: %v", err)
			}
			f.report()
			a, ack := c.Connect("devA", c.Persistent())
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present for devA")
			// The QoS 1 message kept for the disconnected Session is MQTT-3.1.2-23's business.
			c.For(spec.V5_3_1_2_23).AwaitPublish(a, wire.PublishWith(topic, []byte("for A")))
		})

	suite.Must("hands a Session to a new connection with the same Client Identifier",
		ids(spec.V5_3_1_4_3, spec.V5_3_2_2_3), func(c *suite.C) {
			topic := c.Topic("cmd")
			first, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, first, 1, topic)
			second, ack := c.Connect("dev", c.Persistent())
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present on take-over")
			c.AwaitClosed(first)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "open", 1, false)
			c.AwaitPublish(second, wire.PublishWith(topic, []byte("open")))
		})

	suite.Must("resends an unacknowledged QoS 1 PUBLISH on reconnect, with DUP 1 and its Packet Identifier, and at no other time",
		ids(spec.V5_4_4_0_1, spec.V5_3_3_1_1, spec.V5_4_3_2_3, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 1, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "unlock", 1, false)
			first := c.AwaitPublish(conn, wire.PublishOn(topic))
			deliveredQoS(c, first, 1)
			c.Step("no resend while the connection lasts")
			c.For(spec.V5_4_4_0_1).AwaitNothing(conn, wire.PublishOn(topic))
			c.Step("the device loses its connection before sending PUBACK")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			again := c.For(spec.V5_4_4_0_1, spec.V5_4_3_2_3).AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V5_4_4_0_1).Expect(again.PacketID).To(Equal(first.PacketID), "Packet Identifier of the resent PUBLISH")
			c.For(spec.V5_3_3_1_1, spec.V5_4_4_0_1).Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
			c.Expect(string(again.Payload)).To(Equal("unlock"))
			c.Ack(conn, again)
		})

	suite.Must("does not resend a QoS 1 message once it has been acknowledged",
		ids(spec.V5_4_3_2_3, spec.V5_4_4_0_1), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 1, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "unlock", 1, false)
			c.Ack(conn, c.AwaitPublish(conn, wire.PublishOn(topic)))
			c.Sync(conn)
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("resends an unacknowledged QoS 2 PUBLISH on reconnect with DUP 1 and its Packet Identifier",
		ids(spec.V5_4_4_0_1, spec.V5_3_3_1_1, spec.V5_4_3_3_3, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("charge")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 2, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "4.50", 2, false)
			first := c.AwaitPublish(conn, wire.PublishOn(topic))
			deliveredQoS(c, first, 2)
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			again := c.For(spec.V5_4_4_0_1, spec.V5_4_3_3_3).AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V5_4_4_0_1).Expect(again.PacketID).To(Equal(first.PacketID), "Packet Identifier of the resent PUBLISH")
			c.For(spec.V5_3_3_1_1, spec.V5_4_4_0_1).Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
			c.Ack(conn, again)
		})

	suite.Must("resends PUBREL, never the PUBLISH, when a QoS 2 delivery was interrupted after PUBREC",
		ids(spec.V5_4_4_0_1, spec.V5_4_3_3_5, spec.V5_4_3_3_6, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("charge")
			conn, _ := c.Connect("dev", c.Persistent())
			flows.Subscribe(c, conn, 2, topic)
			p, _ := c.Connect("ctl")
			c.PutMsg(p, topic, "4.50", 2, false)
			in := c.AwaitPublish(conn, wire.PublishOn(topic))
			deliveredQoS(c, in, 2)
			c.Send(conn, &packet.Pubrec{PacketID: in.PacketID})
			c.Await(conn, wire.PubrelFor(in.PacketID))
			c.Step("the device loses its connection before sending PUBCOMP")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.For(spec.V5_4_4_0_1, spec.V5_4_3_3_5).Await(conn, wire.PubrelFor(in.PacketID))
			c.Send(conn, &packet.Pubcomp{PacketID: in.PacketID})
			c.For(spec.V5_4_3_3_6).AwaitNothing(conn, publishID(topic, in.PacketID))
		})
})
