package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Transports", func() {
	suite.Must("speaks MQTT over an ordered, lossless byte stream",
		ids(spec.V311_7_1_1_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.Send(conn, &packet.Pingreq{})
			c.Await(conn, wire.IsType(packet.TypePingresp))
		})

	suite.Must("selects the WebSocket subprotocol mqtt",
		ids(spec.V311_6_0_0_4), flows.WSSubprotocol)

	suite.Must("reads packets across WebSocket frame boundaries and several packets from one frame",
		ids(spec.V311_6_0_0_2, spec.V311_6_0_0_1), flows.WSFrames)

	suite.Must("closes the connection when a client sends MQTT in a WebSocket text frame",
		ids(spec.V311_6_0_0_1), flows.WSTextFrame)
})
