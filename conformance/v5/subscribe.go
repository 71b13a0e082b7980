package v5

import (
	"slices"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// subscribeID sends one SUBSCRIBE of filter at qos with Subscription Identifier id and requires
// it granted.
func subscribeID(c *suite.C, conn *wire.Conn, filter string, qos packet.QoS, id uint32) {
	pid := c.NextID(conn)
	s := &packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}
	s.Props.SubscriptionIDs = []uint32{id}
	c.Send(conn, s)
	ack := c.Await(conn, wire.SubackFor(pid)).(*packet.Suback)
	if len(ack.Codes) != 1 || ack.Codes[0].IsError() {
		c.Failf("%s: the broker refused the subscription to %q with Subscription Identifier %d (%s)", conn.Name(), filter, id, wire.Describe(ack))
	}
}

var _ = describe("SUBSCRIBE and SUBACK", func() {
	suite.Must("treats a SUBSCRIBE whose fixed header flags are not 0010 as malformed and closes the connection",
		ids(spec.V5_3_8_1_1, spec.V5_2_1_3_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			s := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 0}}}
			c.TrySendRaw(conn, packet.Build(s, v5, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypeSuback)
		})

	suite.Must("closes the connection on a SUBSCRIBE without any Topic Filter",
		ids(spec.V5_3_8_3_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1}, v5))
			closedWithout(c, conn, packet.TypeSuback)
		})

	suite.Must("treats Subscription Options with reserved bits set, QoS 3 or Retain Handling 3 as an error and closes the connection",
		ids(spec.V5_3_8_3_5), func(c *suite.C) {
			for _, tc := range []struct {
				name string
				sub  packet.Subscription
			}{
				{"reserved bit 6 set", packet.Subscription{Filter: c.Topic("a"), QoS: 1, ReservedBits: 1}},
				{"reserved bits 7 and 6 set", packet.Subscription{Filter: c.Topic("a"), QoS: 1, ReservedBits: 3}},
				{"QoS 3", packet.Subscription{Filter: c.Topic("a"), QoS: 3}},
				{"Retain Handling 3", packet.Subscription{Filter: c.Topic("a"), QoS: 1, RetainHandling: 3}},
			} {
				c.Step("SUBSCRIBE with %s", tc.name)
				conn, _ := c.Connect("dev")
				c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{tc.sub}}, v5))
				closedWithout(c, conn, packet.TypeSuback)
			}
		})

	suite.Must("answers every SUBSCRIBE with a SUBACK carrying its Packet Identifier",
		ids(spec.V5_3_8_4_1, spec.V5_3_8_4_2, spec.V5_2_2_1_6), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			for _, id := range []uint16{0xBEEF, 1, 0xFFFF} {
				c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: c.Topic("a"), QoS: 1}}})
				ack := c.AwaitNext(conn)
				sa, ok := ack.(*packet.Suback)
				if !ok {
					c.For(spec.V5_3_8_4_1).Failf("answer to SUBSCRIBE %d is %s, not SUBACK", id, wire.Describe(ack))
				}
				c.Expect(sa.PacketID).To(Equal(id), "SUBACK Packet Identifier")
			}
		})

	suite.Must("handles several Topic Filters in one SUBSCRIBE as a sequence: one Reason Code each, in order, from Table 3-10",
		ids(spec.V5_3_8_4_5, spec.V5_3_8_4_6, spec.V5_3_9_3_1, spec.V5_3_9_3_2, spec.V5_3_8_4_7), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			subs := []packet.Subscription{
				{Filter: c.Topic("q2"), QoS: 2},
				{Filter: c.Topic("q0"), QoS: 0},
				{Filter: c.Topic("bad#"), QoS: 1},
				{Filter: c.Topic("q1"), QoS: 1},
			}
			id := c.NextID(conn)
			c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: subs})
			got, err := conn.ExpectPacket(c.Timeout(), wire.SubackFor(id))
			if err != nil {
				// An invalid filter may also be answered by closing the connection (section 4.13);
				// then the order cannot be seen here, and the valid filters are tried without it.
				closedWithout(c, conn, packet.TypeSuback)
				c.Step("the broker closed the connection for the invalid filter; again without it")
				conn, _ = c.Connect("sub")
				subs = slices.Delete(subs, 2, 3)
				id = c.NextID(conn)
				c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: subs})
				got = c.Await(conn, wire.SubackFor(id))
			}
			codes := got.(*packet.Suback).Codes
			// Fewer or more codes than filters: the SUBSCRIBE was not answered as a sequence of
			// SUBSCRIBEs either.
			c.For(spec.V5_3_8_4_6, spec.V5_3_8_4_5).Expect(codes).To(HaveLen(len(subs)), "Reason Codes in the SUBACK of %d filters", len(subs))
			for i, code := range codes {
				if !subackCodes[code] {
					c.For(spec.V5_3_9_3_2).Failf("SUBACK Reason Code %s is not in Table 3-10", flows.CodeName(code))
				}
				valid := subs[i].Filter != c.Topic("bad#")
				switch {
				case valid && code.IsError():
					c.For(spec.V5_3_8_4_5, spec.V5_3_9_3_1).Failf("Reason Code %d (%s) for the valid filter %q: the codes are out of order, or the sequence was not handled", i, flows.CodeName(code), subs[i].Filter)
				case !valid && !code.IsError():
					c.For(spec.V5_3_8_4_5, spec.V5_3_9_3_1).Failf("Reason Code %d (%s) grants the invalid filter %q, or the codes are out of order", i, flows.CodeName(code), subs[i].Filter)
				case valid && packet.QoS(code) > subs[i].QoS:
					c.For(spec.V5_3_8_4_7, spec.V5_3_9_3_1).Failf("Reason Code %d (%s) for %q grants more than the QoS %d requested", i, flows.CodeName(code), subs[i].Filter, subs[i].QoS)
				}
			}
		})

	suite.Must("grants no more than the QoS requested and sends messages at the lower of their QoS and the QoS granted",
		ids(spec.V5_3_8_4_7, spec.V5_3_8_4_8), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			subs := []packet.Subscription{{Filter: c.Topic("s0"), QoS: 0}, {Filter: c.Topic("s1"), QoS: 1}, {Filter: c.Topic("s2"), QoS: 2}}
			codes := c.SubscribeWith(conn, subs...)
			p, _ := c.Connect("pub")
			for i, s := range subs {
				granted := packet.QoS(codes[i])
				if codes[i].IsError() || granted > s.QoS {
					c.For(spec.V5_3_8_4_7).Failf("SUBACK Reason Code %s for %q requested at QoS %d", flows.CodeName(codes[i]), s.Filter, s.QoS)
				}
				for q := packet.QoS0; q <= 2; q++ {
					c.PutMsg(p, s.Filter, "x", q, false)
					in := c.AwaitPublish(conn, wire.PublishOn(s.Filter))
					c.For(spec.V5_3_8_4_8).Expect(in.QoS).To(Equal(min(q, granted)), "QoS of a QoS %d message on a subscription granted QoS %d", q, granted)
					c.Ack(conn, in)
				}
			}
		})

	suite.Must("replaces a subscription with the same filter: new options in effect, retained messages sent again, one copy delivered",
		ids(spec.V5_3_8_4_3, spec.V5_3_8_4_4, spec.V5_3_3_1_5, spec.V5_3_3_1_9, spec.V5_3_8_4_8), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "open", 1, true)
			conn, _ := c.Connect("sub")
			subscribeWith(c, conn, packet.Subscription{Filter: topic, QoS: 0})
			retained(c, conn, topic)
			subscribeWith(c, conn, packet.Subscription{Filter: topic, QoS: 1})
			c.Step("the retained message again, for the replacing subscription")
			in, err := conn.ExpectPacket(c.Timeout(), wire.PublishWith(topic, []byte("open")))
			if err != nil {
				c.For(spec.V5_3_8_4_4).Failf("the retained message for the replacing subscription with Retain Handling 0: %v", err)
			}
			c.Ack(conn, in.(*packet.Publish))
			c.PutMsg(p, topic, "closed", 1, false)
			live := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("closed")))
			deliveredQoS(c, live, 1)
			c.Ack(conn, live)
			c.For(spec.V5_3_8_4_3).AwaitNothing(conn, wire.PublishOn(topic))
		})

	suite.Must("does not forward a message to its publisher's own connection on a No Local subscription",
		ids(spec.V5_3_8_3_3), func(c *suite.C) {
			topic := c.Topic("echo")
			self, _ := c.Connect("self")
			subscribeWith(c, self, packet.Subscription{Filter: topic, QoS: 1, NoLocal: true})
			other := flows.Subscriber(c, "other", 1, topic)
			c.PutMsg(self, topic, "mine", 1, false)
			c.Ack(other, c.AwaitPublish(other, wire.PublishWith(topic, []byte("mine"))))
			c.AwaitNothing(self, wire.PublishOn(topic))
			c.Step("a message from another client still arrives")
			c.PutMsg(other, topic, "theirs", 1, false)
			c.AwaitPublish(self, wire.PublishWith(topic, []byte("theirs")))
		})

	suite.Must("sends the Subscription Identifiers of every overlapping subscription, on one copy or one per copy",
		ids(spec.V5_3_3_4_3, spec.V5_3_3_4_4, spec.V5_3_3_4_5), func(c *suite.C) {
			c.Require(suite.FeatureSubscriptionIDs)
			c.Require(suite.FeatureWildcards)
			topic := c.Topic("gate", "g1")
			conn, _ := c.Connect("sub")
			subscribeID(c, conn, c.Topic("gate", "#"), 0, 7)
			subscribeID(c, conn, c.Topic("+", "g1"), 0, 268435455)
			flows.Subscribe(c, conn, 0, topic)
			p, _ := c.Connect("pub")
			c.Send(p, flows.Pub(topic, "x", 0, false))
			var copies [][]uint32
			first := c.AwaitPublish(conn, wire.PublishOn(topic))
			copies = append(copies, first.Props.SubscriptionIDs)
			for {
				more, err := conn.ExpectPacket(c.Window(), wire.PublishOn(topic))
				if err != nil {
					break
				}
				copies = append(copies, more.(*packet.Publish).Props.SubscriptionIDs)
			}
			c.Step("copies received: %v", copies)
			var all []uint32
			for _, ids := range copies {
				all = append(all, ids...)
			}
			if len(copies) == 1 {
				// One copy for the three matching subscriptions: it carries both identifiers.
				c.For(spec.V5_3_3_4_3, spec.V5_3_3_4_4).Expect(all).To(ConsistOf(uint32(7), uint32(268435455)), "Subscription Identifiers of the single copy")
				return
			}
			// One copy per subscription: each carries the identifier of its own, the one for
			// the subscription without an identifier none.
			for _, ids := range copies {
				c.For(spec.V5_3_3_4_5).Expect(len(ids)).To(BeNumerically("<=", 1), "Subscription Identifiers on one copy of several: %v", copies)
			}
			c.For(spec.V5_3_3_4_3, spec.V5_3_3_4_5).Expect(all).To(ConsistOf(uint32(7), uint32(268435455)), "Subscription Identifiers over the copies")
		})
})

var _ = describe("UNSUBSCRIBE and UNSUBACK", func() {
	suite.Must("treats an UNSUBSCRIBE whose fixed header flags are not 0010 as malformed and closes the connection",
		ids(spec.V5_3_10_1_1, spec.V5_2_1_3_1), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Unsubscribe{PacketID: 1, Filters: []string{c.Topic("a")}}, v5, packet.WithFlags(0x0)))
			closedWithout(c, conn, packet.TypeUnsuback)
		})

	suite.Must("closes the connection on an UNSUBSCRIBE without any Topic Filter",
		ids(spec.V5_3_10_3_2), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			c.TrySendRaw(conn, packet.Build(&packet.Unsubscribe{PacketID: 1}, v5))
			closedWithout(c, conn, packet.TypeUnsuback)
		})

	suite.Must("answers every UNSUBSCRIBE with an UNSUBACK carrying its Packet Identifier, even when nothing was subscribed",
		ids(spec.V5_3_10_4_4, spec.V5_3_10_4_5, spec.V5_2_2_1_6), func(c *suite.C) {
			conn, _ := c.Connect("dev")
			flows.Subscribe(c, conn, 0, c.Topic("a"))
			for _, f := range []string{c.Topic("a"), c.Topic("never-subscribed")} {
				c.Send(conn, &packet.Unsubscribe{PacketID: 0xCAFE, Filters: []string{f}})
				ack := c.AwaitNext(conn)
				ua, ok := ack.(*packet.Unsuback)
				if !ok {
					c.Failf("answer to UNSUBSCRIBE of %q is %s, not UNSUBACK", f, wire.Describe(ack))
				}
				c.Expect(ua.PacketID).To(Equal(uint16(0xCAFE)), "UNSUBACK Packet Identifier")
			}
		})

	suite.Must("deletes exactly the subscription whose filter matches character for character",
		ids(spec.V5_3_10_4_1), func(c *suite.C) {
			c.Require(suite.FeatureWildcards)
			topic := c.Topic("g", "state")
			conn, _ := c.Connect("sub")
			flows.Subscribe(c, conn, 0, c.Topic("g", "+"), c.Topic("#"))
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
			// Earlier messages may still come as further copies: a broker may send one copy per
			// matching subscription (section 3.3.4). Only "none" must not arrive.
			c.AwaitNothing(conn, wire.PublishWith(topic, []byte("none")))
		})

	suite.Must("sends nothing more for a deleted subscription",
		ids(spec.V5_3_10_4_2), flows.NothingAfterUnsubscribe)

	suite.Must("completes a QoS 1 and a QoS 2 delivery it had started before the subscription was deleted",
		ids(spec.V5_3_10_4_3, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("charge")
			conn := flows.Subscriber(c, "sub", 2, topic)
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "one", 1, false)
			c.PutMsg(p, topic, "two", 2, false)
			one := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("one")))
			two := c.AwaitPublish(conn, wire.PublishWith(topic, []byte("two")))
			deliveredQoS(c, two, 2)
			c.Unsubscribe(conn, topic)
			c.Send(conn, &packet.Puback{PacketID: one.PacketID})
			c.Send(conn, &packet.Pubrec{PacketID: two.PacketID})
			c.Await(conn, wire.PubrelFor(two.PacketID))
			c.Send(conn, &packet.Pubcomp{PacketID: two.PacketID})
			c.Sync(conn)
		})

	suite.Must("handles several filters in one UNSUBSCRIBE as a sequence answered by one UNSUBACK, Reason Codes in order",
		ids(spec.V5_3_10_4_6, spec.V5_3_11_3_1, spec.V5_3_11_3_2), func(c *suite.C) {
			conn, _ := c.Connect("sub")
			a, b, keep, never := c.Topic("a"), c.Topic("b"), c.Topic("keep"), c.Topic("never")
			flows.Subscribe(c, conn, 0, a, b, keep)
			ack := c.Unsubscribe(conn, a, never, b)
			c.Sync(conn)
			if n := len(received(c, packet.TypeUnsuback)); n != 1 {
				c.For(spec.V5_3_10_4_6).Failf("%d UNSUBACKs for one UNSUBSCRIBE", n)
			}
			c.For(spec.V5_3_11_3_1).Expect(ack.Codes).To(HaveLen(3), "Reason Codes in the UNSUBACK of 3 filters")
			for i, code := range ack.Codes {
				if !unsubackCodes[code] {
					c.For(spec.V5_3_11_3_2).Failf("UNSUBACK Reason Code %s is not an Unsubscribe Reason Code", flows.CodeName(code))
				}
				if i != 1 && code != packet.Success {
					c.For(spec.V5_3_11_3_1).Failf("Reason Code %d is %s for the existing subscription %q", i, flows.CodeName(code), []string{a, never, b}[i])
				}
			}
			// 0x11 (No subscription existed) marks the filter that matched nothing; a broker that
			// answers 0x00 there leaves the order unobservable, which is not a failure.
			c.For(spec.V5_3_11_3_1).Expect(ack.Codes[1]).To(BeElementOf(packet.NoSubscriptionExisted, packet.Success), "Reason Code for the filter never subscribed")
			p, _ := c.Connect("pub")
			for _, t := range []string{a, b, keep} {
				c.Send(p, flows.Pub(t, "x", 0, false))
			}
			c.AwaitPublish(conn, wire.PublishOn(keep))
			c.For(spec.V5_3_10_4_6).AwaitNothing(conn, wire.Or(wire.PublishOn(a), wire.PublishOn(b)))
		})
})
