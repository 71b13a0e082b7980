package v311

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// withWill is a Connect option: a will on topic.
func withWill(topic, payload string, qos packet.QoS, retain bool) func(*packet.Connect) {
	return func(p *packet.Connect) {
		p.Will = &packet.Will{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	}
}

var _ = describe("Will messages", func() {
	suite.Must("publishes the will when the connection is lost",
		ids(spec.V311_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 1, topic)
			dev, _ := c.Connect("dev", withWill(topic, `{"online":false}`, 1, false))
			c.Step("the device loses power: no DISCONNECT")
			c.Close(dev)
			in := c.AwaitPublish(sub, wire.PublishWith(topic, []byte(`{"online":false}`)))
			c.Expect(in.QoS).To(Equal(packet.QoS1), "QoS of the will")
		})

	suite.Must("publishes the will when it closes the connection for a protocol violation",
		ids(spec.V311_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", withWill(topic, "offline", 0, false))
			c.Step("the device sends a second CONNECT, a protocol violation")
			c.Send(dev, c.ConnectPacket("dev"))
			c.AwaitClosed(dev)
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("offline")))
		})

	suite.Must("does not publish the will after DISCONNECT",
		ids(spec.V311_3_14_4_3, spec.V311_3_1_2_10), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", withWill(topic, "offline", 0, false))
			c.Disconnect(dev)
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("publishes a will only once: a resumed session without a will publishes none",
		ids(spec.V311_3_1_2_10), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", c.Persistent(), withWill(topic, "offline", 0, false))
			c.Close(dev)
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("offline")))
			dev, _ = c.Connect("dev", c.Persistent())
			c.Close(dev)
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("publishes nothing when a client without a will loses its connection",
		ids(spec.V311_3_1_2_12), func(c *suite.C) {
			sub := subscriber(c, "sub", 0, c.Topic("#"))
			dev, _ := c.Connect("dev")
			c.Close(dev)
			c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
		})

	suite.Must("publishes a will with Will Retain 0 as a non-retained message",
		ids(spec.V311_3_1_2_16), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", withWill(topic, "offline", 0, false))
			c.Close(dev)
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("offline")))
			late := subscriber(c, "late", 0, topic)
			c.AwaitNothing(late, wire.PublishOn(topic))
		})

	suite.Must("publishes a will with Will Retain 1 as a retained message",
		ids(spec.V311_3_1_2_17), func(c *suite.C) {
			c.Require(suite.FeatureRetain)
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 1, topic)
			dev, _ := c.Connect("dev", withWill(topic, `{"online":false}`, 1, true))
			c.Close(dev)
			c.Ack(sub, c.AwaitPublish(sub, wire.PublishWith(topic, []byte(`{"online":false}`))))
			late := subscriber(c, "late", 1, topic)
			in := c.AwaitPublish(late, wire.PublishWith(topic, []byte(`{"online":false}`)))
			c.Expect(in.Retain).To(BeTrue(), "RETAIN of the will sent to a new subscription")
		})

	suite.Must("closes a connection silent for one and a half times its keepalive and publishes its will",
		ids(spec.V311_3_1_2_24), func(c *suite.C) {
			topic := c.Topic("status")
			sub := subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", func(p *packet.Connect) { p.KeepAlive = 1 }, withWill(topic, "silent", 0, false))
			c.Step("the device stops sending: the broker must close within 1.5 s of keepalive 1 s")
			c.AwaitClosedWithin(dev, 1500*time.Millisecond+c.Timeout())
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("silent")))
		})
})
