package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// retained waits for the retained message a new subscription on topic is sent: stored
// ([MQTT-3.3.1-5]) and sent to a new subscription with Retain Handling 0 ([MQTT-3.3.1-9]).
// Checks of other retained rules use it for the steps they build on, and cite both.
func retained(c *suite.C, conn *wire.Conn, topic string) *packet.Publish {
	return flows.AwaitRetained(c, conn, topic, spec.V5_3_3_1_5, spec.V5_3_3_1_9)
}

// subscribeWith subscribes conn with one subscription and requires it granted at s.QoS.
func subscribeWith(c *suite.C, conn *wire.Conn, s packet.Subscription) {
	codes := c.SubscribeWith(conn, s)
	if codes[0].IsError() {
		c.Failf("%s: the broker refused the subscription to %q (SUBACK %s)", conn.Name(), s.Filter, flows.CodeName(codes[0]))
	}
	flows.NeedQoS(c, s.QoS, packet.QoS(codes[0]))
}

var _ = describe("Retained messages", func() {
	suite.Must("stores a retained message and sends it to a later subscription with RETAIN 1",
		ids(spec.V5_3_3_1_5, spec.V5_3_3_1_9), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("gate", "g1", "status")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, `{"online":true}`, 1, true)
			sub := flows.Subscriber(c, "sub", 1, topic)
			in := retained(c, sub, topic)
			c.Expect(string(in.Payload)).To(Equal(`{"online":true}`))
			c.Expect(in.Retain).To(BeTrue(), "RETAIN of a message sent because of a new subscription")
			c.Ack(sub, in)
		})

	suite.Must("replaces a topic's retained message with the next retained PUBLISH",
		ids(spec.V5_3_3_1_5, spec.V5_3_3_1_9), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			p, _ := c.Connect("dev")
			c.PutMsg(p, c.Topic("g1", "state"), "opening", 1, true)
			c.PutMsg(p, c.Topic("g1", "state"), "open", 1, true)
			c.PutMsg(p, c.Topic("g2", "state"), "closed", 1, true)
			sub, _ := c.Connect("sub")
			flows.Subscribe(c, sub, 1, c.Topic("g1", "state"), c.Topic("g2", "state"))
			got := map[string]string{}
			for range 2 {
				in, err := sub.ExpectPacket(c.Timeout(), wire.PublishUnder(c.Topic()))
				if err != nil {
					c.For(spec.V5_3_3_1_5, spec.V5_3_3_1_9).Failf("the retained messages for a new subscription: %v", err)
				}
				got[in.(*packet.Publish).Topic] = string(in.(*packet.Publish).Payload)
				c.Ack(sub, in.(*packet.Publish))
			}
			c.Expect(got).To(Equal(map[string]string{c.Topic("g1", "state"): "open", c.Topic("g2", "state"): "closed"}))
			c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
		})

	suite.Must("delivers a retained PUBLISH with an empty payload as usual, and neither stores it nor keeps the old one",
		ids(spec.V5_3_3_1_6, spec.V5_3_3_1_7, spec.V5_3_3_1_5, spec.V5_3_3_1_9), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			sub := flows.Subscriber(c, "sub", 1, topic)
			c.Ack(sub, retained(c, sub, topic))
			c.PutMsg(p, topic, "", 1, true)
			in := c.For(spec.V5_3_3_1_6).AwaitPublish(sub, wire.PublishOn(topic))
			f := findings{c: c}
			f.expect(spec.V5_3_3_1_6, len(in.Payload) == 0, "payload of the delivered empty message: %q", in.Payload)
			c.Ack(sub, in)
			late := flows.Subscriber(c, "late", 1, topic)
			if err := late.ExpectNothing(c.Window(), wire.PublishOn(topic)); err != nil {
				// A retained message after the empty one: the old one was kept, or the empty one stored.
				f.add(spec.V5_3_3_1_6, "a new subscription got a retained message: %v", err)
				f.add(spec.V5_3_3_1_7, "a retained message after an empty one")
			}
			f.report()
		})

	suite.Must("neither stores nor removes a retained message on a PUBLISH with RETAIN 0",
		ids(spec.V5_3_3_1_8, spec.V5_3_3_1_5, spec.V5_3_3_1_9), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "kept", 1, true)
			first := flows.Subscriber(c, "first", 1, topic)
			c.Ack(first, retained(c, first, topic))
			c.PutMsg(p, topic, "transient", 1, false)
			sub := flows.Subscriber(c, "sub", 1, topic)
			in := retained(c, sub, topic)
			c.For(spec.V5_3_3_1_8).Expect(string(in.Payload)).To(Equal("kept"), "retained payload")
			c.Ack(sub, in)
			c.For(spec.V5_3_3_1_8).AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("sends the matching retained messages on every SUBSCRIBE with Retain Handling 0, repeated ones included",
		ids(spec.V5_3_3_1_9, spec.V5_3_3_1_5), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			sub, _ := c.Connect("sub")
			for i := range 2 {
				c.Step("SUBSCRIBE %d with Retain Handling 0", i+1)
				subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1, RetainHandling: 0})
				c.Ack(sub, retained(c, sub, topic))
			}
		})

	suite.Must("sends the retained messages with Retain Handling 1 only when the subscription is new",
		ids(spec.V5_3_3_1_10, spec.V5_3_3_1_5), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			sub, _ := c.Connect("sub")
			subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1, RetainHandling: 1})
			in, err := sub.ExpectPacket(c.Timeout(), wire.PublishOn(topic))
			if err != nil {
				c.For(spec.V5_3_3_1_5, spec.V5_3_3_1_10).Failf("the retained message for a new subscription with Retain Handling 1: %v", err)
			}
			c.Ack(sub, in.(*packet.Publish))
			c.Step("the same subscription again: it exists, so nothing is sent")
			subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1, RetainHandling: 1})
			c.For(spec.V5_3_3_1_10).AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("sends no retained messages for a subscription with Retain Handling 2",
		ids(spec.V5_3_3_1_11), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			sub, _ := c.Connect("sub")
			subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1, RetainHandling: 2})
			c.AwaitNothing(sub, wire.PublishOn(topic))
			c.Step("live messages still arrive")
			c.PutMsg(p, topic, "closed", 1, true)
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishWith(topic, []byte("closed"))))
		})

	suite.Must("forwards messages with RETAIN 0 on a subscription with Retain As Published 0",
		ids(spec.V5_3_3_1_12), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			sub, _ := c.Connect("sub")
			subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1})
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.Retain).To(BeFalse(), "RETAIN of a retained message forwarded to an established subscription without Retain As Published")
		})

	suite.Must("forwards messages with the RETAIN flag they were published with on a subscription with Retain As Published 1",
		ids(spec.V5_3_3_1_13), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			sub, _ := c.Connect("sub")
			subscribeWith(c, sub, packet.Subscription{Filter: topic, QoS: 1, RetainAsPublished: true})
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "retained", 1, true)
			c.PutMsg(p, topic, "live", 1, false)
			in := c.AwaitPublish(sub, wire.PublishWith(topic, []byte("retained")))
			c.Expect(in.Retain).To(BeTrue(), "RETAIN of a message published with RETAIN 1")
			c.Ack(sub, in)
			in = c.AwaitPublish(sub, wire.PublishWith(topic, []byte("live")))
			c.Expect(in.Retain).To(BeFalse(), "RETAIN of a message published with RETAIN 0")
		})
})
