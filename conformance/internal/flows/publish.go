package flows

import (
	"fmt"

	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// DupNotInherited is the check that the broker sets DUP on the messages it forwards by its own
// retransmission, not by the DUP they arrived with (MQTT-3.3.1-3).
func DupNotInherited(c *suite.C) {
	topic := c.Topic("dup-in")
	sub := Subscriber(c, "sub", 1, topic)
	conn, _ := c.Connect("pub")
	c.Put(conn, &packet.Publish{Topic: topic, Payload: []byte("resent"), QoS: 1, Dup: true})
	in := c.AwaitPublish(sub, wire.PublishOn(topic))
	c.Expect(in.Dup).To(gomega.BeFalse(), "DUP of the first transmission to the subscriber")
}

// EveryMatchingSubscriber is the check that a message reaches every client whose subscription
// matches its topic (MQTT-4.5.0-1): by the exact name, a + and a # filter.
func EveryMatchingSubscriber(c *suite.C) {
	topic := c.Topic("gate", "g1", "state")
	a := Subscriber(c, "a", 1, topic)
	b := Subscriber(c, "b", 1, c.Topic("gate", "+", "state"))
	d := Subscriber(c, "d", 1, c.Topic("#"))
	conn, _ := c.Connect("pub")
	c.PutMsg(conn, topic, "open", 1, false)
	for _, s := range []*wire.Conn{a, b, d} {
		c.AwaitPublish(s, wire.PublishWith(topic, []byte("open")))
	}
}

// OnlyMatchingTopics is the check that a subscriber is sent only the topic names its filter
// matches (MQTT-3.3.2-3).
func OnlyMatchingTopics(c *suite.C) {
	sub := Subscriber(c, "sub", 0, c.Topic("site", "+", "evt", "#"))
	conn, _ := c.Connect("pub")
	for _, t := range []string{c.Topic("site", "s1", "evt", "card"), c.Topic("site", "s2", "state"), c.Topic("site", "s3", "evt")} {
		c.Send(conn, Pub(t, "x", 0, false))
	}
	// # also matches its parent level: s3/evt matches as well as s1/evt/card.
	c.AwaitPublish(sub, wire.PublishOn(c.Topic("site", "s1", "evt", "card")))
	c.AwaitPublish(sub, wire.PublishOn(c.Topic("site", "s3", "evt")))
	c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
}

// OverlappingHighestQoS is the check that a message matching overlapping subscriptions of one
// client is delivered at the highest QoS granted among them.
func OverlappingHighestQoS(c *suite.C) {
	topic := c.Topic("door", "d1")
	conn, _ := c.Connect("sub")
	codes := c.SubscribeWith(conn,
		packet.Subscription{Filter: c.Topic("door", "#"), QoS: 0},
		packet.Subscription{Filter: topic, QoS: 2},
		packet.Subscription{Filter: c.Topic("+", "d1"), QoS: 1})
	NeedQoS(c, 2, packet.QoS(codes[1]))
	p, _ := c.Connect("pub")
	c.PutMsg(p, topic, "forced", 2, false)
	// The broker may send one copy per matching subscription (3.1.1 section 3.3.5, 5.0 section
	// 3.3.4); one of the copies must carry the highest QoS granted.
	in := c.AwaitPublish(conn, wire.PublishOn(topic))
	best := in.QoS
	c.Ack(conn, in)
	for {
		more, err := conn.ExpectPacket(c.Window(), wire.PublishOn(topic))
		if err != nil {
			break
		}
		best = max(best, more.(*packet.Publish).QoS)
		c.Ack(conn, more.(*packet.Publish))
	}
	c.Expect(best).To(gomega.Equal(packet.QoS2), "highest QoS among the copies delivered")
}

// PerPublisherOrder is the check that the messages one client publishes on a topic reach a
// subscriber in the order they were published, at each QoS (MQTT-4.6.0-5, MQTT-4.6.0-6).
func PerPublisherOrder(c *suite.C) {
	topic := c.Topic("evt", "passage")
	sub := Subscriber(c, "sub", 2, topic)
	p, _ := c.Connect("pub")
	const n = 8
	for q := packet.QoS0; q <= 2; q++ {
		for i := range n {
			c.PutMsg(p, topic, fmt.Sprintf("q%d-%d", q, i), q, false)
		}
		seen := map[string]bool{}
		for next := 0; next < n; {
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Ack(sub, in)
			got := string(in.Payload)
			if seen[got] {
				// A repeat is not a reordering: QoS 1 allows duplicates, and duplicates of
				// QoS 2 messages are judged by the exactly-once checks.
				continue
			}
			if want := fmt.Sprintf("q%d-%d", q, next); got != want {
				c.Failf("message %d of QoS %d arrived as %q, want %q: the order was not kept", next, q, got, want)
			}
			seen[got] = true
			next++
		}
	}
}

// NothingAfterUnsubscribe is the check that the broker sends nothing more for a subscription an
// UNSUBSCRIBE deleted.
func NothingAfterUnsubscribe(c *suite.C) {
	topic := c.Topic("cmd")
	conn := Subscriber(c, "sub", 1, topic)
	p, _ := c.Connect("pub")
	c.PutMsg(p, topic, "before", 1, false)
	c.Ack(conn, c.AwaitPublish(conn, wire.PublishOn(topic)))
	c.Unsubscribe(conn, topic)
	c.PutMsg(p, topic, "after", 1, false)
	c.AwaitNothing(conn, wire.PublishOn(topic))
}

// PingPong is the check that the broker answers every PINGREQ with a PINGRESP.
func PingPong(c *suite.C) {
	conn, _ := c.Connect("dev")
	for range 3 {
		c.Send(conn, &packet.Pingreq{})
		c.Await(conn, wire.IsType(packet.TypePingresp))
	}
}
