package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Transports", func() {
	suite.Must("carries MQTT over an ordered, lossless byte stream in both directions",
		ids(spec.V5_4_2_0_1), func(c *suite.C) {
			topic := c.Topic("stream")
			sub := flows.Subscriber(c, "sub", 0, topic)
			conn, _ := c.Connect("pub")
			c.Step("50 PINGREQs in one write, and 50 PINGRESPs")
			var burst []byte
			for range 50 {
				burst = append(burst, packet.Build(&packet.Pingreq{}, v5)...)
			}
			c.SendRaw(conn, burst)
			for range 50 {
				c.Await(conn, wire.IsType(packet.TypePingresp))
			}
			c.Step("a 64 KiB message, byte for byte, to a subscriber")
			big := make([]byte, 64<<10)
			for i := range big {
				big[i] = byte(i * 7)
			}
			c.Send(conn, &packet.Publish{Topic: topic, Payload: big})
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.Payload).To(Equal(big), "payload of a 64 KiB message as delivered")
		})

	suite.Must("selects the WebSocket subprotocol mqtt",
		ids(spec.V5_6_0_0_4), flows.WSSubprotocol)

	suite.Must("reads packets across WebSocket frame boundaries and several packets from one frame",
		ids(spec.V5_6_0_0_2), flows.WSFrames)

	suite.Must("sends MQTT in binary frames and closes the connection when a client sends MQTT in a text frame",
		ids(spec.V5_6_0_0_1), flows.WSTextFrame)
})
