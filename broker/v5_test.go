package broker_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = Describe("MQTT 5.0 features", func() {
	It("resolves client topic aliases within one connection", Label("MQTT-3.3.2-12", "MQTT-3.3.2-7"), func() {
		b := start()
		sub := connectWire(b, packet.V5, "sub")
		sub.subscribe(1, "acs/#", 0)
		p := connectWire(b, packet.V5, "pub")
		p.send(&packet.Publish{Topic: "acs/s/gate/g1/telemetry", Payload: []byte("1"), Props: packet.Properties{TopicAlias: 3}})
		p.send(&packet.Publish{Payload: []byte("2"), Props: packet.Properties{TopicAlias: 3}})
		p.send(&packet.Publish{Topic: "acs/s/gate/g2/telemetry", Payload: []byte("3"), Props: packet.Properties{TopicAlias: 3}})
		p.send(&packet.Publish{Payload: []byte("4"), Props: packet.Properties{TopicAlias: 3}})
		for _, want := range []string{"g1:1", "g1:2", "g2:3", "g2:4"} {
			got := sub.receive()
			Expect(got.Topic).To(Equal("acs/s/gate/" + want[:2] + "/telemetry"))
			Expect(string(got.Payload)).To(Equal(want[3:]))
			Expect(got.Props.TopicAlias).To(BeZero(), "the broker does not send aliases")
		}
		// A new connection starts without aliases (MQTT-3.3.2-7).
		p.close()
		p2 := connectWire(b, packet.V5, "pub")
		p2.send(&packet.Publish{Payload: []byte("5"), Props: packet.Properties{TopicAlias: 3}})
		Expect(p2.expectClosed().Code).To(Equal(packet.ProtocolError))
	})

	It("decrements the message expiry interval on forward and drops expired queued messages", Label("MQTT-3.3.2-5", "MQTT-3.3.2-6"), func() {
		b := start()
		sub := dialWire(b, packet.V5)
		sub.connect("sub", func(c *packet.Connect) { c.CleanStart = false; c.Props.SessionExpiry = 60 })
		sub.subscribe(1, "exp/#", 1)
		sub.close()
		p := connectWire(b, packet.V5, "pub")
		p.send(&packet.Publish{Topic: "exp/short", QoS: 1, PacketID: 1, Payload: []byte("short"), Props: packet.Properties{MessageExpiry: 1}})
		expectPacket[*packet.Puback](p)
		sent := time.Now()
		p.send(&packet.Publish{Topic: "exp/long", QoS: 1, PacketID: 2, Payload: []byte("long"), Props: packet.Properties{MessageExpiry: 100}})
		expectPacket[*packet.Puback](p)
		p.expectSilence(1100 * time.Millisecond) // "short" expires while queued
		again := dialWire(b, packet.V5)
		Expect(again.connect("sub", func(c *packet.Connect) { c.CleanStart = false }).SessionPresent).To(BeTrue())
		got := again.receive()
		Expect(got.Topic).To(Equal("exp/long"))
		waited := time.Since(sent)
		Expect(got.Props.MessageExpiry).To(BeNumerically("<", 100), "expiry not decremented after %s", waited)
		Expect(got.Props.MessageExpiry).To(BeNumerically(">=", 100-int(waited.Seconds())-1), "decremented by more than the %s waited", waited)
		again.expectSilence(100 * time.Millisecond)
		Expect(b.Stats().DroppedExpired.Load()).To(BeEquivalentTo(1))
	})

	It("delivers a shared subscription's messages to one member of the group each", Label("§4.8.2"), func() {
		b := start()
		m1 := connectWire(b, packet.V5, "m1")
		m1.subscribe(1, "$share/workers/jobs/+", 1)
		m2 := connectWire(b, packet.V5, "m2")
		m2.subscribe(1, "$share/workers/jobs/+", 1)
		plain := connectWire(b, packet.V5, "plain")
		plain.subscribe(1, "jobs/#", 1)
		p := connectWire(b, packet.V5, "pub")
		for i := range 6 {
			p.publish("jobs/a", 1, false, string(rune('0'+i)), uint16(i+1))
		}
		for range 6 {
			plain.receive()
		}
		n1, n2 := 0, 0
		for n1+n2 < 6 {
			if p, err := m1.next(100 * time.Millisecond); err == nil {
				m1.ack(p.(*packet.Publish))
				n1++
				continue
			}
			p, err := m2.next(wait)
			Expect(err).NotTo(HaveOccurred())
			m2.ack(p.(*packet.Publish))
			n2++
		}
		Expect(n1).To(BeNumerically(">", 0), "round robin reached m1")
		Expect(n2).To(BeNumerically(">", 0), "round robin reached m2")
		m1.expectSilence(100 * time.Millisecond)
		m2.expectSilence(100 * time.Millisecond)
	})

	It("does not send retained messages for a shared subscription", Label("§4.8.2"), func() {
		b := start()
		p := connectWire(b, packet.V5, "pub")
		p.publish("jobs/a", 1, true, "kept", 1)
		m := connectWire(b, packet.V5, "m")
		m.subscribe(1, "$share/g/jobs/#", 1)
		m.expectSilence(200 * time.Millisecond)
	})

	It("honours No Local", Label("MQTT-3.8.3-3"), func() {
		b := start()
		w := connectWire(b, packet.V5, "self")
		w.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "echo", QoS: 1, NoLocal: true}}})
		expectPacket[*packet.Suback](w)
		w.publish("echo", 1, false, "mine", 1)
		w.expectSilence(200 * time.Millisecond)
		other := connectWire(b, packet.V5, "other")
		other.publish("echo", 1, false, "theirs", 1)
		Expect(string(w.receive().Payload)).To(Equal("theirs"))
	})

	It("keeps RETAIN on forwarded messages only with Retain As Published", Label("MQTT-3.3.1-12", "MQTT-3.3.1-13"), func() {
		b := start()
		rap := connectWire(b, packet.V5, "rap")
		rap.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "r", QoS: 1, RetainAsPublished: true}}})
		expectPacket[*packet.Suback](rap)
		plain := connectWire(b, packet.V5, "plain")
		plain.subscribe(1, "r", 1)
		p := connectWire(b, packet.V5, "pub")
		p.publish("r", 1, true, "x", 1)
		Expect(rap.receive().Retain).To(BeTrue())
		Expect(plain.receive().Retain).To(BeFalse())
	})

	It("applies Retain Handling 0, 1 and 2", Label("MQTT-3.3.1-9", "MQTT-3.3.1-10", "MQTT-3.3.1-11"), func() {
		b := start()
		p := connectWire(b, packet.V5, "pub")
		p.publish("rh", 1, true, "kept", 1)
		subscribe := func(w *wire, pid uint16, rh byte) {
			w.send(&packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: "rh", QoS: 1, RetainHandling: rh}}})
			expectPacket[*packet.Suback](w)
		}
		w := connectWire(b, packet.V5, "w")
		subscribe(w, 1, 0)
		Expect(w.receive().Retain).To(BeTrue())
		subscribe(w, 2, 0) // re-subscribing with 0 sends it again
		Expect(w.receive().Retain).To(BeTrue())
		subscribe(w, 3, 1) // 1: only when the subscription is new — it is not
		w.expectSilence(200 * time.Millisecond)
		w2 := connectWire(b, packet.V5, "w2")
		subscribe(w2, 1, 1) // new: sent
		Expect(w2.receive().Retain).To(BeTrue())
		w3 := connectWire(b, packet.V5, "w3")
		subscribe(w3, 1, 2) // 2: never
		w3.expectSilence(200 * time.Millisecond)
	})

	It("sends every matching subscription identifier once, and the highest QoS of overlapping subscriptions", Label("MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5"), func() {
		b := start()
		w := connectWire(b, packet.V5, "w")
		w.send(&packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: []uint32{11}}, Subscriptions: []packet.Subscription{{Filter: "acs/+/gate/#", QoS: 0}}})
		expectPacket[*packet.Suback](w)
		w.send(&packet.Subscribe{PacketID: 2, Props: packet.Properties{SubscriptionIDs: []uint32{22}}, Subscriptions: []packet.Subscription{{Filter: "acs/s/#", QoS: 1}}})
		expectPacket[*packet.Suback](w)
		p := connectWire(b, packet.V5, "pub")
		p.publish("acs/s/gate/g1/evt/card", 1, false, "c", 1)
		got := w.receive()
		Expect(got.QoS).To(BeEquivalentTo(1))
		Expect(got.Props.SubscriptionIDs).To(ConsistOf(uint32(11), uint32(22)))
		w.expectSilence(200 * time.Millisecond)
	})

	It("delivers overlapping 3.1.1 subscriptions once at the highest granted QoS", Label("MQTT-3.3.5-1"), func() {
		b := start()
		w := connectWire(b, packet.V311, "w")
		w.subscribe(1, "a/#", 0)
		w.subscribe(2, "a/+", 2)
		p := connectWire(b, packet.V311, "pub")
		p.publish("a/b", 2, false, "x", 1)
		Expect(w.receive().QoS).To(BeEquivalentTo(2))
		w.expectSilence(200 * time.Millisecond)
	})

	It("passes response topic, correlation data, content type, payload format and user properties through", Label("MQTT-3.3.2-15", "MQTT-3.3.2-16", "MQTT-3.3.2-17", "MQTT-3.3.2-18", "MQTT-3.3.2-19", "MQTT-3.3.2-20"), func() {
		b := start()
		dev := connectWire(b, packet.V5, "gate-01")
		dev.subscribe(1, "acs/s/gate/gate-01/cmd/+", 1)
		app := connectWire(b, packet.V5, "app", func(c *packet.Connect) { c.Props.RequestResponseInfo = 1 })
		props := packet.Properties{
			ResponseTopic: "app/replies", CorrelationData: []byte{1, 2, 3}, ContentType: "application/json",
			PayloadFormat: 1, User: []packet.UserProperty{{Key: "site", Value: "s"}, {Key: "site", Value: "t"}},
		}
		app.send(&packet.Publish{Topic: "acs/s/gate/gate-01/cmd/open", QoS: 1, PacketID: 1, Payload: []byte(`{}`), Props: props})
		expectPacket[*packet.Puback](app)
		got := dev.receive()
		Expect(got.Props.ResponseTopic).To(Equal("app/replies"))
		Expect(got.Props.CorrelationData).To(Equal([]byte{1, 2, 3}))
		Expect(got.Props.ContentType).To(Equal("application/json"))
		Expect(got.Props.PayloadFormat).To(BeEquivalentTo(1))
		Expect(got.Props.User).To(Equal(props.User), "user properties in order")
	})

	It("returns response information when asked", Label("MQTT-3.1.2-28"), func() {
		b := start()
		w := dialWire(b, packet.V5)
		ack := w.connect("asker", func(c *packet.Connect) { c.Props.RequestResponseInfo = 1 })
		Expect(ack.Props.ResponseInfo).To(ContainSubstring("asker"))
		w2 := dialWire(b, packet.V5)
		Expect(w2.connect("quiet").Props.ResponseInfo).To(BeEmpty())
	})

	It("answers PUBACK 0x10 when nobody subscribes", Label("§3.4.2.1"), func() {
		b := start()
		p := connectWire(b, packet.V5, "pub")
		p.send(pub("nobody/home", 1, 4))
		Expect(expectPacket[*packet.Puback](p).Code).To(Equal(packet.NoMatchingSubscribers))
	})

	It("gives a reason string with a refusal unless problem information is declined", Label("MQTT-3.1.2-29"), func() {
		b := start(withConfig(func(c *brokerConfig) { c.AllowAnonymous = false }))
		w := dialWire(b, packet.V5)
		ack := w.connect("anon")
		Expect(ack.Code).To(Equal(packet.NotAuthorized))
		Expect(ack.Props.ReasonString).NotTo(BeEmpty())
		w2 := dialWire(b, packet.V5)
		ack2 := w2.connect("anon", func(c *packet.Connect) {
			c.Props.RequestProblemInfo = 0
			c.Props.Present.Add(packet.PropRequestProblemInfo)
		})
		Expect(ack2.Code).To(Equal(packet.NotAuthorized))
		Expect(ack2.Props.ReasonString).To(BeEmpty())
	})

	It("leaves out reason strings that would exceed the client's Maximum Packet Size", Label("MQTT-3.2.2-19", "MQTT-3.14.2-3"), func() {
		b := start(withConfig(func(c *brokerConfig) { c.AllowAnonymous = false }))
		w := dialWire(b, packet.V5)
		ack := w.connect("tiny", func(c *packet.Connect) { c.Props.MaximumPacketSize = 16 })
		Expect(ack.Code).To(Equal(packet.NotAuthorized))
		Expect(ack.Props.ReasonString).To(BeEmpty())

		b2 := start()
		w2 := connectWire(b2, packet.V5, "tiny", func(c *packet.Connect) { c.Props.MaximumPacketSize = 16 })
		w2.send(pub("a/+", 0, 0))
		d := w2.expectClosed()
		Expect(d).NotTo(BeNil())
		Expect(d.Code).To(Equal(packet.TopicNameInvalid))
		Expect(d.Props.ReasonString).To(BeEmpty())
	})

	It("sends DISCONNECT 0x8B to 5.0 clients on shutdown", Label("§4.13"), func() {
		b := start()
		w := connectWire(b, packet.V5, "w")
		ctx := ctxTimeout()
		done := make(chan error, 1)
		go func() { done <- b.Shutdown(ctx) }()
		d := w.expectClosed()
		Expect(d).NotTo(BeNil())
		Expect(d.Code).To(Equal(packet.ServerShuttingDown))
		Eventually(done).WithTimeout(wait).Should(Receive(BeNil()))
	})
})
