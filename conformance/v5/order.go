package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = describe("Message ordering", func() {
	suite.Must("delivers each client's messages on a topic in the order it published them, per QoS, on non-shared subscriptions",
		ids(spec.V5_4_6_0_5, spec.V5_4_6_0_6), func(c *suite.C) {
			topic := c.Topic("evt", "passage")
			sub := subscriber(c, "sub", 2, topic)
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
		})
})
