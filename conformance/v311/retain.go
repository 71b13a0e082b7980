package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// retained waits for the retained message a new subscription on topic is sent: stored
// ([MQTT-3.3.1-5]) and sent to the new subscription ([MQTT-3.3.1-6]). Checks of other retained
// rules use it for the steps they build on.
func retained(c *suite.C, conn *wire.Conn, topic string) *packet.Publish {
	return flows.AwaitRetained(c, conn, topic, spec.V311_3_3_1_5, spec.V311_3_3_1_6)
}

var _ = describe("Retained messages", func() {
	suite.Must("stores a retained message with its QoS and sends it to a later subscriber with RETAIN 1",
		ids(spec.V311_3_3_1_5, spec.V311_3_3_1_6, spec.V311_3_3_1_8, spec.V311_3_8_4_6), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("gate", "g1", "status")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, `{"online":true}`, 1, true)
			sub := flows.Subscriber(c, "sub", 2, topic)
			in := retained(c, sub, topic)
			c.Expect(string(in.Payload)).To(Equal(`{"online":true}`))
			c.Expect(in.Retain).To(BeTrue(), "RETAIN of a message sent because of a new subscription")
			c.For(spec.V311_3_3_1_5, spec.V311_3_8_4_6).Expect(in.QoS).To(Equal(packet.QoS1), "QoS of the retained message (published at 1, subscribed at 2)")
			c.Ack(sub, in)
		})

	suite.Must("sends a new subscription the last retained message of every topic it matches",
		ids(spec.V311_3_3_1_6), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			p, _ := c.Connect("dev")
			c.PutMsg(p, c.Topic("g1", "state"), "opening", 1, true)
			c.PutMsg(p, c.Topic("g1", "state"), "open", 1, true)
			c.PutMsg(p, c.Topic("g2", "state"), "closed", 1, true)
			sub := flows.Subscriber(c, "sub", 1, c.Topic("+", "state"))
			got := map[string]string{}
			for range 2 {
				in := c.AwaitPublish(sub, wire.PublishUnder(c.Topic()))
				got[in.Topic] = string(in.Payload)
				c.Ack(sub, in)
			}
			c.Expect(got).To(Equal(map[string]string{c.Topic("g1", "state"): "open", c.Topic("g2", "state"): "closed"}))
			c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
		})

	suite.Must("replaces the retained message on a QoS 0 retained PUBLISH",
		ids(spec.V311_3_3_1_7), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "old", 1, true)
			c.Send(p, flows.Pub(topic, "new", 0, true))
			// Ordering on one connection: once this PINGRESP arrives the QoS 0 PUBLISH is processed.
			c.Send(p, &packet.Pingreq{})
			c.Await(p, wire.IsType(packet.TypePingresp))
			sub := flows.Subscriber(c, "sub", 1, topic)
			// The broker may drop a QoS 0 retained message later (section 3.3.1.3); the old one
			// must be gone in any case.
			in, err := sub.ExpectPacket(c.Timeout(), wire.PublishOn(topic))
			if err == nil {
				c.Expect(string(in.(*packet.Publish).Payload)).To(Equal("new"), "retained payload after replacement")
			}
		})

	suite.Must("sends a message that matches an established subscription with RETAIN 0",
		ids(spec.V311_3_3_1_9), func(c *suite.C) {
			topic := c.Topic("state")
			sub := flows.Subscriber(c, "sub", 1, topic)
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.Retain).To(BeFalse(), "RETAIN of a message sent to an established subscription")
		})

	suite.Must("delivers a retained PUBLISH with an empty payload as usual and keeps no retained message for the topic",
		ids(spec.V311_3_3_1_10, spec.V311_3_3_1_11, spec.V311_3_3_1_5, spec.V311_3_3_1_6), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "open", 1, true)
			sub := flows.Subscriber(c, "sub", 1, topic)
			c.Ack(sub, retained(c, sub, topic))
			c.PutMsg(p, topic, "", 1, true)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.Payload).To(BeEmpty(), "payload of the delivered empty message")
			c.Ack(sub, in)
			late := flows.Subscriber(c, "late", 1, topic)
			c.AwaitNothing(late, wire.PublishOn(topic))
		})

	suite.Must("neither stores nor removes a retained message on a PUBLISH with RETAIN 0",
		ids(spec.V311_3_3_1_12, spec.V311_3_3_1_5, spec.V311_3_3_1_6), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("state")
			p, _ := c.Connect("dev")
			c.PutMsg(p, topic, "kept", 1, true)
			first := flows.Subscriber(c, "first", 1, topic)
			c.Ack(first, retained(c, first, topic))
			c.PutMsg(p, topic, "transient", 1, false)
			sub := flows.Subscriber(c, "sub", 1, topic)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(string(in.Payload)).To(Equal("kept"), "retained payload")
			c.Ack(sub, in)
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("keeps retained messages after the session that published them ends",
		ids(spec.V311_3_1_2_7, spec.V311_3_3_1_5, spec.V311_3_3_1_6, spec.V311_3_1_2_8), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic, gone := c.Topic("fw"), c.Topic("gone")
			watch := flows.Subscriber(c, "watch", 0, gone)
			p, _ := c.Connect("dev", func(cp *packet.Connect) { cp.Will = &packet.Will{Topic: gone, Payload: []byte("x")} })
			c.PutMsg(p, topic, "1.4.2", 1, true)
			first := flows.Subscriber(c, "first", 1, topic)
			c.Ack(first, retained(c, first, topic))
			c.Close(p)
			// The will says the broker has closed the connection, ending the clean session.
			if _, err := watch.ExpectPacket(c.Timeout(), wire.PublishOn(gone)); err != nil {
				c.For(spec.V311_3_1_2_8).Failf("the will of the publisher: %v", err)
			}
			c.Step("the publisher's clean session has ended")
			sub := flows.Subscriber(c, "sub", 1, topic)
			c.For(spec.V311_3_1_2_7).AwaitPublish(sub, wire.PublishWith(topic, []byte("1.4.2")))
		})
})
