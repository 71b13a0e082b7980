package flows

import (
	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
)

// WillPublishedOnce is the check that a published will is gone from the session: a resumed
// session without a will publishes none when its connection is lost.
func WillPublishedOnce(c *suite.C) {
	topic := c.Topic("status")
	sub := Subscriber(c, "sub", 0, topic)
	dev, _ := c.Connect("dev", c.Persistent(), WithWill(topic, "offline", 0, false))
	c.Close(dev)
	AwaitWill(c, sub, topic, "offline")
	dev, _ = c.Connect("dev", c.Persistent())
	c.Close(dev)
	c.AwaitNothing(sub, wire.PublishOn(topic))
}

// WillNotRetained is the check that a will with Will Retain 0 is published as a non-retained
// message: a later subscription gets nothing.
func WillNotRetained(c *suite.C) {
	topic := c.Topic("status")
	sub := Subscriber(c, "sub", 0, topic)
	dev, _ := c.Connect("dev", WithWill(topic, "offline", 0, false))
	c.Close(dev)
	AwaitWill(c, sub, topic, "offline")
	late := Subscriber(c, "late", 0, topic)
	c.AwaitNothing(late, wire.PublishOn(topic))
}

// WillRetained is the check that a will with Will Retain 1 is published as a retained message: a
// later subscription gets it with RETAIN 1.
func WillRetained(c *suite.C) {
	c.Require(suite.FeatureRetain)
	topic := c.Topic("status")
	sub := Subscriber(c, "sub", 1, topic)
	dev, _ := c.Connect("dev", WithWill(topic, `{"online":false}`, 1, true))
	c.Close(dev)
	c.Ack(sub, AwaitWill(c, sub, topic, `{"online":false}`))
	late := Subscriber(c, "late", 1, topic)
	in := c.AwaitPublish(late, wire.PublishWith(topic, []byte(`{"online":false}`)))
	c.Expect(in.Retain).To(gomega.BeTrue(), "RETAIN of the will sent to a new subscription")
}
