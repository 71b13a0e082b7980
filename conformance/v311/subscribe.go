package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("SUBSCRIBE and SUBACK", func() {
	suite.Must("closes the connection on a SUBSCRIBE whose fixed header flags are not 0010",
		ids(spec.V311_3_8_1_1, spec.V311_2_2_2_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			s := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 0}}}
			c.TrySendRaw(conn, packet.Build(s, packet.V311, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypeSuback)
		})

	suite.Must("closes the connection on a SUBSCRIBE without any topic filter",
		ids(spec.V311_3_8_3_3), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1}, packet.V311))
			closedWithout(c, conn, packet.TypeSuback)
		})

	suite.Must("closes the connection on a SUBSCRIBE with reserved option bits set or requested QoS 3",
		ids(spec.V311_3_8_3_4), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				sub  packet.Subscription
			}{
				{"requested QoS 3", packet.Subscription{Filter: c.Topic("a"), QoS: 3}},
				{"reserved bits 7-2 set", packet.Subscription{Filter: c.Topic("a"), QoS: 1, ReservedBits: 1}},
				{"a 5.0 option (No Local)", packet.Subscription{Filter: c.Topic("a"), QoS: 1, NoLocal: true}},
			} {
				c.Step("SUBSCRIBE with %s", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{tc.sub}}, packet.V311))
				closedWithout(c, conn, packet.TypeSuback)
			}
		})

	suite.Must("answers every SUBSCRIBE with a SUBACK carrying its Packet Identifier",
		ids(spec.V311_3_8_4_1, spec.V311_3_8_4_2, spec.V311_2_3_1_7), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			for _, id := range []uint16{0xBEEF, 1, 0xFFFF} {
				c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 1}}})
				ack := c.For(spec.V311_3_8_4_1).AwaitNext(conn)
				sa, ok := ack.(*packet.Suback)
				if !ok {
					c.For(spec.V311_3_8_4_1).Failf("answer to SUBSCRIBE %d is %s, not SUBACK", id, wire.Describe(ack))
				}
				c.For(spec.V311_3_8_4_2, spec.V311_2_3_1_7).Expect(sa.PacketID).To(Equal(id), "SUBACK Packet Identifier")
			}
		})

	suite.Must("handles several topic filters in one SUBSCRIBE as a sequence: one return code each, in order",
		ids(spec.V311_3_8_4_4, spec.V311_3_8_4_5, spec.V311_3_9_3_1, spec.V311_3_9_3_2, spec.V311_3_8_4_6), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			filters := []packet.Subscription{
				{Filter: c.Topic("q2"), QoS: 2},
				{Filter: c.Topic("q0"), QoS: 0},
				{Filter: c.Topic("q1"), QoS: 1},
			}
			codes := c.SubscribeWith(conn, filters...)
			for i, code := range codes {
				switch {
				case code == packet.SubackFailure:
					c.Failf("the broker refused the valid subscription %q", filters[i].Filter)
				case code > 2:
					c.For(spec.V311_3_9_3_2).Failf("return code 0x%02X for %q is reserved", byte(code), filters[i].Filter)
				case packet.QoS(code) > filters[i].QoS:
					c.For(spec.V311_3_8_4_5, spec.V311_3_9_3_1).Failf("return code %d for %q grants more than the requested QoS %d: the codes are not in the order of the filters, or wrong",
						code, filters[i].Filter, filters[i].QoS)
				}
			}
			p, _ := c.Connect("pub")
			for i, f := range filters {
				c.PutMsg(p, f.Filter, "x", 2, false)
				in := c.AwaitPublish(conn, wire.PublishOn(f.Filter))
				c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS(codes[i])), "QoS of a QoS 2 message on %q (granted %d)", f.Filter, codes[i])
				c.Ack(conn, in)
			}
		})

	suite.Must("delivers messages at the lower of their QoS and the QoS the SUBACK granted",
		ids(spec.V311_3_8_4_6, spec.V311_3_8_4_5), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			subs := []packet.Subscription{{Filter: c.Topic("s0"), QoS: 0}, {Filter: c.Topic("s1"), QoS: 1}, {Filter: c.Topic("s2"), QoS: 2}}
			codes := c.SubscribeWith(conn, subs...)
			p, _ := c.Connect("pub")
			for i, s := range subs {
				granted := packet.QoS(codes[i])
				if codes[i] == packet.SubackFailure || granted > s.QoS {
					c.Failf("SUBACK return code 0x%02X for %q requested at QoS %d", byte(codes[i]), s.Filter, s.QoS)
				}
				for q := packet.QoS0; q <= 2; q++ {
					c.PutMsg(p, s.Filter, "x", q, false)
					in := c.AwaitPublish(conn, wire.PublishOn(s.Filter))
					c.Expect(in.QoS).To(Equal(min(q, granted)), "QoS of a QoS %d message on a subscription granted QoS %d", q, granted)
					c.Ack(conn, in)
				}
			}
		})

	suite.Must("replaces a subscription with the same filter, sends its retained messages again and delivers one copy",
		ids(spec.V311_3_8_4_3, spec.V311_3_8_4_5, spec.V311_3_8_4_6, spec.V311_3_3_1_5, spec.V311_3_3_1_6), func(c *suite.C) {
			topic := c.Topic("state")
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "open", 1, true)
			conn, _ := c.Connect("sub")
			codes := c.Subscribe(conn, 0, topic)
			c.For(spec.V311_3_8_4_5).Expect(codes[0]).To(Equal(packet.GrantedQoS0), "return code of a QoS 0 subscription")
			retained(c, conn, topic)
			codes = c.Subscribe(conn, 1, topic)
			flows.NeedQoS(c, 1, packet.QoS(codes[0]))
			c.Step("the retained message again, for the replacing subscription")
			c.Ack(conn, c.AwaitPublish(conn, wire.PublishWith(topic, []byte("open"))))
			c.PutMsg(p, topic, "closed", 1, false)
			in := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("closed")))
			c.For(spec.V311_3_8_4_3, spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS1), "QoS under the replacing subscription")
			c.Ack(conn, in)
			c.AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("either refuses a wildcard subscription or honours it",
		ids(spec.V311_3_8_3_2), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			codes := c.Subscribe(conn, 0, c.Topic("+", "state"), c.Topic("evt", "#"))
			p, _ := c.Connect("pub")
			for i, t := range []string{c.Topic("g1", "state"), c.Topic("evt", "card")} {
				c.Send(p, flows.Pub(t, "x", 0, false))
				if codes[i] == packet.SubackFailure {
					c.Step("the broker refused the wildcard subscription: nothing may arrive for it")
					c.AwaitNothing(conn, wire.PublishOn(t))
					continue
				}
				c.AwaitPublish(conn, wire.PublishOn(t))
			}
		})
})

var _ = describe("UNSUBSCRIBE and UNSUBACK", func() {
	suite.Must("closes the connection on an UNSUBSCRIBE whose fixed header flags are not 0010",
		ids(spec.V311_3_10_1_1, spec.V311_2_2_2_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Unsubscribe{PacketID: 1, Filters: []string{c.Topic("a")}}, packet.V311, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypeUnsuback)
		})

	suite.Must("closes the connection on an UNSUBSCRIBE without any topic filter",
		ids(spec.V311_3_10_3_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Unsubscribe{PacketID: 1}, packet.V311))
			closedWithout(c, conn, packet.TypeUnsuback)
		})

	suite.Must("answers every UNSUBSCRIBE with an UNSUBACK carrying its Packet Identifier, even when nothing was subscribed",
		ids(spec.V311_3_10_4_4, spec.V311_3_10_4_5, spec.V311_2_3_1_7), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.Subscribe(conn, 0, c.Topic("a"))
			for _, f := range []string{c.Topic("a"), c.Topic("never-subscribed")} {
				c.Send(conn, &packet.Unsubscribe{PacketID: 0xCAFE, Filters: []string{f}})
				ack := c.For(spec.V311_3_10_4_4, spec.V311_3_10_4_5).AwaitNext(conn)
				ua, ok := ack.(*packet.Unsuback)
				if !ok {
					c.For(spec.V311_3_10_4_4, spec.V311_3_10_4_5).Failf("answer to UNSUBSCRIBE of %q is %s, not UNSUBACK", f, wire.Describe(ack))
				}
				c.For(spec.V311_3_10_4_4, spec.V311_2_3_1_7).Expect(ua.PacketID).To(Equal(uint16(0xCAFE)), "UNSUBACK Packet Identifier")
			}
		})

	suite.Must("deletes exactly the subscription whose filter matches character for character",
		ids(spec.V311_3_10_4_1), func(c *suite.C) {
			topic := c.Topic("g", "state")
			conn, _ := c.Connect("sub")
			c.Subscribe(conn, 0, c.Topic("g", "+"), c.Topic("#"))
			c.Step("a filter that matches no subscription textually deletes nothing, though it matches the topic")
			c.Unsubscribe(conn, c.Topic("g", "#"))
			c.Unsubscribe(conn, c.Topic("+"))
			p, _ := c.Connect("pub")
			c.Send(p, flows.Pub(topic, "both", 0, false))
			c.AwaitPublish(conn, wire.PublishOn(topic))
			c.Step("the exact filter deletes its subscription; the other still matches")
			c.Unsubscribe(conn, c.Topic("g", "+"))
			c.Send(p, flows.Pub(c.Topic("other"), "only #", 0, false))
			c.AwaitPublish(conn, wire.PublishOn(c.Topic("other")))
			c.Unsubscribe(conn, c.Topic("#"))
			c.Send(p, flows.Pub(topic, "none", 0, false))
			c.AwaitNothing(conn, wire.PublishUnder(c.Topic()))
		})

	suite.Must("sends nothing more for a deleted subscription",
		ids(spec.V311_3_10_4_2), flows.NothingAfterUnsubscribe)

	suite.Must("completes a QoS 2 delivery it had started before the subscription was deleted",
		ids(spec.V311_3_10_4_3, spec.V311_3_8_4_6), func(c *suite.C) {
			topic := c.Topic("charge")
			conn := flows.Subscriber(c, "sub", 2, topic)
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "4.50", 2, false)
			in := c.AwaitPublish(conn, wire.PublishOn(topic))
			c.For(spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS2), "QoS of a QoS 2 message on a QoS 2 subscription")
			c.Unsubscribe(conn, topic)
			c.Send(conn, &packet.Pubrec{PacketID: in.PacketID})
			c.Await(conn, wire.PubrelFor(in.PacketID))
			c.Send(conn, &packet.Pubcomp{PacketID: in.PacketID})
		})

	suite.Must("handles several topic filters in one UNSUBSCRIBE as a sequence answered by one UNSUBACK",
		ids(spec.V311_3_10_4_6), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			a, b, keep := c.Topic("a"), c.Topic("b"), c.Topic("keep")
			c.Subscribe(conn, 0, a, b, keep)
			c.Unsubscribe(conn, a, b)
			c.Send(conn, &packet.Pingreq{})
			c.Await(conn, wire.IsType(packet.TypePingresp))
			for _, p := range conn.Pending() {
				if p.Type() == packet.TypeUnsuback {
					c.Failf("more than one UNSUBACK for one UNSUBSCRIBE")
				}
			}
			p, _ := c.Connect("pub")
			for _, t := range []string{a, b, keep} {
				c.Send(p, flows.Pub(t, "x", 0, false))
			}
			c.AwaitPublish(conn, wire.PublishOn(keep))
			c.AwaitNothing(conn, wire.Or(wire.PublishOn(a), wire.PublishOn(b)))
		})
})
