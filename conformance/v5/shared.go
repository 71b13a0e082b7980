package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// share returns a shared subscription filter of the check's own: "$share/<group>/<topic>".
func share(c *suite.C, group, topic string) string {
	return "$share/" + group + c.Unique() + "/" + topic
}

// members connects each role and subscribes it to filter at qos, requiring the grant.
func members(c *suite.C, filter string, qos packet.QoS, opts []func(*packet.Connect), roles ...string) []*wire.Conn {
	out := make([]*wire.Conn, len(roles))
	for i, r := range roles {
		conn, _ := c.Connect(r, opts...)
		flows.Subscribe(c, conn, qos, filter)
		out[i] = conn
	}
	return out
}

// firstOf waits for a PUBLISH on topic at any of the connections and returns the index of the
// one that received it.
func firstOf(c *suite.C, conns []*wire.Conn, pred wire.Predicate) (int, *packet.Publish) {
	for {
		for i, conn := range conns {
			if p, err := conn.ExpectPacket(0, pred); err == nil {
				return i, p.(*packet.Publish)
			}
		}
		// Nothing yet: wait on the first connection for its deadline, then look at all again.
		if p, err := conns[0].ExpectPacket(c.Timeout(), pred); err == nil {
			return 0, p.(*packet.Publish)
		}
		for i, conn := range conns {
			if p, err := conn.ExpectPacket(0, pred); err == nil {
				return i, p.(*packet.Publish)
			}
		}
		c.Failf("no member of the shared subscription received %s within %s", pred, c.Timeout())
	}
}

var _ = describe("Shared subscriptions", func() {
	suite.Must("does not grant a shared subscription whose ShareName is empty or holds a wildcard, or that has no Topic Filter",
		ids(spec.V5_4_8_2_1, spec.V5_4_8_2_2), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			var empty, wild failures
			empty.add("empty ShareName", badSubscription(c, packet.Subscription{Filter: "$share//" + c.Topic("a")}))
			wild.add("+ in the ShareName", badSubscription(c, packet.Subscription{Filter: "$share/g+" + c.Unique() + "/" + c.Topic("a")}))
			wild.add("# in the ShareName", badSubscription(c, packet.Subscription{Filter: "$share/g#" + c.Unique() + "/" + c.Topic("a")}))
			wild.add("no Topic Filter after the ShareName", badSubscription(c, packet.Subscription{Filter: "$share/g" + c.Unique()}))
			all := append(append(failures{}, empty...), wild...)
			switch {
			case len(empty) > 0 && len(wild) > 0:
				all.report(c)
			case len(empty) > 0:
				empty.report(c.For(spec.V5_4_8_2_1))
			default:
				wild.report(c.For(spec.V5_4_8_2_2))
			}
		})

	suite.Must("treats No Local on a shared subscription as a protocol error",
		ids(spec.V5_3_8_3_4), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			if problem := badSubscription(c, packet.Subscription{Filter: share(c, "g", c.Topic("a")), QoS: 1, NoLocal: true}); problem != "" {
				c.Failf("%s", problem)
			}
		})

	suite.Must("delivers each message of a shared subscription to one member, at the QoS granted to it",
		ids(spec.V5_4_8_2_3), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			topic := c.Topic("job")
			filter := share(c, "g", topic)
			m := members(c, filter, 0, nil, "m0")
			m = append(m, members(c, filter, 1, nil, "m1")...)
			p, _ := c.Connect("pub")
			const n = 6
			for i := range n {
				c.PutMsg(p, topic, fmt.Sprintf("j%d", i), 2, false)
			}
			for i := range n {
				who, in := firstOf(c, m, wire.PublishWith(topic, []byte(fmt.Sprintf("j%d", i))))
				c.Expect(in.QoS).To(Equal(packet.QoS(who)), "QoS of %q to member m%d, granted QoS %d", in.Payload, who, who)
				c.Ack(m[who], in)
			}
			for _, conn := range m {
				c.AwaitNothing(conn, wire.PublishOn(topic))
			}
		})

	suite.Must("completes a QoS 2 delivery on a shared subscription with the member that reconnects, and sends it to no other",
		ids(spec.V5_4_8_2_4, spec.V5_3_8_4_8), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			topic := c.Topic("charge")
			filter := share(c, "g", topic)
			m := members(c, filter, 2, []func(*packet.Connect){c.Persistent()}, "m0", "m1")
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "4.50", 2, false)
			who, in := firstOf(c, m, wire.PublishOn(topic))
			deliveredQoS(c, in, 2)
			c.Step("member m%d loses its connection before acknowledging", who)
			c.Close(m[who])
			other := m[1-who]
			c.AwaitNothing(other, wire.PublishOn(topic))
			back, _ := c.Connect(fmt.Sprintf("m%d", who), c.Persistent())
			again := c.AwaitPublish(back, publishID(topic, in.PacketID))
			c.Ack(back, again)
			c.AwaitNothing(other, wire.PublishOn(topic))
		})

	suite.Must("does not send a shared QoS 2 message to another member when the Session it was sent to ends",
		ids(spec.V5_4_8_2_5, spec.V5_3_8_4_8), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			topic := c.Topic("charge")
			filter := share(c, "g", topic)
			m := members(c, filter, 2, []func(*packet.Connect){resume, expiry(0)}, "m0", "m1")
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "4.50", 2, false)
			who, in := firstOf(c, m, wire.PublishOn(topic))
			deliveredQoS(c, in, 2)
			c.Step("member m%d's connection and Session (expiry 0) end before it acknowledges", who)
			c.Close(m[who])
			c.AwaitNothing(m[1-who], wire.PublishOn(topic))
		})

	suite.Must("discards a shared message answered with an error Reason Code instead of offering it to another member",
		ids(spec.V5_4_8_2_6, spec.V5_4_3_3_10, spec.V5_3_8_4_8), func(c *suite.C) {
			c.Require(suite.FeatureSharedSubscriptions)
			topic := c.Topic("job")
			filter := share(c, "g", topic)
			m := members(c, filter, 2, nil, "m0", "m1")
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "q1", 1, false)
			c.PutMsg(p, topic, "q2", 2, false)
			for _, payload := range []string{"q1", "q2"} {
				who, in := firstOf(c, m, wire.PublishWith(topic, []byte(payload)))
				if payload == "q1" {
					deliveredQoS(c, in, 1)
					c.Send(m[who], &packet.Puback{PacketID: in.PacketID, Code: packet.ImplementationSpecificError})
				} else {
					deliveredQoS(c, in, 2)
					c.Send(m[who], &packet.Pubrec{PacketID: in.PacketID, Code: packet.ImplementationSpecificError})
				}
			}
			// A further copy is either the refused message offered to another member or, for the
			// QoS 2 one, a duplicate of a message received once (MQTT-4.3.3-10): either is wrong.
			for _, conn := range m {
				c.For(spec.V5_4_8_2_6, spec.V5_4_3_3_10).AwaitNothing(conn, wire.PublishOn(topic))
			}
		})
})
