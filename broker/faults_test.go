package broker_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func fault(spec string) brokertest.Option { return brokertest.WithFault(spec) }

var _ = Describe("Fault modes", func() {
	It("has a spec for every fault mode", func() {
		// Each entry below names the fault it shows; this list must cover broker.Faults().
		Expect(faultSpecs).To(ConsistOf(broker.Faults()))
	})

	It("drop-puback: never sends PUBACK, still forwards", Label("fault", "drop-puback"), func() {
		b := start(fault("drop-puback"))
		sub := connectWire(b, packet.V311, "sub")
		sub.subscribe(1, "t", 1)
		p := connectWire(b, packet.V311, "pub")
		p.send(pub("t", 1, 1))
		Expect(sub.receive().Topic).To(Equal("t"))
		p.expectSilence(300 * time.Millisecond)
	})

	It("applies a fault only to the client it names", Label("fault"), func() {
		b := start(fault("drop-puback@bad"))
		bad := connectWire(b, packet.V311, "bad")
		bad.send(pub("t", 1, 1))
		bad.expectSilence(300 * time.Millisecond)
		good := connectWire(b, packet.V311, "good")
		good.publish("t", 1, false, "x", 1)
	})

	It("drop-pubrec: never sends PUBREC", Label("fault", "drop-pubrec"), func() {
		b := start(fault("drop-pubrec"))
		p := connectWire(b, packet.V311, "pub")
		p.send(pub("t", 2, 1))
		p.expectSilence(300 * time.Millisecond)
	})

	It("drop-pubcomp: never sends PUBCOMP", Label("fault", "drop-pubcomp"), func() {
		b := start(fault("drop-pubcomp"))
		p := connectWire(b, packet.V311, "pub")
		p.send(pub("t", 2, 1))
		expectPacket[*packet.Pubrec](p)
		p.send(&packet.Pubrel{PacketID: 1})
		p.expectSilence(300 * time.Millisecond)
	})

	It("no-retain: retained messages are not stored", Label("fault", "no-retain"), func() {
		b := start(fault("no-retain"))
		p := connectWire(b, packet.V311, "pub")
		p.publish("r", 1, true, "kept?", 1)
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "r", 1)
		s.expectSilence(300 * time.Millisecond)
		Expect(b.Stats().Retained.Load()).To(BeZero())
	})

	It("no-will: the will is not published on connection loss", Label("fault", "no-will"), func() {
		b := start(fault("no-will"))
		obs := connectWire(b, packet.V311, "obs")
		obs.subscribe(1, "w", 1)
		dev := connectWire(b, packet.V311, "dev", func(c *packet.Connect) { c.Will = &packet.Will{Topic: "w", Payload: []byte("gone"), QoS: 1} })
		dev.close()
		obs.expectSilence(500 * time.Millisecond)
	})

	It("no-dup: redelivers without DUP", Label("fault", "no-dup"), func() {
		b := start(fault("no-dup"))
		keep := func(c *packet.Connect) { c.CleanStart = false }
		sub := dialWire(b, packet.V311)
		sub.connect("sub", keep)
		sub.subscribe(1, "t", 1)
		p := connectWire(b, packet.V311, "pub")
		p.publish("t", 1, false, "x", 1)
		first := expectPacket[*packet.Publish](sub)
		sub.close()
		again := dialWire(b, packet.V311)
		again.connect("sub", keep)
		re := expectPacket[*packet.Publish](again)
		Expect(re.PacketID).To(Equal(first.PacketID))
		Expect(re.Dup).To(BeFalse())
	})

	It("no-keepalive-timeout: an idle client is never closed", Label("fault", "no-keepalive-timeout"), func() {
		b := start(fault("no-keepalive-timeout"))
		w := connectWire(b, packet.V311, "idle", func(c *packet.Connect) { c.KeepAlive = 1 })
		w.expectSilence(2 * time.Second)
		w.ping()
	})

	It("qos-downgrade: delivers QoS 1 and 2 messages at QoS 0", Label("fault", "qos-downgrade"), func() {
		b := start(fault("qos-downgrade"))
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "t", 2)
		p := connectWire(b, packet.V311, "pub")
		p.publish("t", 2, false, "x", 1)
		Expect(s.receive().QoS).To(BeEquivalentTo(0))
	})

	It("slow-connack: delays CONNACK by the configured duration", Label("fault", "slow-connack"), func() {
		b := start(fault("slow-connack"), withConfig(func(c *broker.Config) { c.SlowConnackDelay = 600 * time.Millisecond }))
		w := dialWire(b, packet.V311)
		w.send(&packet.Connect{ClientID: "slow", CleanStart: true})
		sent := time.Now()
		expectPacket[*packet.Connack](w)
		Expect(time.Since(sent)).To(BeNumerically(">=", 600*time.Millisecond))
	})

	It("no-session-present: reports Session Present 0 for a resumed session", Label("fault", "no-session-present"), func() {
		b := start(fault("no-session-present"))
		keep := func(c *packet.Connect) { c.CleanStart = false }
		w := dialWire(b, packet.V311)
		w.connect("s", keep)
		w.subscribe(1, "t", 1)
		w.close()
		again := dialWire(b, packet.V311)
		Expect(again.connect("s", keep).SessionPresent).To(BeFalse())
		p := connectWire(b, packet.V311, "pub")
		p.publish("t", 1, false, "still subscribed", 1)
		Expect(string(again.receive().Payload)).To(Equal("still subscribed"))
	})

	It("wrong-suback-qos: grants a QoS other than the one requested", Label("fault", "wrong-suback-qos"), func() {
		b := start(fault("wrong-suback-qos"))
		w := connectWire(b, packet.V311, "w")
		w.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a", QoS: 0}, {Filter: "b", QoS: 1}, {Filter: "c", QoS: 2}}})
		Expect(expectPacket[*packet.Suback](w).Codes).To(Equal([]packet.ReasonCode{1, 2, 0}))
	})

	It("drop-retained-on-subscribe: stores retained messages but does not send them on SUBSCRIBE", Label("fault", "drop-retained-on-subscribe"), func() {
		b := start(fault("drop-retained-on-subscribe"))
		p := connectWire(b, packet.V311, "pub")
		p.publish("r", 1, true, "kept", 1)
		Expect(b.Stats().Retained.Load()).To(BeEquivalentTo(1))
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "r", 1)
		s.expectSilence(300 * time.Millisecond)
	})

	It("no-message-order: delivers messages in swapped pairs", Label("fault", "no-message-order"), func() {
		b := start(fault("no-message-order"))
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "t", 1)
		p := connectWire(b, packet.V311, "pub")
		p.publish("t", 1, false, "1", 1)
		p.publish("t", 1, false, "2", 2)
		Expect(string(s.receive().Payload)).To(Equal("2"))
		Expect(string(s.receive().Payload)).To(Equal("1"))
	})

	It("duplicate-qos2: delivers a QoS 2 message twice as two messages", Label("fault", "duplicate-qos2"), func() {
		b := start(fault("duplicate-qos2"))
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "bill", 2)
		p := connectWire(b, packet.V311, "pub")
		p.publish("bill", 2, false, "charge 2.50", 1)
		first := expectPacket[*packet.Publish](s)
		second := expectPacket[*packet.Publish](s)
		Expect(second.Payload).To(Equal(first.Payload))
		Expect(second.PacketID).NotTo(Equal(first.PacketID))
		Expect(second.Dup).To(BeFalse())
	})

	It("accept-wildcard-publish: accepts and routes a PUBLISH whose topic has wildcards", Label("fault", "accept-wildcard-publish"), func() {
		b := start(fault("accept-wildcard-publish"))
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "acs/#", 1)
		p := connectWire(b, packet.V311, "pub")
		p.publish("acs/+/gate", 1, false, "wild", 1)
		Expect(s.receive().Topic).To(Equal("acs/+/gate"))
	})
})

var faultSpecs = []broker.Fault{
	broker.FaultDropPuback, broker.FaultDropPubrec, broker.FaultDropPubcomp, broker.FaultNoRetain,
	broker.FaultNoWill, broker.FaultNoDup, broker.FaultNoKeepaliveTimeout, broker.FaultQoSDowngrade,
	broker.FaultSlowConnack, broker.FaultNoSessionPresent, broker.FaultWrongSubackQoS,
	broker.FaultDropRetainedOnSubscribe, broker.FaultNoMessageOrder, broker.FaultDuplicateQoS2,
	broker.FaultAcceptWildcardPublish,
}
