package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// sizeRules names, per packet type, the statements that forbid a Reason String and User
// Properties that would make the packet exceed the receiver's Maximum Packet Size.
var sizeRules = map[packet.Type][2]spec.ID{
	packet.TypeConnack:    {spec.V5_3_2_2_19, spec.V5_3_2_2_20},
	packet.TypePuback:     {spec.V5_3_4_2_2, spec.V5_3_4_2_3},
	packet.TypePubrec:     {spec.V5_3_5_2_2, spec.V5_3_5_2_3},
	packet.TypePubrel:     {spec.V5_3_6_2_2, spec.V5_3_6_2_3},
	packet.TypePubcomp:    {spec.V5_3_7_2_2, spec.V5_3_7_2_3},
	packet.TypeSuback:     {spec.V5_3_9_2_1, spec.V5_3_9_2_2},
	packet.TypeUnsuback:   {spec.V5_3_11_2_1, spec.V5_3_11_2_2},
	packet.TypeDisconnect: {spec.V5_3_14_2_3, spec.V5_3_14_2_4},
}

// limited connects as role announcing a Maximum Packet Size of limit bytes and Request Problem
// Information 1 (so that the broker may add Reason Strings), and returns the connection.
func limited(c *suite.C, role string, limit uint32) *wire.Conn {
	conn, _ := c.Connect(role, props(func(p *packet.Properties) {
		p.MaximumPacketSize = limit
		p.RequestProblemInfo = 1
		p.Present.Add(packet.PropRequestProblemInfo)
	}))
	return conn
}

// smallLimit is a Maximum Packet Size that an acknowledgement with a Reason Code fits in (6
// bytes) with room for a short property, and the broker's own CONNACK (as the probe saw it) too.
func smallLimit(c *suite.C) uint32 {
	limit := 16
	if ack := c.Env.Caps[spec.Version5].Connack; ack != nil {
		// Without what the statements judge: a Reason String or User Properties the probe's
		// CONNACK carried would make the limit too generous to see them.
		bare := *ack
		bare.Props.ReasonString, bare.Props.User = "", nil
		limit = max(limit, bare.Size(v5)+8)
	}
	return uint32(limit)
}

// withinLimit fails the check for every packet the broker sent on conn that is larger than
// limit: a packet carrying a Reason String is blamed on its type's Reason String statement, one
// carrying User Properties on its User Property statement, any other on MQTT-3.1.2-24. Checks
// that use it cite MQTT-3.1.2-24 and the statements of the types they provoke.
func withinLimit(c *suite.C, conn *wire.Conn, limit uint32) {
	for _, e := range c.Trace().Events() {
		if e.Dir != wire.Received || e.Conn != conn.Name() || uint32(len(e.Raw)) <= limit {
			continue
		}
		t := packet.Type(e.Raw[0] >> 4)
		msg := fmt.Sprintf("%s: the broker sent a %s of %d bytes to a client whose Maximum Packet Size is %d", conn.Name(), t, len(e.Raw), limit)
		pr := ackProps(e.Packet)
		rules, ok := sizeRules[t]
		switch {
		case ok && pr != nil && pr.ReasonString != "" && len(pr.User) > 0:
			c.For(rules[0], rules[1], spec.V5_3_1_2_24).Failf("%s, with a Reason String and User Properties", msg)
		case ok && pr != nil && pr.ReasonString != "":
			c.For(rules[0], spec.V5_3_1_2_24).Failf("%s, with the Reason String %q", msg, pr.ReasonString)
		case ok && pr != nil && len(pr.User) > 0:
			c.For(rules[1], spec.V5_3_1_2_24).Failf("%s, with User Properties", msg)
		default:
			c.For(spec.V5_3_1_2_24).Failf("%s", msg)
		}
	}
}

var _ = describe("Maximum Packet Size", func() {
	suite.Must("keeps a refusing CONNACK within the client's Maximum Packet Size",
		ids(spec.V5_3_2_2_19, spec.V5_3_2_2_20, spec.V5_3_1_2_24), func(c *suite.C) {
			const limit = 16
			conn := c.Dial("dev")
			p := c.ConnectPacket("dev")
			p.Props.AuthMethod = unknownAuthMethod
			p.Props.MaximumPacketSize = limit
			p.Props.RequestProblemInfo = 1
			p.Props.Present.Add(packet.PropRequestProblemInfo)
			c.Send(conn, p)
			c.AwaitClosed(conn)
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a PUBACK within the client's Maximum Packet Size",
		ids(spec.V5_3_4_2_2, spec.V5_3_4_2_3, spec.V5_3_1_2_24, spec.V5_4_3_2_4), func(c *suite.C) {
			limit := smallLimit(c)
			conn := limited(c, "pub", limit)
			c.Step("a QoS 1 PUBLISH nobody subscribes to: PUBACK may say 0x10 and explain it")
			id := c.NextID(conn)
			c.Send(conn, &packet.Publish{Topic: c.Topic("nobody"), QoS: 1, PacketID: id, Payload: []byte("x")})
			c.For(spec.V5_4_3_2_4).Await(conn, wire.PubackFor(id))
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a PUBREC within the client's Maximum Packet Size",
		ids(spec.V5_3_5_2_2, spec.V5_3_5_2_3, spec.V5_3_1_2_24, spec.V5_4_3_3_8), func(c *suite.C) {
			limit := smallLimit(c)
			conn := limited(c, "pub", limit)
			id := c.NextID(conn)
			c.Send(conn, &packet.Publish{Topic: c.Topic("nobody"), QoS: 2, PacketID: id, Payload: []byte("x")})
			c.For(spec.V5_4_3_3_8).Await(conn, wire.PubrecFor(id))
			c.Send(conn, &packet.Pubrel{PacketID: id})
			c.Sync(conn)
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a PUBCOMP within the client's Maximum Packet Size",
		ids(spec.V5_3_7_2_2, spec.V5_3_7_2_3, spec.V5_3_1_2_24, spec.V5_4_3_3_11), func(c *suite.C) {
			limit := smallLimit(c)
			conn := limited(c, "pub", limit)
			c.Step("PUBREL for a Packet Identifier the broker does not know: PUBCOMP may say 0x92 and explain it")
			c.Send(conn, &packet.Pubrel{PacketID: 77})
			c.For(spec.V5_4_3_3_11).Await(conn, wire.PubcompFor(77))
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a PUBREL within the client's Maximum Packet Size",
		ids(spec.V5_3_6_2_2, spec.V5_3_6_2_3, spec.V5_3_1_2_24, spec.V5_4_3_3_4, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("q2")
			limit := max(smallLimit(c), uint32(len(topic)+16))
			conn := limited(c, "sub", limit)
			flows.Subscribe(c, conn, 2, topic)
			p, _ := c.Connect("pub")
			c.PutMsg(p, topic, "x", 2, false)
			in := c.AwaitPublish(conn, wire.PublishOn(topic))
			deliveredQoS(c, in, 2)
			c.Send(conn, &packet.Pubrec{PacketID: in.PacketID})
			c.For(spec.V5_4_3_3_4).Await(conn, wire.PubrelFor(in.PacketID))
			c.Send(conn, &packet.Pubcomp{PacketID: in.PacketID})
			c.Step("PUBREC for a Packet Identifier the broker never used: a PUBREL 0x92 may explain it")
			unused := in.PacketID + 1000
			c.Send(conn, &packet.Pubrec{PacketID: unused})
			_, _ = conn.ExpectPacket(c.Window(), wire.PubrelFor(unused))
			c.Sync(conn)
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a SUBACK within the client's Maximum Packet Size",
		ids(spec.V5_3_9_2_1, spec.V5_3_9_2_2, spec.V5_3_1_2_24, spec.V5_3_8_4_1), func(c *suite.C) {
			limit := smallLimit(c)
			conn := limited(c, "sub", limit)
			c.Step("a SUBSCRIBE with a valid and an invalid filter: a SUBACK may explain the refusal")
			c.Send(conn, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: c.Topic("ok"), QoS: 1}, {Filter: c.Topic("#", "bad"), QoS: 1}}})
			if _, err := conn.ExpectPacket(c.Timeout(), wire.SubackFor(1)); err != nil {
				// Closing the connection for the invalid filter is allowed too; whatever was
				// sent before the close is judged below.
				if closed, by := conn.Closed(); !closed || by != "broker" {
					c.For(spec.V5_3_8_4_1).Failf("neither a SUBACK nor a closed connection: %v", err)
				}
			}
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps an UNSUBACK within the client's Maximum Packet Size",
		ids(spec.V5_3_11_2_1, spec.V5_3_11_2_2, spec.V5_3_1_2_24, spec.V5_3_10_4_4), func(c *suite.C) {
			limit := smallLimit(c)
			conn := limited(c, "sub", limit)
			c.Step("UNSUBSCRIBE from a filter never subscribed: UNSUBACK may say 0x11 and explain it")
			c.Send(conn, &packet.Unsubscribe{PacketID: 3, Filters: []string{c.Topic("never")}})
			c.For(spec.V5_3_10_4_4).Await(conn, wire.UnsubackFor(3))
			withinLimit(c, conn, limit)
		})

	suite.Must("keeps a DISCONNECT within the client's Maximum Packet Size",
		ids(spec.V5_3_14_2_3, spec.V5_3_14_2_4, spec.V5_3_1_2_24), func(c *suite.C) {
			limit := smallLimit(c)
			c.Step("a protocol error: the broker may explain its DISCONNECT")
			conn := limited(c, "bad", limit)
			c.TrySendRaw(conn, packet.Build(flows.Pub(c.Topic("a"), "x", 1, false), v5, packet.WithFlags(0x06)))
			c.AwaitClosed(conn)
			withinLimit(c, conn, limit)
			c.Step("a take-over: DISCONNECT 0x8E")
			first := limited(c, "dev", limit)
			c.Connect("dev")
			c.AwaitClosed(first)
			withinLimit(c, first, limit)
		})

	suite.Must("discards a message too large for the client and goes on as if it had been sent",
		ids(spec.V5_3_1_2_24, spec.V5_3_1_2_25), func(c *suite.C) {
			topic := c.Topic("img")
			const limit = 256
			conn, _ := c.Connect("dev", c.Persistent(), props(func(p *packet.Properties) { p.MaximumPacketSize = limit }))
			flows.Subscribe(c, conn, 1, topic)
			p, _ := c.Connect("cam")
			big := make([]byte, 1024)
			c.PutMsg(p, topic, string(big), 1, false)
			c.PutMsg(p, topic, "small", 1, false)
			c.For(spec.V5_3_1_2_25).Ack(conn, c.For(spec.V5_3_1_2_25).AwaitPublish(conn, wire.PublishWith(topic, []byte("small"))))
			for _, p := range conn.Pending() {
				if pub, ok := p.(*packet.Publish); ok && len(pub.Payload) == len(big) {
					c.For(spec.V5_3_1_2_24, spec.V5_3_1_2_25).Failf("the broker sent the %d-byte message instead of discarding it", len(big))
				}
			}
			withinLimit(c, conn, limit)
			c.Step("the discarded message counts as sent: it is not delivered on reconnect either")
			c.Close(conn)
			conn, _ = c.Connect("dev", c.Persistent())
			c.For(spec.V5_3_1_2_25).AwaitNothing(conn, wire.PublishOn(topic))
		})
})

var _ = describe("Receive Maximum and flow control", func() {
	suite.Must("keeps at most the client's Receive Maximum QoS 1 and 2 messages unacknowledged, and sends the next as each is acknowledged",
		ids(spec.V5_3_3_4_9, spec.V5_4_9_0_1, spec.V5_4_9_0_2, spec.V5_3_8_4_8), func(c *suite.C) {
			topic := c.Topic("evt")
			conn, held := atReceiveMaximum(c, topic)
			c.Step("%d unacknowledged: the send quota is 0", len(held))
			c.For(spec.V5_3_3_4_9, spec.V5_4_9_0_2).AwaitNothing(conn, wire.PublishOn(topic))
			c.Step("each acknowledgement frees one place")
			limit := len(held)
			for got := limit; got < flowMessages; got++ {
				first := held[0]
				held = held[1:]
				if first.QoS == 1 {
					c.Send(conn, &packet.Puback{PacketID: first.PacketID})
				} else {
					c.Send(conn, &packet.Pubrec{PacketID: first.PacketID})
					c.Await(conn, wire.PubrelFor(first.PacketID))
					c.Send(conn, &packet.Pubcomp{PacketID: first.PacketID})
				}
				held = append(held, c.For(spec.V5_4_9_0_1).AwaitPublish(conn, wire.PublishOn(topic)))
				if got == limit {
					// Once is enough to see that the quota stays at the limit.
					c.For(spec.V5_3_3_4_9, spec.V5_4_9_0_2).AwaitNothing(conn, wire.PublishOn(topic))
				}
			}
		})

	suite.Must("answers packets other than PUBLISH without delay while the client's Receive Maximum is reached",
		ids(spec.V5_3_3_4_10, spec.V5_4_9_0_3, spec.V5_4_9_0_1, spec.V5_3_8_4_8), func(c *suite.C) {
			conn, _ := atReceiveMaximum(c, c.Topic("evt"))
			c.Send(conn, &packet.Pingreq{})
			c.Await(conn, wire.IsType(packet.TypePingresp))
			id := c.NextID(conn)
			c.Send(conn, &packet.Subscribe{PacketID: id, Subscriptions: []packet.Subscription{{Filter: c.Topic("other"), QoS: 0}}})
			c.Await(conn, wire.SubackFor(id))
			c.Send(conn, &packet.Unsubscribe{PacketID: id + 1, Filters: []string{c.Topic("other")}})
			c.Await(conn, wire.UnsubackFor(id+1))
		})

})

// flowMessages is how many QoS 1 and 2 messages the Receive Maximum checks publish.
const flowMessages = 6

// atReceiveMaximum connects a subscriber with Receive Maximum 2, publishes flowMessages QoS 1
// and 2 messages to it and returns once the first two have arrived unacknowledged: the broker's
// send quota for the subscriber is then 0.
func atReceiveMaximum(c *suite.C, topic string) (*wire.Conn, []*packet.Publish) {
	const recvMax = 2
	conn, _ := c.Connect("sub", props(func(p *packet.Properties) { p.ReceiveMaximum = recvMax }))
	flows.Subscribe(c, conn, 2, topic)
	p, _ := c.Connect("pub")
	for i := range flowMessages {
		c.PutMsg(p, topic, fmt.Sprintf("m%d", i), packet.QoS(1+i%2), false)
	}
	var held []*packet.Publish
	for range recvMax {
		in := c.For(spec.V5_4_9_0_1).AwaitPublish(conn, wire.PublishOn(topic))
		if in.QoS == 0 {
			c.For(spec.V5_3_8_4_8).Failf("%q published at QoS 1 or 2 arrived at QoS 0", in.Payload)
		}
		held = append(held, in)
	}
	return conn, held
}
