package v5

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// unknownAuthMethod is an Authentication Method no broker supports: a CONNECT carrying it must
// be refused (section 4.12).
const unknownAuthMethod = "gatehouse-unknown-method"

// refusedConnect waits for the broker to close conn after a CONNECT it must not accept. Before
// closing it may send a CONNACK with a Reason Code of 0x80 or more (sections 3.1.4 and 4.13); it
// must not accept the CONNECT (a CONNACK with 0x00) nor send anything else. The CONNACK is read
// from the raw bytes, so that one in another version's layout counts too. It returns the refusal
// code, if a CONNACK came.
func refusedConnect(c *suite.C, conn *wire.Conn) (packet.ReasonCode, bool) {
	c.AwaitClosed(conn)
	var code packet.ReasonCode
	var got bool
	for _, e := range c.Trace().Events() {
		if e.Dir != wire.Received || e.Conn != conn.Name() || len(e.Raw) < 4 {
			continue
		}
		switch packet.Type(e.Raw[0] >> 4) {
		case packet.TypeConnack:
			code, got = packet.ReasonCode(e.Raw[3]), true
			if code == packet.Success {
				c.Failf("%s: the broker accepted the CONNECT (CONNACK 0x00)", conn.Name())
			}
		}
	}
	for _, p := range conn.Pending() {
		if p.Type() != packet.TypeConnack {
			c.Failf("%s: the broker sent %s in answer to a CONNECT it must refuse", conn.Name(), wire.Describe(p))
		}
	}
	return code, got
}

var _ = describe("CONNECT and CONNACK", func() {
	suite.Must("accepts a valid CONNECT with CONNACK 0x00 and Session Present 0 under Clean Start 1",
		ids(spec.V5_3_1_4_5, spec.V5_3_2_2_2, spec.V5_3_1_2_4), func(c *suite.C) {
			_, ack := c.Connect("dev")
			c.Expect(ack.Code).To(Equal(packet.Success), "CONNACK reason code")
			c.Expect(ack.SessionPresent).To(BeFalse(), "Session Present with Clean Start 1")
		})

	suite.Must("sends CONNACK first, and only once, when packets follow the CONNECT at once",
		ids(spec.V5_3_2_0_1, spec.V5_3_2_0_2), func(c *suite.C) {
			conn := c.Dial("dev")
			// A client may send further packets before the CONNACK arrives (section 3.1.4).
			raw := packet.Build(c.ConnectPacket("dev"), v5)
			raw = append(raw, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 1}}}, v5)...)
			raw = append(raw, packet.Build(&packet.Publish{Topic: c.Topic("a"), QoS: 0, Payload: []byte("x")}, v5)...)
			c.SendRaw(conn, append(raw, packet.Build(&packet.Pingreq{}, v5)...))
			first := c.AwaitNext(conn)
			if ack, ok := first.(*packet.Connack); !ok || ack.Code != packet.Success {
				c.Failf("the first packet from the broker is %s, not CONNACK 0x00", wire.Describe(first))
			}
			c.Await(conn, wire.SubackFor(1))
			c.Await(conn, wire.IsType(packet.TypePingresp))
			c.Sync(conn)
			if n := len(received(c, packet.TypeConnack)); n != 1 {
				c.Failf("the broker sent %d CONNACKs on one connection", n)
			}
		})

	suite.Must("closes the connection on a second CONNECT without a second CONNACK",
		ids(spec.V5_3_1_0_2, spec.V5_3_2_0_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.Send(conn, c.ConnectPacket("dev"))
			closedWithout(c, conn, packet.TypeConnack)
		})

	suite.Must("does not accept a CONNECT whose protocol name is not MQTT, and closes the connection",
		ids(spec.V5_3_1_2_1), func(c *suite.C) {
			for _, name := range []string{"MQTX", "MQIsdp"} {
				c.Step("protocol name %q with protocol version 5", name)
				conn := c.Dial("dev")
				p := c.ConnectPacket("dev")
				p.ProtocolName = name
				c.TrySendRaw(conn, packet.Build(p, v5))
				// CONNACK 0x84 before the close is allowed, not required.
				refusedConnect(c, conn)
			}
		})

	suite.Must("refuses a protocol version it does not speak, with CONNACK 0x84 or none, and closes",
		ids(spec.V5_3_1_2_2), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Version = 7 // no MQTT version has protocol level 7
			c.TrySendRaw(conn, packet.Build(p, v5))
			refusedConnect(c, conn)
		})

	suite.Must("treats a CONNECT with the reserved flag set as malformed and closes the connection",
		ids(spec.V5_3_1_2_3, spec.V5_3_1_4_1), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.ReservedFlag = true
			c.TrySendRaw(conn, packet.Build(p, v5))
			refusedConnect(c, conn)
		})

	suite.Must("closes without accepting a CONNECT that breaks the format of section 3.1",
		ids(spec.V5_3_1_4_1), func(c *suite.C) {
			cases := []struct {
				name string
				raw  func() []byte
			}{
				{"Will QoS 3", func() []byte {
					p := c.ConnectPacket("dev")
					p.Will = &packet.Will{Topic: c.Topic("will"), Payload: []byte("x"), QoS: 3}
					return packet.Build(p, v5)
				}},
				{"Will QoS 1 without the Will Flag", func() []byte {
					p := c.ConnectPacket("dev")
					return packet.Build(p, v5, packet.WithConnectFlags(p.Flags()|0x08))
				}},
				{"Will Retain without the Will Flag", func() []byte {
					p := c.ConnectPacket("dev")
					return packet.Build(p, v5, packet.WithConnectFlags(p.Flags()|0x20))
				}},
				{"the Session Expiry Interval twice", func() []byte {
					p := c.ConnectPacket("dev")
					p.Props.Raw = []packet.RawProperty{{ID: packet.PropSessionExpiry, Value: []byte{0, 0, 0, 1}}, {ID: packet.PropSessionExpiry, Value: []byte{0, 0, 0, 2}}}
					return packet.Build(p, v5)
				}},
				{"a Topic Alias property, which CONNECT cannot carry", func() []byte {
					p := c.ConnectPacket("dev")
					p.Props.Raw = []packet.RawProperty{{ID: packet.PropTopicAlias, Value: []byte{0, 1}}}
					return packet.Build(p, v5)
				}},
				{"Receive Maximum 0", func() []byte {
					p := c.ConnectPacket("dev")
					p.Props.Present.Add(packet.PropReceiveMaximum)
					return packet.Build(p, v5)
				}},
				{"Maximum Packet Size 0", func() []byte {
					p := c.ConnectPacket("dev")
					p.Props.Present.Add(packet.PropMaximumPacketSize)
					return packet.Build(p, v5)
				}},
				{"Request Problem Information 2", func() []byte {
					p := c.ConnectPacket("dev")
					p.Props.RequestProblemInfo = 2
					return packet.Build(p, v5)
				}},
				{"a property length beyond the packet", func() []byte {
					p := c.ConnectPacket("dev")
					p.KeepAlive = 0
					// The property length is the byte after the keepalive: protocol name (6),
					// level (1), flags (1), keepalive (2).
					return packet.Build(p, v5, packet.SetBody(10, 0x7F))
				}},
				{"the Client Identifier cut short", func() []byte {
					return packet.Build(c.ConnectPacket("dev"), v5, packet.Truncate(3))
				}},
			}
			for _, tc := range cases {
				c.Step("CONNECT with %s", tc.name)
				conn := c.Dial("dev")
				c.TrySendRaw(conn, tc.raw())
				refusedConnect(c, conn)
			}
		})

	suite.Must("accepts Client Identifiers of 1 to 23 characters from 0-9, a-z and A-Z",
		ids(spec.V5_3_1_3_5), func(c *suite.C) {
			long := c.ClientID("Z")
			long += strings.Repeat("Q", 23-len(long))
			for _, id := range []string{long, c.Unique()[:1]} {
				c.Step("Client Identifier %q (%d characters)", id, len(id))
				conn := c.Dial("dev")
				p := c.ConnectPacket("dev")
				p.ClientID = id
				ack := c.Handshake(conn, p)
				c.Expect(ack.Code).To(Equal(packet.Success), "CONNACK reason code for Client Identifier %q", id)
				c.Disconnect(conn)
			}
		})

	suite.Must("assigns a unique Client Identifier to a zero-length one, returns it in CONNACK and uses it for the Session",
		ids(spec.V5_3_1_3_6, spec.V5_3_1_3_7, spec.V5_3_2_2_16, spec.V5_3_2_2_3), func(c *suite.C) {
			var assigned []string
			var conns []*wire.Conn
			for _, role := range []string{"anon1", "anon2"} {
				conn := c.Dial(role)
				p := c.ConnectPacket(role)
				p.ClientID = ""
				p.Props.SessionExpiry = 60
				ack := c.Handshake(conn, p)
				if ack.Code == packet.ClientIdentifierNotValid {
					c.NotSupported("the broker refuses zero-length Client Identifiers (CONNACK 0x85), which MQTT 5.0 allows")
				}
				c.Expect(ack.Code).To(Equal(packet.Success), "CONNACK reason code")
				id := ack.Props.AssignedClientID
				if !ack.Props.Present.Has(packet.PropAssignedClientID) || id == "" {
					c.For(spec.V5_3_1_3_7, spec.V5_3_2_2_16).Failf("%s: CONNACK has no Assigned Client Identifier", role)
				}
				assigned = append(assigned, id)
				conns = append(conns, conn)
			}
			c.For(spec.V5_3_1_3_6, spec.V5_3_2_2_16).Expect(assigned[0]).NotTo(Equal(assigned[1]), "the Assigned Client Identifiers of two clients")
			topic := c.Topic("cmd")
			flows.Subscribe(c, conns[0], 1, topic)
			c.Disconnect(conns[0])
			c.Step("reconnecting with the assigned identifier finds the Session")
			conn := c.Dial("again")
			p := c.ConnectPacket("again")
			p.ClientID, p.CleanStart, p.Props.SessionExpiry = assigned[0], false, 60
			ack := c.Handshake(conn, p)
			c.For(spec.V5_3_1_3_7).Expect(ack.Code).To(Equal(packet.Success), "CONNACK reason code when reconnecting as %q", assigned[0])
			c.For(spec.V5_3_2_2_3).Expect(ack.SessionPresent).To(BeTrue(), "Session Present for the assigned identifier")
			p2, _ := c.Connect("ctl")
			c.PutMsg(p2, topic, "open", 1, false)
			c.For(spec.V5_3_1_3_7).AwaitPublish(conn, wire.PublishWith(topic, []byte("open")))
		})

	suite.Must("closes the connection after refusing a Client Identifier",
		ids(spec.V5_3_1_3_8, spec.V5_3_2_2_6, spec.V5_3_2_2_7), func(c *suite.C) {
			candidates := []struct{ name, id string }{
				{"characters outside 0-9a-zA-Z", "gh/" + c.Unique() + "#+ü"},
				{"a length of 2,000 bytes", "gh" + c.Unique() + strings.Repeat("x", 2000)},
			}
			refused := false
			for _, cand := range candidates {
				c.Step("Client Identifier with %s", cand.name)
				conn := c.Dial("dev")
				p := c.ConnectPacket("dev")
				p.ClientID = cand.id
				ack := c.Handshake(conn, p)
				if ack.Code == packet.Success {
					c.Disconnect(conn)
					continue
				}
				refused = true
				c.Expect(ack.Code.IsError()).To(BeTrue(), "CONNACK reason code %s refusing a Client Identifier", flows.CodeName(ack.Code))
				c.Expect(ack.SessionPresent).To(BeFalse(), "Session Present with a refusal")
				c.AwaitClosed(conn)
			}
			if !refused {
				c.NotSupported("the broker accepts every Client Identifier tried; a refusal cannot be observed")
			}
		})

	suite.Must("sends the existing client DISCONNECT 0x8E and closes it when another connects with its Client Identifier",
		ids(spec.V5_3_1_4_3), func(c *suite.C) {
			first, _ := c.Connect("dev")
			second, _ := c.Connect("dev")
			c.AwaitClosed(first)
			code, ok := disconnectCode(first)
			if !ok {
				c.Failf("the existing connection was closed without DISCONNECT")
			}
			c.Expect(code).To(Equal(packet.SessionTakenOver), "DISCONNECT reason code to the existing client")
			c.Sync(second)
		})

	suite.Must("refuses a CONNECT with an Authentication Method it does not support and closes the connection",
		ids(spec.V5_3_1_4_2, spec.V5_4_12_0_1, spec.V5_4_12_0_4, spec.V5_3_2_2_7, spec.V5_4_13_2_1), func(c *suite.C) {
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Props.AuthMethod = unknownAuthMethod
			c.Send(conn, p)
			code, got := refusedConnect(c, conn)
			// 0x8C (Bad authentication method) and 0x87 (Not authorized) are the codes section
			// 4.12 names; another error code still refuses.
			if got {
				c.For(spec.V5_4_12_0_1).Expect(code).To(BeElementOf(packet.BadAuthenticationMethod, packet.NotAuthorized), "CONNACK reason code for an unsupported Authentication Method")
			}
		})

	suite.Must("processes nothing a client sent after a CONNECT it refused",
		ids(spec.V5_3_1_4_6), func(c *suite.C) {
			topic := c.Topic("after-refusal")
			watcher := flows.Subscriber(c, "watch", 0, topic)
			conn := c.Dial("dev")
			bad := c.ConnectPacket("dev")
			bad.Props.AuthMethod = unknownAuthMethod
			raw := append(packet.Build(bad, v5), packet.Build(flows.Pub(topic, "must not be processed", 0, true), v5)...)
			c.SendRaw(conn, raw)
			refusedConnect(c, conn)
			c.AwaitNothing(watcher, wire.PublishOn(topic))
			if c.Env.Has(spec.Version5, suite.FeatureRetain) {
				c.Step("nor was the message stored as retained")
				late := flows.Subscriber(c, "late", 0, topic)
				c.AwaitNothing(late, wire.PublishOn(topic))
			}
		})

	suite.Must("sets the reserved CONNACK flag bits to 0 and sends only the Connect Reason Codes of Table 3-1",
		ids(spec.V5_3_2_2_1, spec.V5_3_2_2_8), func(c *suite.C) {
			c.Connect("dev", c.Persistent())
			c.Connect("dev", c.Persistent(), resume)
			conn := c.Dial("bad")
			p := c.ConnectPacket("bad")
			p.Props.AuthMethod = unknownAuthMethod
			c.Send(conn, p)
			c.AwaitClosed(conn)
			acks := received(c, packet.TypeConnack)
			c.Expect(acks).To(HaveLen(3), "CONNACKs received")
			for _, e := range acks {
				if e.Raw[2]&0xFE != 0 {
					c.For(spec.V5_3_2_2_1).Failf("CONNACK acknowledge flags 0x%02X: bits 7-1 are reserved", e.Raw[2])
				}
				if code := e.Packet.(*packet.Connack).Code; !connackCodes[code] {
					c.For(spec.V5_3_2_2_8).Failf("CONNACK reason code %s is not in Table 3-1", flows.CodeName(code))
				}
			}
		})

	suite.Must("sets Session Present 0 in a CONNACK that refuses, even when a Session exists",
		ids(spec.V5_3_2_2_6, spec.V5_3_2_2_7), func(c *suite.C) {
			conn, _ := c.Connect("dev", c.Persistent())
			c.Disconnect(conn)
			conn = c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.CleanStart, p.Props.SessionExpiry = false, 3600
			p.Props.AuthMethod = unknownAuthMethod
			ack := c.Handshake(conn, p)
			c.Expect(ack.Code.IsError()).To(BeTrue(), "CONNACK reason code %s for an unsupported Authentication Method", flows.CodeName(ack.Code))
			c.Expect(ack.SessionPresent).To(BeFalse(), "Session Present of a refusing CONNACK")
			c.AwaitClosed(conn)
		})

	suite.Must("accepts QoS 1 and QoS 2 messages unless its CONNACK announces a lower Maximum QoS",
		ids(spec.V5_3_2_2_9, spec.V5_3_3_4_1), func(c *suite.C) {
			maxQoS := packet.QoS(2)
			if ack := c.Env.Caps[spec.Version5].Connack; ack != nil && ack.Props.Present.Has(packet.PropMaximumQoS) {
				maxQoS = packet.QoS(ack.Props.MaximumQoS)
			}
			topic := c.Topic("q")
			conn, ack := c.Connect("pub")
			if ack.Props.Present.Has(packet.PropMaximumQoS) {
				c.Expect(packet.QoS(ack.Props.MaximumQoS)).To(Equal(maxQoS), "Maximum QoS of this CONNACK and of the probe's")
			}
			for q := packet.QoS(1); q <= maxQoS; q++ {
				c.Step("a QoS %d PUBLISH, which the CONNACK did not rule out", q)
				id := c.NextID(conn)
				c.Send(conn, &packet.Publish{Topic: topic, QoS: q, PacketID: id, Payload: []byte("x")})
				want := wire.PubackFor(id)
				if q == 2 {
					want = wire.PubrecFor(id)
				}
				// The acknowledgement itself is MQTT-3.3.4-1's; its reason code is this check's.
				in := c.For(spec.V5_3_3_4_1).Await(conn, want)
				var code packet.ReasonCode
				switch a := in.(type) {
				case *packet.Puback:
					code = a.Code
				case *packet.Pubrec:
					code = a.Code
					c.Send(conn, &packet.Pubrel{PacketID: id})
					c.Sync(conn)
				}
				c.For(spec.V5_3_2_2_9).Expect(code).To(BeElementOf(packet.Success, packet.NoMatchingSubscribers), "reason code of the acknowledgement of a QoS %d PUBLISH", q)
			}
		})

	suite.Must("accepts SUBSCRIBE at QoS 0, 1 and 2 whatever Maximum QoS it supports, granting no more than it",
		ids(spec.V5_3_2_2_10, spec.V5_3_8_4_7), func(c *suite.C) {
			maxQoS := packet.QoS(2)
			if ack := c.Env.Caps[spec.Version5].Connack; ack != nil && ack.Props.Present.Has(packet.PropMaximumQoS) {
				maxQoS = packet.QoS(ack.Props.MaximumQoS)
			}
			conn, _ := c.Connect("sub")
			got := c.SubscribeWith(conn,
				packet.Subscription{Filter: c.Topic("q0"), QoS: 0},
				packet.Subscription{Filter: c.Topic("q1"), QoS: 1},
				packet.Subscription{Filter: c.Topic("q2"), QoS: 2})
			for i, code := range got {
				if code.IsError() || packet.QoS(code) > maxQoS {
					c.For(spec.V5_3_2_2_10).Failf("SUBACK %s for a QoS %d subscription (Maximum QoS %d)", flows.CodeName(code), i, maxQoS)
				}
				if packet.QoS(code) > packet.QoS(i) {
					c.For(spec.V5_3_8_4_7).Failf("SUBACK %s grants more than the QoS %d requested", flows.CodeName(code), i)
				}
			}
			c.Sync(conn)
		})

	suite.Must("refuses a Will QoS above its Maximum QoS and closes the connection",
		ids(spec.V5_3_2_2_12), func(c *suite.C) {
			ack := c.Env.Caps[spec.Version5].Connack
			if ack == nil || !ack.Props.Present.Has(packet.PropMaximumQoS) || ack.Props.MaximumQoS >= 2 {
				c.NotSupported("the broker supports QoS 2, so no Will QoS is above its Maximum QoS")
			}
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Will = &packet.Will{Topic: c.Topic("will"), Payload: []byte("x"), QoS: packet.QoS(ack.Props.MaximumQoS + 1)}
			c.Send(conn, p)
			refusedConnect(c, conn)
		})

	suite.Must("refuses a Will Retain of 1 when it does not support retained messages, and closes the connection",
		ids(spec.V5_3_2_2_13), func(c *suite.C) {
			if c.Env.Has(spec.Version5, suite.FeatureRetain) {
				c.NotSupported("the broker supports retained messages, so a retained will is valid")
			}
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Will = &packet.Will{Topic: c.Topic("will"), Payload: []byte("x"), Retain: true}
			c.Send(conn, p)
			refusedConnect(c, conn)
		})

	suite.Must("returns no Response Information when the client did not request it",
		ids(spec.V5_3_1_2_28), func(c *suite.C) {
			_, ack := c.Connect("dev")
			c.Expect(ack.Props.Present.Has(packet.PropResponseInfo)).To(BeFalse(), "Response Information without Request Response Information")
			_, ack = c.Connect("dev0", props(func(p *packet.Properties) {
				p.RequestResponseInfo = 0
				p.Present.Add(packet.PropRequestResponseInfo)
			}))
			c.Expect(ack.Props.Present.Has(packet.PropResponseInfo)).To(BeFalse(), "Response Information with Request Response Information 0")
		})

	suite.Must("sends no AUTH and no Authentication Method to a client whose CONNECT had none",
		ids(spec.V5_4_12_0_6), func(c *suite.C) {
			conn, ack := c.Connect("dev")
			c.Expect(ack.Props.Present.Has(packet.PropAuthMethod)).To(BeFalse(), "Authentication Method in CONNACK")
			c.Send(conn, &packet.Pingreq{})
			c.Await(conn, wire.IsType(packet.TypePingresp))
			if n := len(received(c, packet.TypeAuth)); n > 0 {
				c.Failf("the broker sent %d AUTH packets to a client that did not ask for enhanced authentication", n)
			}
		})
})

var _ = describe("Keep Alive and Request Problem Information", func() {
	suite.Must("closes a connection silent for one and a half times its Keep Alive, the client's own when the CONNACK sets none, and publishes its will",
		ids(spec.V5_3_1_2_22, spec.V5_3_2_2_22, spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			// Two keepalives whose deadlines are 1.5 s apart: a broker that looks for silent
			// clients only every few seconds cannot meet both by luck.
			type device struct {
				conn     *wire.Conn
				deadline time.Time
			}
			var devs []device
			for _, ka := range []uint16{1, 2} {
				role := fmt.Sprintf("dev%d", ka)
				conn, ack := c.Connect(role, func(p *packet.Connect) { p.KeepAlive = ka }, flows.WithWill(topic, role, 0, false))
				keep := time.Duration(ka) * time.Second
				if ack.Props.Present.Has(packet.PropServerKeepAlive) {
					keep = time.Duration(ack.Props.ServerKeepAlive) * time.Second
					c.Step("the broker imposes Server Keep Alive %s on %s", keep, role)
					if keep == 0 || keep > 2*time.Second {
						c.NotSupported("the broker imposes a Server Keep Alive of %s instead of the %d s asked for: too long to wait for", keep, ka)
					}
				}
				devs = append(devs, device{conn, time.Now().Add(keep * 3 / 2)})
			}
			const slack = 500 * time.Millisecond
			c.Step("the devices stop sending: each must be closed within 1.5 × its keepalive (+%s)", slack)
			for _, d := range devs {
				c.For(spec.V5_3_1_2_22, spec.V5_3_2_2_22).AwaitClosedWithin(d.conn, time.Until(d.deadline)+slack)
			}
			for _, d := range devs {
				flows.AwaitWill(c, sub, topic, d.conn.Name())
			}
		})

	suite.Must("puts no Reason String or User Property on packets other than PUBLISH, CONNACK and DISCONNECT when Request Problem Information is 0",
		ids(spec.V5_3_1_2_29), func(c *suite.C) {
			conn, _ := c.Connect("dev", props(func(p *packet.Properties) {
				p.RequestProblemInfo = 0
				p.Present.Add(packet.PropRequestProblemInfo)
			}))
			c.Step("packets a broker may explain: PUBACK and PUBREC 0x10, PUBCOMP 0x92, UNSUBACK 0x11, SUBACK errors")
			c.Send(conn, &packet.Publish{Topic: c.Topic("nobody"), QoS: 1, PacketID: 1, Payload: []byte("x")})
			c.Send(conn, &packet.Publish{Topic: c.Topic("nobody"), QoS: 2, PacketID: 2, Payload: []byte("x")})
			c.Send(conn, &packet.Pubrel{PacketID: 2})
			c.Send(conn, &packet.Pubrel{PacketID: 0x7777})
			c.Send(conn, &packet.Unsubscribe{PacketID: 3, Filters: []string{c.Topic("never")}})
			if c.Env.Has(spec.Version5, suite.FeatureACL) {
				c.Send(conn, &packet.Subscribe{PacketID: 4, Subscriptions: []packet.Subscription{{Filter: c.Env.DeniedTopic}}})
			}
			c.Sync(conn)
			for _, e := range receivedEvents(c) {
				switch e.Packet.(type) {
				case *packet.Connack, *packet.Disconnect:
					// The two packets that may carry them whatever the client asked.
					continue
				}
				if pr := ackProps(e.Packet); pr != nil && (pr.ReasonString != "" || len(pr.User) > 0) {
					c.Failf("%s carries a Reason String or User Property although the client set Request Problem Information 0", wire.Describe(e.Packet))
				}
			}
		})
})
