package v311

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// keepaliveSlack is how much later than one and a half times the keepalive a broker may close a
// silent connection and still pass: timer granularity and the round trip of the close.
const keepaliveSlack = 500 * time.Millisecond

var _ = describe("Will messages", func() {
	suite.Must("publishes the will when the connection is lost",
		ids(spec.V311_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 1, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, `{"online":false}`, 1, false))
			c.Step("the device loses power: no DISCONNECT")
			c.Close(dev)
			flows.AwaitWill(c, sub, topic, `{"online":false}`)
		})

	suite.Must("publishes the will when it closes the connection for a protocol violation",
		ids(spec.V311_3_1_2_8, spec.V311_3_1_0_2), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, "offline", 0, false))
			c.Step("the device sends a second CONNECT, a protocol violation")
			c.Send(dev, c.ConnectPacket("dev"))
			if err := dev.ExpectClosed(c.Timeout()); err != nil {
				c.For(spec.V311_3_1_0_2).Failf("%v", err)
			}
			flows.AwaitWill(c, sub, topic, "offline")
		})

	suite.Must("does not publish the will after DISCONNECT",
		ids(spec.V311_3_14_4_3, spec.V311_3_1_2_10), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			dev, _ := c.Connect("dev", flows.WithWill(topic, "offline", 0, false))
			c.Disconnect(dev)
			c.AwaitNothing(sub, wire.PublishOn(topic))
		})

	suite.Must("publishes a will only once: a resumed session without a will publishes none",
		ids(spec.V311_3_1_2_10, spec.V311_3_1_2_8), flows.WillPublishedOnce)

	suite.Must("publishes nothing when a client without a will loses its connection",
		ids(spec.V311_3_1_2_12), func(c *suite.C) {
			sub := flows.Subscriber(c, "sub", 0, c.Topic("#"))
			dev, _ := c.Connect("dev")
			c.Close(dev)
			c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
		})

	suite.Must("publishes a will with Will Retain 0 as a non-retained message",
		ids(spec.V311_3_1_2_16, spec.V311_3_1_2_8), flows.WillNotRetained)

	suite.Must("publishes a will with Will Retain 1 as a retained message",
		ids(spec.V311_3_1_2_17, spec.V311_3_1_2_8), flows.WillRetained)

	suite.Must("closes connections silent for one and a half times their keepalive and publishes the will",
		ids(spec.V311_3_1_2_24, spec.V311_3_1_2_8), func(c *suite.C) {
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			// Two clients, keepalive 1 s and 2 s, silent from the start: each must be closed
			// within 1.5 times its keepalive (plus keepaliveSlack for timers and the network).
			// Two deadlines 1.5 s apart also catch a broker that checks keepalives only every
			// few seconds, which could meet a single deadline by luck.
			a, _ := c.Connect("dev1", func(p *packet.Connect) { p.KeepAlive = 1 }, flows.WithWill(topic, "silent", 0, false))
			start := time.Now()
			b, _ := c.Connect("dev2", func(p *packet.Connect) { p.KeepAlive = 2 })
			for _, tc := range []struct {
				conn *wire.Conn
				due  time.Duration
			}{{a, 1500 * time.Millisecond}, {b, 3 * time.Second}} {
				wait := time.Until(start.Add(tc.due + keepaliveSlack))
				if err := tc.conn.ExpectClosed(max(wait, 0)); err != nil {
					c.For(spec.V311_3_1_2_24).Failf("%s not closed %s after its CONNECT (keepalive %s, slack %s): %v",
						tc.conn.Name(), time.Since(start).Round(time.Millisecond), tc.due*2/3, keepaliveSlack, err)
				}
			}
			flows.AwaitWill(c, sub, topic, "silent")
		})
})
