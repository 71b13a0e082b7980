// Package wire is the conformance suite's raw MQTT client: it speaks to a broker byte by byte
// through the packet codec, with nothing of a client library in between, so that a check can send
// exactly the packet a statement is about — well-formed, or malformed on purpose with
// packet.Build and its mutations — and observe exactly what the broker answers.
//
// Every expectation has a deadline: ExpectPacket and ExpectNext wait at most their timeout for a
// packet, ExpectClosed for the broker to close the connection, and ExpectNothing watches a short,
// bounded window for a packet that must not arrive (the one legitimate use of waiting in the
// suite; keep the window small). Nothing in this package sleeps.
//
// Each connection records a packet trace — time, direction, decoded packet, raw bytes — that
// several connections of one check can share, so that a report shows the whole exchange in order
// as evidence for its verdict.
//
//	tr := wire.NewTrace()
//	c, err := wire.Dial(ctx, "mqtt://127.0.0.1:1883", wire.Options{Version: packet.V311, Name: "sub", Trace: tr})
//	ack, err := c.Connect(time.Second, &packet.Connect{ClientID: "a", CleanStart: true})
//	err = c.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "t/#", QoS: 1}}})
//	p, err := c.ExpectPacket(time.Second, wire.SubackFor(1))
//	err = c.ExpectNothing(250*time.Millisecond, wire.IsType(packet.TypePublish))
//	fmt.Println(tr)
package wire
