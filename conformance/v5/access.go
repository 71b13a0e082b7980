package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Authorization", func() {
	suite.Must("treats a QoS 2 PUBLISH that reuses the Packet Identifier of one it refused with a PUBREC error as a new message",
		ids(spec.V5_4_3_3_9), func(c *suite.C) {
			c.Require(suite.FeatureACL)
			topic := c.Topic("allowed")
			sub := flows.Subscriber(c, "sub", 0, topic)
			conn, _ := c.Connect("pub")
			c.Send(conn, &packet.Publish{Topic: c.Env.DeniedTopic, QoS: 2, PacketID: 21, Payload: []byte("forbidden")})
			got, err := conn.ExpectPacket(c.Timeout(), wire.PubrecFor(21))
			if err != nil {
				c.NotSupported("the broker answered a QoS 2 PUBLISH to the denied topic %q without a PUBREC (%v)", c.Env.DeniedTopic, err)
			}
			if code := got.(*packet.Pubrec).Code; !code.IsError() {
				c.NotSupported("the broker acknowledged the QoS 2 PUBLISH to the denied topic with PUBREC %s, not an error", flows.CodeName(code))
			}
			c.Step("the exchange ended with the PUBREC error: Packet Identifier 21 is free for a new message")
			c.Send(conn, &packet.Publish{Topic: topic, QoS: 2, PacketID: 21, Payload: []byte("new")})
			rec := c.Await(conn, wire.PubrecFor(21)).(*packet.Pubrec)
			c.Expect(rec.Code.IsError()).To(BeFalse(), "PUBREC %s for a new, allowed message with the reused Packet Identifier", flows.CodeName(rec.Code))
			c.Send(conn, &packet.Pubrel{PacketID: 21})
			c.Sync(conn)
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("new")))
		})

	suite.Must("refuses a CONNECT whose Will Topic the client may not publish to, and closes the connection",
		ids(spec.V5_3_1_4_2), func(c *suite.C) {
			c.Require(suite.FeatureACL)
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Will = &packet.Will{Topic: c.Env.DeniedTopic, Payload: []byte("x")}
			c.Send(conn, p)
			ack, err := conn.ExpectPacket(c.Timeout(), wire.IsType(packet.TypeConnack))
			if err == nil && ack.(*packet.Connack).Code == packet.Success {
				// Section 3.1.2.9 lets a server check the will topic when it publishes the will
				// rather than at CONNECT: then there is no refusal to observe here.
				c.NotSupported("the broker accepted a will on the denied topic %q; it may refuse it when publishing", c.Env.DeniedTopic)
			}
			refusedConnect(c, conn)
		})
})
