package v311

import (
	"strings"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("CONNECT and CONNACK", func() {
	suite.Must("accepts a valid CONNECT with return code 0 and session present 0",
		ids(spec.V311_3_1_4_4, spec.V311_3_2_2_1, spec.V311_7_1_1_1), func(c *suite.C) {
			_, ack := c.Connect("dev")
			c.For(spec.V311_3_2_2_1).Expect(ack.SessionPresent).To(BeFalse(), "session present with CleanSession 1")
		})

	suite.Must("sends CONNACK before anything else when packets follow the CONNECT at once",
		ids(spec.V311_3_2_0_1), func(c *suite.C) {
			conn := c.Dial("dev")
			// A client need not wait for CONNACK before sending more packets (section 3.1.4).
			raw := packet.Build(c.ConnectPacket("dev"), packet.V311)
			raw = append(raw, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 1}}}, packet.V311)...)
			raw = append(raw, packet.Build(&packet.Pingreq{}, packet.V311)...)
			c.SendRaw(conn, raw)
			first := c.AwaitNext(conn)
			if first.Type() != packet.TypeConnack {
				c.Failf("the first packet from the broker is %s, not CONNACK", wire.Describe(first))
			}
			c.Await(conn, wire.SubackFor(1))
			c.Await(conn, wire.IsType(packet.TypePingresp))
		})

	suite.Must("closes the connection on a second CONNECT",
		ids(spec.V311_3_1_0_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.Send(conn, c.ConnectPacket("dev"))
			closedWithout(c, conn, packet.TypeConnack)
		})

	suite.Must("does not process a CONNECT with a wrong protocol name as MQTT 3.1.1",
		ids(spec.V311_3_1_2_1), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.ProtocolName = "MQTX"
			c.Send(conn, p)
			// The broker may disconnect, or handle the packet under another specification; it
			// must not accept it as 3.1.1, which a CONNACK with return code 0 would mean.
			c.AwaitClosed(conn)
			for _, q := range conn.Pending() {
				if ack, ok := q.(*packet.Connack); ok && ack.Code == packet.ConnAccepted {
					c.Failf("the broker accepted a CONNECT with protocol name %q", p.ProtocolName)
				}
			}
		})

	suite.Must("answers an unsupported protocol level with return code 0x01 and session present 0, then closes",
		ids(spec.V311_3_1_2_2, spec.V311_3_2_2_4, spec.V311_3_2_2_5), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Version = 7 // no MQTT version has protocol level 7
			c.Send(conn, p)
			ack := c.For(spec.V311_3_1_2_2).Await(conn, wire.IsType(packet.TypeConnack)).(*packet.Connack)
			c.For(spec.V311_3_1_2_2).Expect(ack.Code).To(Equal(packet.ConnRefusedProtocolVersion), "CONNACK return code")
			c.For(spec.V311_3_2_2_4).Expect(ack.SessionPresent).To(BeFalse(), "session present with a non-zero return code")
			c.For(spec.V311_3_1_2_2, spec.V311_3_2_2_5).AwaitClosed(conn)
		})

	suite.Must("closes the connection when the reserved CONNECT flag is set",
		ids(spec.V311_3_1_2_3, spec.V311_3_1_4_1), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.ReservedFlag = true
			c.TrySendRaw(conn, packet.Build(p, packet.V311))
			closedWithout(c, conn, packet.TypeConnack)
		})

	suite.Must("closes without CONNACK a CONNECT whose flags and payload disagree",
		ids(spec.V311_3_1_4_1), func(c *suite.C) {
			cases := []struct {
				name string
				raw  func() []byte
			}{
				{"will QoS 3", func() []byte {
					p := c.ConnectPacket("dev")
					p.Will = &packet.Will{Topic: c.Topic("will"), Payload: []byte("x"), QoS: 3}
					return packet.Build(p, packet.V311)
				}},
				{"will QoS 1 without the will flag", func() []byte {
					p := c.ConnectPacket("dev")
					return packet.Build(p, packet.V311, packet.WithConnectFlags(p.Flags()|0x08))
				}},
				{"will retain without the will flag", func() []byte {
					p := c.ConnectPacket("dev")
					return packet.Build(p, packet.V311, packet.WithConnectFlags(p.Flags()|0x20))
				}},
				{"password flag without the user name flag", func() []byte {
					p := c.ConnectPacket("dev")
					p.Username, p.UsernameFlag = "", false
					p.Password, p.PasswordFlag = []byte("secret"), true
					return packet.Build(p, packet.V311)
				}},
				{"user name flag without a user name", func() []byte {
					p := c.ConnectPacket("dev")
					p.Username, p.UsernameFlag, p.Password, p.PasswordFlag = "", false, nil, false
					return packet.Build(p, packet.V311, packet.WithConnectFlags(p.Flags()|0x80))
				}},
				{"client identifier cut short", func() []byte {
					return packet.Build(c.ConnectPacket("dev"), packet.V311, packet.Truncate(3))
				}},
			}
			for _, tc := range cases {
				c.Step("CONNECT with %s", tc.name)
				conn := c.Dial("dev")
				c.TrySendRaw(conn, tc.raw())
				closedWithout(c, conn, packet.TypeConnack)
			}
		})

	suite.Must("accepts ClientIds of 1 to 23 characters from 0-9, a-z and A-Z",
		ids(spec.V311_3_1_3_5), func(c *suite.C) {
			long := c.ClientID("Z")
			long += strings.Repeat("Q", 23-len(long))
			for _, id := range []string{long, c.Unique()[:1]} {
				c.Step("ClientId %q (%d characters)", id, len(id))
				conn := c.Dial("dev")
				p := c.ConnectPacket("dev")
				p.ClientID = id
				ack := c.Handshake(conn, p)
				c.Expect(ack.Code).To(Equal(packet.ConnAccepted), "CONNACK return code for ClientId %q", id)
				c.Disconnect(conn)
			}
		})

	suite.Must("gives clients with a zero-byte ClientId and CleanSession 1 identifiers of their own",
		ids(spec.V311_3_1_3_6), func(c *suite.C) {
			var conns []*wire.Conn
			for _, role := range []string{"anon1", "anon2"} {
				conn := c.Dial(role)
				p := c.ConnectPacket(role)
				p.ClientID = ""
				ack := c.Handshake(conn, p)
				if ack.Code == packet.ConnRefusedIdentifierRejected {
					c.NotSupported("the broker refuses zero-byte ClientIds (return code 0x02), which 3.1.1 allows")
				}
				c.Expect(ack.Code).To(Equal(packet.ConnAccepted), "CONNACK return code")
				conns = append(conns, conn)
			}
			// Were they given the same identifier, the second connection would have taken over
			// the first (MQTT-3.1.4-2); each must instead work as a client of its own.
			for i, conn := range conns {
				topic := c.Topic("anon", string(rune('a'+i)))
				codes := c.Subscribe(conn, 0, topic)
				c.Expect(codes[0]).NotTo(Equal(packet.SubackFailure))
				c.Send(conn, flows.Pub(topic, "hello", 0, false))
				c.AwaitPublish(conn, wire.PublishOn(topic))
			}
		})

	suite.Must("rejects a zero-byte ClientId with CleanSession 0 with return code 0x02, then closes",
		ids(spec.V311_3_1_3_8, spec.V311_3_1_3_9, spec.V311_3_2_2_4, spec.V311_3_2_2_5), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.ClientID, p.CleanStart = "", false
			c.Send(conn, p)
			ack := c.For(spec.V311_3_1_3_8, spec.V311_3_1_3_9).Await(conn, wire.IsType(packet.TypeConnack)).(*packet.Connack)
			c.For(spec.V311_3_1_3_8, spec.V311_3_1_3_9).Expect(ack.Code).To(Equal(packet.ConnRefusedIdentifierRejected), "CONNACK return code")
			c.For(spec.V311_3_2_2_4).Expect(ack.SessionPresent).To(BeFalse(), "session present with a non-zero return code")
			c.For(spec.V311_3_1_3_8, spec.V311_3_1_3_9, spec.V311_3_2_2_5).AwaitClosed(conn)
		})

	suite.Must("disconnects the existing client when another connects with the same ClientId",
		ids(spec.V311_3_1_4_2), func(c *suite.C) {
			first, _ := c.Connect("dev")
			second, _ := c.Connect("dev")
			c.AwaitClosed(first)
			c.Send(second, &packet.Pingreq{})
			c.Await(second, wire.IsType(packet.TypePingresp))
		})

	suite.Must("processes nothing a client sends after a CONNECT it rejects",
		ids(spec.V311_3_1_4_5), func(c *suite.C) {
			topic := c.Topic("after-reject")
			watcher := flows.Subscriber(c, "watch", 0, topic)
			conn := c.Dial("dev")
			bad := c.ConnectPacket("dev")
			bad.Version = 7
			raw := append(packet.Build(bad, packet.V311), packet.Build(flows.Pub(topic, "must not be processed", 0, true), packet.V311)...)
			c.SendRaw(conn, raw)
			ack := c.Await(conn, wire.IsType(packet.TypeConnack)).(*packet.Connack)
			c.Expect(ack.Code).NotTo(Equal(packet.ConnAccepted))
			c.AwaitClosed(conn)
			c.AwaitNothing(watcher, wire.PublishOn(topic))
			late := flows.Subscriber(c, "late", 0, topic)
			c.AwaitNothing(late, wire.PublishOn(topic))
		})
})
