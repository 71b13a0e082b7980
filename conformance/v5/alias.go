package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// aliased is a QoS 0 PUBLISH that sets or uses a Topic Alias: with topic "" it uses the alias.
func aliased(topic string, alias uint16, payload string) *packet.Publish {
	p := flows.Pub(topic, payload, 0, false)
	p.Props.TopicAlias = alias
	p.Props.Present.Add(packet.PropTopicAlias)
	return p
}

// topicAliasMaximum is the Topic Alias Maximum the broker announced in the run's probe.
func topicAliasMaximum(c *suite.C) uint16 {
	if ack := c.Env.Caps[spec.Version5].Connack; ack != nil {
		return ack.Props.TopicAliasMaximum
	}
	return 0
}

var _ = describe("Topic aliases", func() {
	suite.Must("accepts every Topic Alias from 1 to the Topic Alias Maximum of its CONNACK",
		ids(spec.V5_3_3_2_12), func(c *suite.C) {
			c.Require(suite.FeatureTopicAliases)
			sub := flows.Subscriber(c, "sub", 0, c.Topic("#"))
			conn, ack := c.Connect("pub")
			limit := ack.Props.TopicAliasMaximum
			if limit == 0 {
				c.NotSupported("this CONNACK announces no Topic Alias Maximum, unlike the probe's")
			}
			// Every alias up to 64, then the highest ones: enough to catch an off-by-one at either end.
			var aliases []uint16
			for a := uint16(1); a <= limit && a <= 64; a++ {
				aliases = append(aliases, a)
			}
			for a := max(limit-2, 65); a <= limit && a > 64; a++ {
				aliases = append(aliases, a)
			}
			for _, a := range aliases {
				topic := c.Topic(fmt.Sprintf("t%d", a))
				c.Send(conn, aliased(topic, a, "set"))
				c.Send(conn, aliased("", a, "use"))
			}
			c.Sync(conn)
			for _, a := range aliases {
				topic := c.Topic(fmt.Sprintf("t%d", a))
				c.AwaitPublish(sub, wire.PublishWith(topic, []byte("set")))
				c.AwaitPublish(sub, wire.PublishWith(topic, []byte("use")))
			}
		})

	suite.Must("carries no Topic Alias mapping from one connection to the next",
		ids(spec.V5_3_3_2_7), func(c *suite.C) {
			c.Require(suite.FeatureTopicAliases)
			topic := c.Topic("status")
			sub := flows.Subscriber(c, "sub", 0, topic)
			conn, _ := c.Connect("pub", c.Persistent())
			c.Send(conn, aliased(topic, 1, "set"))
			c.AwaitPublish(sub, wire.PublishWith(topic, []byte("set")))
			c.Disconnect(conn)
			conn, _ = c.Connect("pub", c.Persistent())
			c.Step("alias 1 on the new connection has no mapping: a protocol error")
			c.TrySendRaw(conn, packet.Build(aliased("", 1, "stale"), v5))
			closedWithout(c, conn)
			c.AwaitNothing(sub, wire.PublishWith(topic, []byte("stale")))
		})

	suite.Must("closes the connection on a Topic Alias of 0 or above its Topic Alias Maximum",
		ids(spec.V5_4_13_1_1), func(c *suite.C) {
			sub := flows.Subscriber(c, "sub", 0, c.Topic("#"))
			for _, a := range []uint16{0, topicAliasMaximum(c) + 1} {
				c.Step("PUBLISH with Topic Alias %d", a)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, packet.Build(aliased(c.Topic("a"), a, "x"), v5))
				closedWithout(c, conn)
			}
			c.AwaitNothing(sub, wire.PublishUnder(c.Topic()))
		})

	suite.Must("sends no Topic Alias 0, none above the client's Topic Alias Maximum and none to a client that allows none",
		ids(spec.V5_3_3_2_8, spec.V5_3_3_2_11, spec.V5_3_1_2_26, spec.V5_3_1_2_27), func(c *suite.C) {
			filter := c.Topic("#")
			none := flows.Subscriber(c, "none", 0, filter)
			zero, _ := c.Connect("zero", props(func(p *packet.Properties) { p.Present.Add(packet.PropTopicAliasMaximum) }))
			flows.Subscribe(c, zero, 0, filter)
			two, _ := c.Connect("two", props(func(p *packet.Properties) { p.TopicAliasMaximum = 2 }))
			flows.Subscribe(c, two, 0, filter)
			p, _ := c.Connect("pub")
			const rounds, topics = 3, 5
			for range rounds {
				for t := range topics {
					c.Send(p, flows.Pub(c.Topic(fmt.Sprintf("long-topic-name-%d", t)), "x", 0, false))
				}
			}
			f := findings{c: c}
			for _, s := range []struct {
				conn  *wire.Conn
				limit uint16
				id    spec.ID
			}{{none, 0, spec.V5_3_1_2_27}, {zero, 0, spec.V5_3_1_2_27}, {two, 2, spec.V5_3_1_2_26}} {
				for range rounds * topics {
					// Any PUBLISH: one that uses an alias has an empty Topic Name.
					in := c.AwaitPublish(s.conn, wire.Any())
					if !in.Props.Present.Has(packet.PropTopicAlias) {
						continue
					}
					a := in.Props.TopicAlias
					switch {
					case a == 0:
						f.add(spec.V5_3_3_2_8, "%s: the broker sent Topic Alias 0", s.conn.Name())
					case s.limit == 0:
						f.add(spec.V5_3_1_2_27, "%s: the broker sent Topic Alias %d to a client whose Topic Alias Maximum is absent or 0", s.conn.Name(), a)
					case a > s.limit:
						f.add(spec.V5_3_1_2_26, "%s: the broker sent Topic Alias %d above the client's Topic Alias Maximum %d", s.conn.Name(), a, s.limit)
						f.add(spec.V5_3_3_2_11, "%s: Topic Alias %d above %d", s.conn.Name(), a, s.limit)
					}
				}
			}
			f.report()
		})
})
