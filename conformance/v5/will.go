package v5

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// willDelay is a Connect option: the will's Will Delay Interval, in seconds.
func willDelay(s uint32) func(*packet.Connect) {
	return func(p *packet.Connect) {
		p.Will.Props.WillDelay = s
		p.Will.Props.Present.Add(packet.PropWillDelay)
	}
}

var _ = describe("Will messages", func() {
	suite.Must("stores the will with the Session and publishes it when the connection is lost",
		ids(spec.V5_3_1_2_7, spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 1, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, `{"online":false}`, 1, false))
			c.Step("the device loses power: no DISCONNECT")
			c.Close(dev)
			// A will that never comes was not stored, or not published.
			c.Ack(sub, c.For(spec.V5_3_1_2_7, spec.V5_3_1_2_8).AwaitPublish(sub, wire.PublishWith(topic, []byte(`{"online":false}`))))
		})

	suite.Must("publishes the will when it closes the connection for a protocol error",
		ids(spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, "offline", 0, false))
			c.Step("the device sends a second CONNECT, a protocol error")
			c.Send(dev, c.ConnectPacket("dev"))
			c.AwaitClosed(dev)
			flows.AwaitWill(c, sub, topic, "offline")
		})

	suite.Must("publishes the will on DISCONNECT 0x04 (Disconnect with Will Message)",
		ids(spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, "leaving", 0, false))
			c.Send(dev, &packet.Disconnect{Code: packet.DisconnectWithWill})
			c.AwaitClosed(dev)
			flows.AwaitWill(c, sub, topic, "leaving")
		})

	suite.Must("discards the will on DISCONNECT 0x00 without publishing it",
		ids(spec.V5_3_14_4_3, spec.V5_3_1_2_10), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", c.Persistent(), flows.WithWill(topic, "offline", 0, false))
			c.Disconnect(dev)
			c.AwaitNothing(sub, wire.PublishOn(topic))
			c.Step("the will is gone from the Session: losing the resumed connection publishes nothing")
			dev, _ = c.Connect("dev", c.Persistent())
			c.Close(dev)
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("removes a published will from the Session: a resumed Session without a will publishes none",
		ids(spec.V5_3_1_2_10, spec.V5_3_1_2_8), flows.WillPublishedOnce)

	suite.Must("publishes a will with Will Retain 0 as a non-retained message",
		ids(spec.V5_3_1_2_14, spec.V5_3_1_2_8), flows.WillNotRetained)

	suite.Must("publishes a will with Will Retain 1 as a retained message",
		ids(spec.V5_3_1_2_15, spec.V5_3_1_2_8), flows.WillRetained)

	suite.Must("publishes the will once its delay has passed, and not when the client reconnects within the delay",
		ids(spec.V5_3_1_2_8, spec.V5_3_1_3_9), func(c *suite.C) {
			lost, back := c.Topic("lost"), c.Topic("back")
			sub := flows.Subscriber(c, "sub", 0, lost, back)
			a, _ := c.Connect("a", expiry(60), flows.WithWill(lost, "gone", 0, false), willDelay(1))
			b, _ := c.Connect("b", c.Persistent(), flows.WithWill(back, "gone", 0, false), willDelay(1))
			closed := time.Now()
			c.Close(a)
			c.Close(b)
			c.Step("b reconnects to its Session within the Will Delay Interval")
			c.Connect("b", c.Persistent())
			c.For(spec.V5_3_1_2_8).AwaitNothing(sub, wire.PublishOn(lost))
			in := c.For(spec.V5_3_1_2_8).AwaitWithin(sub, time.Second+c.Timeout(), wire.PublishOn(lost))
			if early := time.Since(closed); early < 900*time.Millisecond {
				c.For(spec.V5_3_1_2_8).Failf("the will of a came %s after the connection closed, before its 1 s delay (%s)", early, wire.Describe(in))
			}
			c.For(spec.V5_3_1_3_9).AwaitNothing(sub, wire.PublishOn(back))
		})

	suite.Must("publishes the will when the Session ends before the Will Delay Interval",
		ids(spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", expiry(0), flows.WithWill(topic, "offline", 0, false), willDelay(3600))
			c.Step("Session Expiry 0: the Session ends with the connection, long before the will's hour")
			c.Close(dev)
			flows.AwaitWill(c, sub, topic, "offline")
		})

	suite.Must("keeps the order of the will's User Properties",
		ids(spec.V5_3_1_3_10, spec.V5_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			user := []packet.UserProperty{{Key: "site", Value: "north"}, {Key: "a", Value: "1"}, {Key: "site", Value: "south"}, {Key: "0", Value: ""}}
			dev, _ := c.Connect("dev", flows.WithWill(topic, "offline", 0, false), func(p *packet.Connect) {
				p.Will.Props.User = user
			})
			c.Close(dev)
			in := flows.AwaitWill(c, sub, topic, "offline")
			c.Expect(in.Props.User).To(Equal(user), "User Properties of the published will")
		})
})
