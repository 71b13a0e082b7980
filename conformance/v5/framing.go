package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// exchange drives a connection through packets of every type a broker sends a client —
// CONNACK, PUBLISH of each QoS (long enough for a two-byte Remaining Length), PUBACK, PUBREC,
// PUBREL, PUBCOMP (including ones with error Reason Codes), SUBACK, UNSUBACK, PINGRESP and
// DISCONNECT (a take-over) — without judging any of them: the checks below judge the trace.
// Acknowledgements are waited for only as long as a check's window, so that a broker that
// leaves one out fails the checks of that acknowledgement, not these.
func exchange(c *suite.C) {
	topic := c.Topic("x")
	sub, _ := c.Connect("sub", c.Persistent())
	s := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: topic, QoS: 2}}}
	if c.Env.Has(spec.Version5, suite.FeatureSubscriptionIDs) {
		s.Props.SubscriptionIDs = []uint32{300}
	}
	c.Send(sub, s)
	c.Await(sub, wire.SubackFor(1))
	p, _ := c.Connect("pub")
	long := make([]byte, 200)
	for q := packet.QoS0; q <= 2; q++ {
		m := &packet.Publish{Topic: topic, QoS: q, Payload: long}
		m.Props.User = []packet.UserProperty{{Key: "k", Value: "v"}}
		c.Put(p, m)
	}
	for range 3 {
		in, err := sub.ExpectPacket(c.Timeout(), wire.PublishOn(topic))
		if err != nil {
			break
		}
		m := in.(*packet.Publish)
		switch m.QoS {
		case 1:
			c.Send(sub, &packet.Puback{PacketID: m.PacketID})
		case 2:
			c.Send(sub, &packet.Pubrec{PacketID: m.PacketID})
			_, _ = sub.ExpectPacket(c.Timeout(), wire.PubrelFor(m.PacketID))
			c.Send(sub, &packet.Pubcomp{PacketID: m.PacketID})
		}
	}
	c.Step("acknowledgements with error Reason Codes")
	id := c.NextID(p)
	c.Send(p, &packet.Publish{Topic: c.Topic("nobody"), QoS: 1, PacketID: id, Payload: []byte("x")})
	_, _ = p.ExpectPacket(c.Window(), wire.PubackFor(id))
	c.Send(p, &packet.Pubrel{PacketID: 0x7777})
	_, _ = p.ExpectPacket(c.Window(), wire.PubcompFor(0x7777))
	c.Send(sub, &packet.Unsubscribe{PacketID: 2, Filters: []string{c.Topic("never")}})
	_, _ = sub.ExpectPacket(c.Timeout(), wire.UnsubackFor(2))
	c.Sync(sub)
	c.Step("a take-over, for a DISCONNECT from the broker")
	c.Connect("sub", c.Persistent())
	_ = sub.ExpectClosed(c.Timeout())
}

// fixedHeaderFirstByte is the first byte of every packet a Server sends, from Table 2-2: the
// type and its reserved flags (PUBLISH is not fixed).
var fixedHeaderFirstByte = map[packet.Type]byte{
	packet.TypeConnack: 0x20, packet.TypePuback: 0x40, packet.TypePubrec: 0x50, packet.TypePubrel: 0x62,
	packet.TypePubcomp: 0x70, packet.TypeSuback: 0x90, packet.TypeUnsuback: 0xB0, packet.TypePingresp: 0xD0,
	packet.TypeDisconnect: 0xE0, packet.TypeAuth: 0xF0,
}

// minimalVarint reports whether the Variable Byte Integer at the start of b uses the fewest
// bytes its value needs, and how long it is.
func minimalVarint(b []byte) (ok bool, n int) {
	v, n, err := packet.ReadVarint(b)
	if err != nil {
		return false, 0
	}
	return n == packet.VarintSize(v), n
}

// receivedEvents returns the trace events of packets (or bytes) the broker sent.
func receivedEvents(c *suite.C) []wire.Event {
	var out []wire.Event
	for _, e := range c.Trace().Events() {
		if e.Dir == wire.Received && len(e.Raw) > 0 {
			out = append(out, e)
		}
	}
	return out
}

var _ = describe("Packet format, PINGREQ, DISCONNECT", func() {
	suite.Must("sends every packet with the fixed header flags Table 2-2 reserves",
		ids(spec.V5_2_1_3_1), func(c *suite.C) {
			exchange(c)
			for _, e := range receivedEvents(c) {
				t := packet.Type(e.Raw[0] >> 4)
				if want, ok := fixedHeaderFirstByte[t]; ok && e.Raw[0] != want {
					c.Failf("%s sent with first byte 0x%02X, want 0x%02X", t, e.Raw[0], want)
				}
				if t == packet.TypePublish && e.Raw[0]&0x06 == 0x06 {
					c.Failf("PUBLISH sent with both QoS bits set (first byte 0x%02X)", e.Raw[0])
				}
			}
		})

	suite.Must("encodes every Variable Byte Integer in the fewest bytes",
		ids(spec.V5_1_5_5_1), func(c *suite.C) {
			exchange(c)
			for _, e := range receivedEvents(c) {
				if ok, _ := minimalVarint(e.Raw[1:]); !ok {
					c.Failf("Remaining Length of a %s is not minimally encoded: % x", packet.Type(e.Raw[0]>>4), e.Raw[1:min(len(e.Raw), 6)])
				}
				pub, isPub := e.Packet.(*packet.Publish)
				if !isPub {
					continue
				}
				// The Property Length follows the Topic Name and, for QoS 1 and 2, the Packet
				// Identifier.
				_, n := minimalVarint(e.Raw[1:])
				at := 1 + n + 2 + len(pub.Topic)
				if pub.QoS > 0 {
					at += 2
				}
				if ok, _ := minimalVarint(e.Raw[at:]); !ok {
					c.Failf("Property Length of a PUBLISH is not minimally encoded: % x", e.Raw[at:min(len(e.Raw), at+5)])
				}
			}
		})

	suite.Must("sends well-formed packets: a Property Length in every packet that has properties, zero when there are none",
		ids(spec.V5_2_2_2_1), func(c *suite.C) {
			exchange(c)
			for _, e := range receivedEvents(c) {
				if e.Packet == nil {
					c.Failf("the broker sent a packet that does not decode: %v [% x]", e.Err, e.Raw[:min(len(e.Raw), 24)])
				}
			}
			// A SUBACK and a CONNACK always have a Property Length; with no properties it is the
			// single byte 0 right after the variable header.
			for _, e := range received(c, packet.TypeSuback) {
				if sa := e.Packet.(*packet.Suback); sa.Props.Present == 0 && len(sa.Props.User) == 0 && e.Raw[4] != 0 {
					c.Failf("SUBACK without properties has Property Length 0x%02X", e.Raw[4])
				}
			}
		})

	suite.Must("sends only the Reason Codes each acknowledgement and DISCONNECT may carry",
		ids(spec.V5_3_4_2_1, spec.V5_3_5_2_1, spec.V5_3_6_2_1, spec.V5_3_7_2_1, spec.V5_3_14_2_1), func(c *suite.C) {
			exchange(c)
			f := findings{c: c}
			for _, e := range receivedEvents(c) {
				switch p := e.Packet.(type) {
				case *packet.Puback:
					f.expect(spec.V5_3_4_2_1, pubackCodes[p.Code], "PUBACK Reason Code %s is not a PUBACK Reason Code", flows.CodeName(p.Code))
				case *packet.Pubrec:
					f.expect(spec.V5_3_5_2_1, pubackCodes[p.Code], "PUBREC Reason Code %s is not a PUBREC Reason Code", flows.CodeName(p.Code))
				case *packet.Pubrel:
					f.expect(spec.V5_3_6_2_1, pubrelCodes[p.Code], "PUBREL Reason Code %s is not a PUBREL Reason Code", flows.CodeName(p.Code))
				case *packet.Pubcomp:
					f.expect(spec.V5_3_7_2_1, pubrelCodes[p.Code], "PUBCOMP Reason Code %s is not a PUBCOMP Reason Code", flows.CodeName(p.Code))
				case *packet.Disconnect:
					f.expect(spec.V5_3_14_2_1, serverDisconnectCodes[p.Code], "DISCONNECT Reason Code %s is not one a Server may send", flows.CodeName(p.Code))
				}
			}
			f.report()
		})

	suite.Must("treats packets with reserved fixed header flags set otherwise than Table 2-2 as malformed and closes the connection",
		ids(spec.V5_4_13_1_1), func(c *suite.C) {
			var failed failures
			for _, tc := range []struct {
				name  string
				p     packet.Packet
				flags byte
			}{
				{"PINGREQ with flags 0001", &packet.Pingreq{}, 0x1},
				{"PUBACK with flags 0010", &packet.Puback{PacketID: 1}, 0x2},
				{"PUBCOMP with flags 1000", &packet.Pubcomp{PacketID: 1}, 0x8},
			} {
				c.Step("%s", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, packet.Build(tc.p, v5, packet.WithFlags(tc.flags)))
				failed.add(tc.name, closedProblem(c, conn, packet.TypePingresp))
			}
			failed.report(c)
		})

	suite.Must("treats a PUBREL whose fixed header flags are not 0010 as malformed and closes the connection",
		ids(spec.V5_3_6_1_1), func(c *suite.C) {
			conn, _ := c.Connect("pub")
			c.Send(conn, &packet.Publish{Topic: c.Topic("q2"), QoS: 2, PacketID: 5, Payload: []byte("x")})
			c.Sync(conn)
			c.TrySendRaw(conn, packet.Build(&packet.Pubrel{PacketID: 5}, v5, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypePubcomp)
		})

	suite.Must("treats an AUTH whose fixed header flags are not 0000 as malformed and closes the connection",
		ids(spec.V5_3_15_1_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Auth{Code: packet.ContinueAuthentication}, v5, packet.WithFlags(0x1)))
			closedWithout(c, conn, packet.TypeAuth)
		})

	suite.Must("closes the connection on a malformed packet or protocol error, with a DISCONNECT of 0x80 or more if any",
		ids(spec.V5_4_13_1_1, spec.V5_4_13_2_1), func(c *suite.C) {
			var failed, openAfterDisconnect failures
			for _, tc := range []struct {
				name string
				raw  func() []byte
			}{
				{"a Remaining Length in five bytes", func() []byte { return packet.Build(&packet.Pingreq{}, v5, packet.WithLongRemainingLength(5)) }},
				{"a QoS 1 PUBLISH with Packet Identifier 0", func() []byte {
					return packet.Build(&packet.Publish{Topic: c.Topic("a"), QoS: 1, Payload: []byte("x")}, v5)
				}},
				{"a SUBSCRIBE with Packet Identifier 0", func() []byte {
					return packet.Build(&packet.Subscribe{Subscriptions: []packet.Subscription{{Filter: c.Topic("a")}}}, v5)
				}},
				{"a PUBLISH with a property repeated", func() []byte {
					p := flows.Pub(c.Topic("a"), "x", 0, false)
					p.Props.Raw = []packet.RawProperty{{ID: packet.PropMessageExpiry, Value: []byte{0, 0, 0, 9}}, {ID: packet.PropMessageExpiry, Value: []byte{0, 0, 0, 9}}}
					return packet.Build(p, v5)
				}},
				{"a PUBLISH with an unknown property identifier", func() []byte {
					p := flows.Pub(c.Topic("a"), "x", 0, false)
					p.Props.Raw = []packet.RawProperty{{ID: 0x7E, Value: []byte{1}}}
					return packet.Build(p, v5)
				}},
				{"a CONNACK from the client", func() []byte { return packet.Build(&packet.Connack{}, v5) }},
				{"packet type 0", func() []byte { return []byte{0x00, 0x00} }},
			} {
				c.Step("%s", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, tc.raw())
				_ = conn.Send(&packet.Pingreq{})
				problem := closedProblem(c, conn, packet.TypePingresp)
				if code, sent := disconnectCode(conn); sent && code.IsError() && problem != "" {
					// It said DISCONNECT with an error code and then kept the connection.
					openAfterDisconnect.add(tc.name, problem)
					continue
				}
				failed.add(tc.name, problem)
			}
			openAfterDisconnect.report(c.For(spec.V5_4_13_2_1))
			failed.report(c.For(spec.V5_4_13_1_1))
		})

	suite.Must("answers every PINGREQ with PINGRESP",
		ids(spec.V5_3_12_4_1), flows.PingPong)

	suite.Must("sends no DISCONNECT before it has accepted a CONNECT",
		ids(spec.V5_3_14_0_1), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				raw  []byte
			}{
				{"a PINGREQ before CONNECT", packet.Build(&packet.Pingreq{}, v5)},
				{"a PUBLISH before CONNECT", packet.Build(flows.Pub(c.Topic("a"), "x", 0, false), v5)},
				{"a CONNECT with the reserved flag set", packet.Build(&packet.Connect{ClientID: c.ClientID("dev"), CleanStart: true, ReservedFlag: true}, v5)},
			} {
				c.Step("%s", tc.name)
				conn := c.Dial("dev")
				c.TrySendRaw(conn, tc.raw)
				c.AwaitClosed(conn)
				for _, p := range conn.Pending() {
					if p.Type() == packet.TypeDisconnect {
						c.Failf("the broker sent %s before any successful CONNACK", wire.Describe(p))
					}
				}
			}
		})

	suite.Must("answers a DISCONNECT with reserved flags set as malformed: closes the connection, with DISCONNECT 0x81 if any",
		ids(spec.V5_3_14_1_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Disconnect{}, v5, packet.WithFlags(0x1)))
			c.AwaitClosed(conn)
			if code, ok := disconnectCode(conn); ok {
				c.Expect(code).To(Equal(packet.MalformedPacket), "Reason Code of the DISCONNECT answering a malformed DISCONNECT")
			}
		})

	suite.Must("puts no Session Expiry Interval in a DISCONNECT it sends, sends nothing after it and closes the connection",
		ids(spec.V5_3_14_2_2, spec.V5_3_14_4_1, spec.V5_3_14_4_2), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				do   func(conn *wire.Conn)
			}{
				{"a take-over", func(*wire.Conn) { c.Connect("dev", c.Persistent()) }},
				{"a protocol error", func(conn *wire.Conn) {
					c.TrySendRaw(conn, packet.Build(&packet.Publish{Topic: c.Topic("a"), QoS: 1, Payload: []byte("x")}, v5))
				}},
			} {
				c.Step("%s", tc.name)
				conn, _ := c.Connect("dev", c.Persistent())
				tc.do(conn)
				// A PINGREQ after the trigger: its PINGRESP must not follow a DISCONNECT.
				_ = conn.Send(&packet.Pingreq{})
				if err := conn.ExpectClosed(c.Timeout()); err != nil {
					c.For(spec.V5_3_14_4_2).Failf("%v", err)
				}
				after := false
				for _, p := range conn.Pending() {
					if d, ok := p.(*packet.Disconnect); ok {
						after = true
						c.For(spec.V5_3_14_2_2).Expect(d.Props.Present.Has(packet.PropSessionExpiry)).To(BeFalse(), "Session Expiry Interval in the broker's DISCONNECT")
						continue
					}
					if after {
						c.For(spec.V5_3_14_4_1).Failf("the broker sent %s after its DISCONNECT", wire.Describe(p))
					}
				}
			}
		})
})
