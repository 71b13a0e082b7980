package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Authorization", func() {
	suite.Must("answers an unauthorized PUBLISH as its QoS requires or closes the connection",
		ids(spec.V311_3_3_5_2), func(c *suite.C) {
			c.Require(suite.FeatureACL)
			topic := c.Env.DeniedTopic
			for _, qos := range []packet.QoS{1, 2} {
				c.Step("QoS %d PUBLISH to the denied topic %q", qos, topic)
				conn, _ := c.Connect("dev")
				id := c.NextID(conn)
				c.Send(conn, &packet.Publish{Topic: topic, QoS: qos, PacketID: id, Payload: []byte("forbidden")})
				// Either answer is allowed: the positive acknowledgement of the QoS, or closing.
				want := wire.PubackFor(id)
				if qos == 2 {
					want = wire.PubrecFor(id)
				}
				if _, err := conn.ExpectPacket(c.Timeout(), want); err != nil {
					if closed, by := conn.Closed(); !(closed && by == "broker") {
						c.Failf("neither %s nor a closed connection: %v", want, err)
					}
				}
			}
		})
})
