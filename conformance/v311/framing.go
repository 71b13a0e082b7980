package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Fixed header, packet identifiers, PINGREQ, DISCONNECT", func() {
	suite.Must("sends every packet with the fixed header flags Table 2.2 reserves",
		ids(spec.V311_2_2_2_1), func(c *suite.C) {
			topic := c.Topic("flags")
			sub := flows.Subscriber(c, "sub", 2, topic, c.Topic("q1"))
			p, _ := c.Connect("pub")
			c.Put(p, &packet.Publish{Topic: topic, QoS: 2, Payload: []byte("x")})
			c.Put(p, &packet.Publish{Topic: c.Topic("q1"), QoS: 1, Payload: []byte("y")})
			c.Send(p, &packet.Pingreq{})
			c.Await(p, wire.IsType(packet.TypePingresp))
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishOn(topic)))
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishOn(c.Topic("q1"))))
			c.Unsubscribe(sub, topic)
			// Every packet decoded: the decoder refuses flags other than the table's. Check the
			// raw first bytes once more, for the evidence.
			want := map[packet.Type]byte{packet.TypeConnack: 0x20, packet.TypePuback: 0x40, packet.TypePubrec: 0x50,
				packet.TypePubrel: 0x62, packet.TypePubcomp: 0x70, packet.TypeSuback: 0x90, packet.TypeUnsuback: 0xB0,
				packet.TypePingresp: 0xD0}
			seen := map[packet.Type]bool{}
			for _, e := range c.Trace().Events() {
				if e.Dir != wire.Received || len(e.Raw) == 0 {
					continue
				}
				t := packet.Type(e.Raw[0] >> 4)
				if w, ok := want[t]; ok {
					seen[t] = true
					if e.Raw[0] != w {
						c.Failf("%s sent with first byte 0x%02X, want 0x%02X", t, e.Raw[0], w)
					}
				}
				if e.Err != nil {
					c.Failf("the broker sent a malformed packet: %v", e.Err)
				}
			}
			// The acknowledgements of the QoS flows are judged by their own checks; these are
			// always there.
			for _, t := range []packet.Type{packet.TypeConnack, packet.TypeSuback, packet.TypeUnsuback, packet.TypePingresp} {
				if !seen[t] {
					c.Failf("no %s observed", t)
				}
			}
		})

	suite.Must("closes the connection on reserved fixed header flags that are not as Table 2.2 lists",
		ids(spec.V311_2_2_2_2), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				p    packet.Packet
			}{
				{"PINGREQ with flags 0001", &packet.Pingreq{}},
				{"PUBACK with flags 0010", &packet.Puback{PacketID: 1}},
				{"DISCONNECT with flags 1000", &packet.Disconnect{}},
			} {
				c.Step("%s", tc.name)
				conn, _ := c.Connect("dev")
				flags := byte(0x1)
				switch tc.p.Type() {
				case packet.TypePuback:
					flags = 0x2
				case packet.TypeDisconnect:
					flags = 0x8
				}
				c.TrySendRaw(conn, packet.Build(tc.p, packet.V311, packet.WithFlags(flags)))
				closedWithout(c, conn, packet.TypePingresp)
			}
		})

	suite.Must("closes the connection on a PUBREL whose fixed header flags are not 0010",
		ids(spec.V311_3_6_1_1), func(c *suite.C) {
			conn, _ := c.Connect("pub")
			c.Send(conn, &packet.Publish{Topic: c.Topic("q2"), QoS: 2, PacketID: 5, Payload: []byte("x")})
			c.Sync(conn)
			c.TrySendRaw(conn, packet.Build(&packet.Pubrel{PacketID: 5}, packet.V311, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypePubcomp)
		})

	suite.Must("closes the connection on a SUBSCRIBE, UNSUBSCRIBE or QoS 1 PUBLISH with Packet Identifier 0",
		ids(spec.V311_2_3_1_1), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				p    packet.Packet
			}{
				{"SUBSCRIBE", &packet.Subscribe{PacketID: 0, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 0}}}},
				{"UNSUBSCRIBE", &packet.Unsubscribe{PacketID: 0, Filters: []string{c.Topic("a")}}},
				{"PUBLISH", &packet.Publish{Topic: c.Topic("a"), QoS: 1, PacketID: 0, Payload: []byte("x")}},
			} {
				c.Step("%s with Packet Identifier 0", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, packet.Build(tc.p, packet.V311))
				c.AwaitClosed(conn)
			}
		})

	suite.Must("answers every PINGREQ with PINGRESP",
		ids(spec.V311_3_12_4_1), flows.PingPong)

	suite.Must("closes the connection on a DISCONNECT with reserved bits set",
		ids(spec.V311_3_14_1_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Disconnect{}, packet.V311, packet.WithFlags(0x1)))
			c.AwaitClosed(conn)
		})

	suite.Must("closes the connection on a packet only a server may send, or of a reserved type",
		ids(spec.V311_4_8_0_1), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				raw  []byte
			}{
				{"CONNACK from the client", packet.Build(&packet.Connack{}, packet.V311)},
				{"SUBACK from the client", packet.Build(&packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{0}}, packet.V311)},
				{"reserved type 0", []byte{0x00, 0x00}},
				{"reserved type 15", []byte{0xF0, 0x00}},
			} {
				c.Step("%s", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, tc.raw)
				c.AwaitClosed(conn)
			}
		})
})
