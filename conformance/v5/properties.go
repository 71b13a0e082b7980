package v5

import (
	"strings"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// withExpiry is a PUBLISH with a Message Expiry Interval of s seconds.
func withExpiry(p *packet.Publish, s uint32) *packet.Publish {
	p.Props.MessageExpiry = s
	p.Props.Present.Add(packet.PropMessageExpiry)
	return p
}

var _ = describe("PUBLISH properties", func() {
	suite.Must("forwards the Payload Format Indicator, Content Type, Response Topic and Correlation Data unchanged",
		ids(spec.V5_3_3_2_4, spec.V5_3_3_2_20, spec.V5_3_3_2_15, spec.V5_3_3_2_16), func(c *suite.C) {
			topic := c.Topic("req")
			a := flows.Subscriber(c, "a", 1, topic)
			b := flows.Subscriber(c, "b", 0, c.Topic("#"))
			p, _ := c.Connect("pub")
			m := &packet.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"cmd":"open"}`)}
			m.Props.PayloadFormat = 1
			m.Props.ContentType = "application/json; charset=utf-8"
			m.Props.ResponseTopic = c.Topic("reply", "gate-01")
			m.Props.CorrelationData = []byte{0x00, 0xFF, 0x10, 'c', 'o', 'r', 'r'}
			c.Put(p, m)
			f := findings{c: c}
			for _, s := range []*wire.Conn{a, b} {
				in := c.AwaitPublish(s, wire.PublishOn(topic))
				pr := in.Props
				f.expect(spec.V5_3_3_2_4, pr.Present.Has(packet.PropPayloadFormat) && pr.PayloadFormat == 1, "%s: Payload Format Indicator %d (present: %t), want 1", s.Name(), pr.PayloadFormat, pr.Present.Has(packet.PropPayloadFormat))
				f.expect(spec.V5_3_3_2_20, pr.ContentType == m.Props.ContentType, "%s: Content Type %q, want %q", s.Name(), pr.ContentType, m.Props.ContentType)
				f.expect(spec.V5_3_3_2_15, pr.ResponseTopic == m.Props.ResponseTopic, "%s: Response Topic %q, want %q", s.Name(), pr.ResponseTopic, m.Props.ResponseTopic)
				f.expect(spec.V5_3_3_2_16, string(pr.CorrelationData) == string(m.Props.CorrelationData), "%s: Correlation Data % x, want % x", s.Name(), pr.CorrelationData, m.Props.CorrelationData)
				c.Ack(s, in)
			}
			c.Step("Payload Format Indicator 0 stays 0 (or absent, which means 0)")
			m0 := &packet.Publish{Topic: topic, QoS: 0, Payload: []byte{0xFF, 0xFE}}
			m0.Props.Present.Add(packet.PropPayloadFormat)
			c.Send(p, m0)
			in := c.AwaitPublish(a, wire.PublishWith(topic, m0.Payload))
			f.expect(spec.V5_3_3_2_4, in.Props.PayloadFormat == 0, "Payload Format Indicator %d, want 0", in.Props.PayloadFormat)
			f.report()
		})

	suite.Must("forwards every User Property unchanged and in order",
		ids(spec.V5_3_3_2_17, spec.V5_3_3_2_18), func(c *suite.C) {
			topic := c.Topic("evt")
			sub := flows.Subscriber(c, "sub", 0, topic)
			p, _ := c.Connect("pub")
			user := []packet.UserProperty{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}, {Key: "site", Value: "north gate"},
				{Key: "empty", Value: ""}, {Key: "ünï", Value: "çødé"}}
			m := flows.Pub(topic, "x", 0, false)
			m.Props.User = user
			c.Send(p, m)
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			got := map[packet.UserProperty]int{}
			for _, u := range in.Props.User {
				got[u]++
			}
			for _, u := range user {
				if got[u] == 0 {
					c.For(spec.V5_3_3_2_17).Failf("User Property %q=%q is missing from the forwarded message (%v)", u.Key, u.Value, in.Props.User)
				}
				got[u]--
			}
			c.For(spec.V5_3_3_2_17).Expect(in.Props.User).To(HaveLen(len(user)), "User Properties forwarded")
			c.For(spec.V5_3_3_2_18).Expect(in.Props.User).To(Equal(user), "order of the User Properties")
		})

	suite.Must("closes the connection on a Content Type or Response Topic that is not valid UTF-8",
		ids(spec.V5_3_3_2_13, spec.V5_3_3_2_19), func(c *suite.C) {
			f := findings{c: c}
			for _, tc := range []struct {
				name  string
				id    spec.ID
				props []byte
			}{
				{"a Content Type holding U+0000", spec.V5_3_3_2_19, stringProp(packet.PropContentType, []byte{'t', 0x00})},
				{"a Response Topic holding an overlong encoding (C0 AF)", spec.V5_3_3_2_13, stringProp(packet.PropResponseTopic, []byte{'r', 0xC0, 0xAF})},
			} {
				c.Step("PUBLISH with %s", tc.name)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, rawPublish([]byte(c.Topic("s")), tc.props, []byte("x")))
				if problem := closedProblem(c, conn); problem != "" {
					f.add(tc.id, "%s: %s", tc.name, problem)
				}
			}
			f.report()
		})

	suite.Must("never forwards a Response Topic that holds a wildcard",
		ids(spec.V5_3_3_2_14), func(c *suite.C) {
			topic := c.Topic("req")
			sub := flows.Subscriber(c, "sub", 0, topic)
			for _, rt := range []string{c.Topic("reply", "+"), c.Topic("reply", "#")} {
				c.Step("PUBLISH with Response Topic %q", rt)
				p, _ := c.Connect("pub")
				m := flows.Pub(topic, rt, 0, false)
				m.Props.ResponseTopic = rt
				c.Send(p, m)
				// The broker may close the publisher (a protocol error) or drop the message; it
				// must not pass the wildcard on.
				if in, err := sub.ExpectPacket(c.Window(), wire.PublishWith(topic, []byte(rt))); err == nil {
					if got := in.(*packet.Publish).Props.ResponseTopic; strings.ContainsAny(got, "+#") {
						c.Failf("the broker forwarded a PUBLISH with Response Topic %q", got)
					}
				}
			}
		})

	suite.Must("forwards what remains of the Message Expiry Interval, deletes copies that expired before delivery and completes the QoS 2 flow of an expired message",
		ids(spec.V5_3_3_2_5, spec.V5_3_3_2_6, spec.V5_4_3_3_13, spec.V5_4_3_3_8, spec.V5_4_5_0_1), func(c *suite.C) {
			topic := c.Topic("evt")
			online := flows.Subscriber(c, "online", 1, topic)
			off, _ := c.Connect("off", c.Persistent())
			flows.Subscribe(c, off, 1, topic)
			// The broker closes the connection once it has handled the DISCONNECT (a SHOULD of
			// §3.14.4): waiting for that keeps "off" from being still attached when the messages
			// come. A broker that leaves the connection open is given the timeout, and judged all
			// the same.
			c.Send(off, &packet.Disconnect{})
			_ = off.ExpectClosed(c.Timeout())
			c.Close(off)
			p, _ := c.Connect("pub")

			c.Step("an online subscriber gets at most the interval the message was published with")
			c.Put(p, withExpiry(flows.Pub(topic, "long", 1, false), 60))
			in := c.AwaitPublish(online, wire.PublishWith(topic, []byte("long")))
			f := findings{c: c}
			f.expect(spec.V5_3_3_2_6, in.Props.Present.Has(packet.PropMessageExpiry) && in.Props.MessageExpiry <= 60,
				"forwarded Message Expiry Interval %d (present: %t), want at most 60", in.Props.MessageExpiry, in.Props.Present.Has(packet.PropMessageExpiry))
			c.Ack(online, in)
			c.Put(p, withExpiry(flows.Pub(topic, "short", 1, false), 1))
			c.Ack(online, c.AwaitPublish(online, wire.PublishWith(topic, []byte("short"))))

			c.Step("the broker has received a QoS 2 PUBLISH with a 1 s expiry, not yet released")
			held := c.NextID(p)
			c.Send(p, withExpiry(&packet.Publish{Topic: c.Topic("in"), QoS: 2, PacketID: held, Payload: []byte("x")}, 1))
			c.For(spec.V5_4_3_3_8).Await(p, wire.PubrecFor(held))

			elapse(c, expiryWait)

			off, _ = c.Connect("off", c.Persistent())
			// A QoS 1 message kept for a disconnected subscriber is MQTT-4.5.0-1's; its interval is this check's.
			in = c.For(spec.V5_4_5_0_1).AwaitPublish(off, wire.PublishWith(topic, []byte("long")))
			f.expect(spec.V5_3_3_2_6, in.Props.MessageExpiry <= 59, "Message Expiry Interval %d of a message that waited %s in the broker, want at most 59", in.Props.MessageExpiry, expiryWait)
			c.Ack(off, in)
			// A copy sent again (DUP 1) had been sent before: "off" was still attached when the
			// message came, its DISCONNECT not yet handled, so onward delivery had started and the
			// copy may go out whatever its expiry. Only a first sending breaks the rule.
			firstShort := wire.And(wire.PublishWith(topic, []byte("short")), wire.Where("DUP 0", func(p packet.Packet) bool { return !p.(*packet.Publish).Dup }))
			if err := off.ExpectNothing(c.Window(), firstShort); err != nil {
				f.add(spec.V5_3_3_2_5, "a message whose 1 s expired before delivery: %v", err)
			}

			c.Send(p, &packet.Pubrel{PacketID: held})
			if got, err := p.ExpectPacket(c.Timeout(), wire.PubcompFor(held)); err != nil {
				f.add(spec.V5_4_3_3_13, "PUBREL of a message that expired after PUBREC: %v", err)
			} else if code := got.(*packet.Pubcomp).Code; code != packet.Success {
				f.add(spec.V5_4_3_3_13, "PUBCOMP %s after the message expired, want 0x00", flows.CodeName(code))
			}
			f.report()
		})

	suite.Must("applies no message expiry to a QoS 2 PUBLISH it has already sent",
		ids(spec.V5_4_3_3_7, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("q2")
			inflight, _ := c.Connect("inflight", c.Persistent())
			flows.Subscribe(c, inflight, 2, topic)
			p, _ := c.Connect("pub")
			c.Put(p, withExpiry(flows.Pub(topic, "charge", 2, false), 1))
			sent := c.AwaitPublish(inflight, wire.PublishOn(topic))
			deliveredQoS(c, sent, 2)
			c.Step("the subscriber loses its connection before PUBREC; the message's 1 s runs out")
			c.Close(inflight)
			elapse(c, expiryWait)
			inflight, _ = c.Connect("inflight", c.Persistent())
			again := c.For(spec.V5_4_3_3_7).AwaitPublish(inflight, publishID(topic, sent.PacketID))
			c.Ack(inflight, again)
		})

})
