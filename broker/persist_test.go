package broker_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = Describe("Session store", func() {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("keeps persistent sessions, subscriptions and unacknowledged messages across a broker restart in MQTT "+v.String(), Label("MQTT-4.1.0-1"), func() {
			store := session.NewMemory()
			withStore := withConfig(func(c *broker.Config) { c.Store = store })
			keep := func(c *packet.Connect) {
				c.CleanStart = false
				c.Props.SessionExpiry = 300
			}

			first := start(withStore)
			sub := dialWire(first, v)
			sub.connect("sub", keep)
			sub.subscribe(1, "p/#", 2)
			pub := connectWire(first, v, "pub")
			pub.publish("p/1", 1, false, "in flight", 1)
			inflight := expectPacket[*packet.Publish](sub) // never acknowledged
			sub.close()
			pub.publish("p/2", 2, false, "queued", 2)
			pub.ping()
			Eventually(func() int { return store.Messages("sub") }).WithTimeout(wait).Should(Equal(2))
			Expect(first.Shutdown(ctxTimeout())).To(Succeed())

			second := start(withStore)
			again := dialWire(second, v)
			Expect(again.connect("sub", keep).SessionPresent).To(BeTrue())
			re := expectPacket[*packet.Publish](again)
			Expect(re.Dup).To(BeTrue())
			Expect(re.PacketID).To(Equal(inflight.PacketID))
			Expect(string(re.Payload)).To(Equal("in flight"))
			again.send(&packet.Puback{PacketID: re.PacketID})
			q := again.receive()
			Expect(string(q.Payload)).To(Equal("queued"))
			Expect(q.QoS).To(BeEquivalentTo(2))
			Eventually(func() int { return store.Messages("sub") }).WithTimeout(wait).Should(BeZero())

			// The subscription survived too.
			p2 := connectWire(second, v, "pub")
			p2.publish("p/3", 1, false, "after restart", 1)
			Expect(string(again.receive().Payload)).To(Equal("after restart"))
		})
	}

	It("does not store clean sessions", func() {
		store := session.NewMemory()
		b := start(withConfig(func(c *broker.Config) { c.Store = store }))
		w := connectWire(b, packet.V311, "clean")
		w.subscribe(1, "t", 1)
		Expect(store.Len()).To(BeZero())
	})
})
