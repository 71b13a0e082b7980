package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/broker/session/boltstore"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// running is an embedded broker with the store it was started on.
type running struct {
	*brokertest.Broker
	store *boltstore.Store
}

// startOn starts an embedded broker on the data directory dir, with an in-flight window of two
// so that a few messages are enough to have some in flight and some queued.
func startOn(dir string) *running {
	GinkgoHelper()
	store, err := boltstore.OpenDir(dir, boltstore.Options{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = store.Close() }) // after brokertest's own cleanup shut the broker down
	b := brokertest.Start(GinkgoT(), brokertest.WithConfig(func(c *broker.Config) {
		c.Store = store
		c.MaxInflight = 2
	}))
	return &running{b, store}
}

// stop shuts the broker down and closes its data file, as a restart does.
func (r *running) stop() {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	Expect(r.Shutdown(ctx)).To(Succeed())
	Expect(r.store.Close()).To(Succeed())
}

func payloads(ps []*packet.Publish) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p.Payload)
	}
	return out
}

var _ = Describe("A broker restarted on the same data directory", func() {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("keeps sessions, subscriptions, in-flight and queued QoS 1/2 messages, half-done QoS 2 flows and retained messages in MQTT "+v.String(),
			Label("MQTT-3.1.2-4", "MQTT-3.2.2-2", "MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-3.3.1-5", "MQTT-3.3.1-10"), func() {
				dir := GinkgoT().TempDir()
				first := startOn(dir)
				sub, present := connectTo(first.Addr(), v, "billing", persistent)
				Expect(present).To(BeFalse())
				sub.subscribe(1, "acs/+/gate/+/cmd/#", 1)
				sub.subscribe(2, "acs/+/gate/+/evt/#", 2)
				pub, _ := connectTo(first.Addr(), v, "gate-01", persistent)

				// Two messages go in flight (the window is two): "m1" is never acknowledged, "m2"
				// gets PUBREC but never PUBCOMP.
				pub.publish("acs/s1/gate/gate-01/cmd/open", 1, false, "m1", 1)
				pub.publish("acs/s1/gate/gate-01/evt/charge", 2, false, "m2", 2)
				pub.send(&packet.Pubrel{PacketID: 2})
				Expect(expectPacket[*packet.Pubcomp](pub).PacketID).To(Equal(uint16(2)))
				m1 := expectPacket[*packet.Publish](sub)
				m2 := expectPacket[*packet.Publish](sub)
				Expect(payloads([]*packet.Publish{m1, m2})).To(Equal([]string{"m1", "m2"}))
				sub.send(&packet.Pubrec{PacketID: m2.PacketID})
				Expect(expectPacket[*packet.Pubrel](sub).PacketID).To(Equal(m2.PacketID))

				// Two more wait in the queue; "m5" is a QoS 2 message whose sender never sends
				// PUBREL before the restart.
				pub.publish("acs/s1/gate/gate-01/cmd/close", 1, false, "m3", 3)
				pub.publish("acs/s1/gate/gate-01/evt/passage", 2, false, "m4", 4)
				pub.send(&packet.Pubrel{PacketID: 4})
				Expect(expectPacket[*packet.Pubcomp](pub).PacketID).To(Equal(uint16(4)))
				pub.publish("acs/s1/gate/gate-01/evt/charge", 2, false, "m5", 5)

				// Retained: set, replace, delete.
				pub.publish("acs/s1/gate/gate-01/status", 1, true, `{"online":true}`, 6)
				pub.publish("acs/s1/gate/gate-02/status", 1, true, "old", 7)
				pub.publish("acs/s1/gate/gate-02/status", 1, true, "new", 8)
				pub.publish("acs/s1/gate/gate-03/status", 1, true, "gone", 9)
				pub.publish("acs/s1/gate/gate-03/status", 1, true, "", 10)
				Expect(sub.ping()).To(BeEmpty(), "the window of two is full: nothing more is sent")
				first.stop()

				second := startOn(dir)
				sub, present = connectTo(second.Addr(), v, "billing", persistent)
				Expect(present).To(BeTrue(), "Session Present after the restart")
				// MQTT-4.4.0-1: the unacknowledged PUBLISH again with DUP=1 and its packet id, the
				// PUBREL again.
				again := expectPacket[*packet.Publish](sub)
				Expect(again.Dup).To(BeTrue())
				Expect(again.PacketID).To(Equal(m1.PacketID))
				Expect(string(again.Payload)).To(Equal("m1"))
				Expect(again.QoS).To(Equal(packet.QoS(1)))
				Expect(expectPacket[*packet.Pubrel](sub).PacketID).To(Equal(m2.PacketID))
				sub.send(&packet.Puback{PacketID: again.PacketID})
				sub.send(&packet.Pubcomp{PacketID: m2.PacketID})
				got := sub.receive(func(got []*packet.Publish) bool { return len(got) >= 3 })
				Expect(payloads(got)).To(Equal([]string{"m3", "m4", "m5"}), "queued messages, in order, once each")
				for _, p := range got {
					Expect(p.Dup).To(BeFalse(), "%s had never been sent", p.Payload)
				}
				Expect(got[1].QoS).To(Equal(packet.QoS(2)))

				// The sender's half-done QoS 2 flow: its PUBREL completes it (a 5.0 broker that had
				// forgotten the packet id would answer 0x92) and "m5" is not forwarded again.
				pub, present = connectTo(second.Addr(), v, "gate-01", persistent)
				Expect(present).To(BeTrue())
				// A sender that missed the PUBREC sends the PUBLISH again with DUP=1: it is
				// acknowledged, not forwarded a second time.
				pub.send(&packet.Publish{Dup: true, QoS: 2, PacketID: 5, Topic: "acs/s1/gate/gate-01/evt/charge", Payload: []byte("m5")})
				Expect(expectPacket[*packet.Pubrec](pub).PacketID).To(Equal(uint16(5)))
				pub.send(&packet.Pubrel{PacketID: 5})
				comp := expectPacket[*packet.Pubcomp](pub)
				Expect(comp.PacketID).To(Equal(uint16(5)))
				Expect(comp.Code).To(Equal(packet.Success))
				Expect(sub.ping()).To(BeEmpty(), "m5 forwarded a second time")

				// The subscriptions are back: a new command reaches the subscriber.
				pub.publish("acs/s1/gate/gate-01/cmd/open", 1, false, "m6", 11)
				Expect(payloads(sub.receive(func(got []*packet.Publish) bool { return len(got) >= 1 }))).To(Equal([]string{"m6"}))

				// Retained messages: the replaced one and the set one, not the deleted one.
				watcher, _ := connectTo(second.Addr(), v, "watcher")
				watcher.subscribe(1, "acs/s1/gate/+/status", 1)
				retained := watcher.receive(func([]*packet.Publish) bool { return true })
				Expect(retained).To(HaveLen(2))
				byTopic := map[string]string{}
				for _, p := range retained {
					Expect(p.Retain).To(BeTrue())
					byTopic[p.Topic] = string(p.Payload)
				}
				Expect(byTopic).To(Equal(map[string]string{
					"acs/s1/gate/gate-01/status": `{"online":true}`,
					"acs/s1/gate/gate-02/status": "new",
				}))
				Expect(second.Stats().Retained.Load()).To(BeEquivalentTo(2))
			})
	}

	It("refuses to start on a damaged data file, naming it", func() {
		dir := GinkgoT().TempDir()
		first := startOn(dir)
		w, _ := connectTo(first.Addr(), packet.V311, "c", persistent)
		w.subscribe(1, "t", 1)
		first.stop()
		path := filepath.Join(dir, boltstore.FileName)
		Expect(os.Truncate(path, 5000)).To(Succeed())
		_, err := boltstore.OpenDir(dir, boltstore.Options{})
		Expect(err).To(MatchError(ContainSubstring(path)))
	})

	It("does not keep clean sessions or $SYS values", func() {
		dir := GinkgoT().TempDir()
		store, err := boltstore.OpenDir(dir, boltstore.Options{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = store.Close() })
		b := brokertest.Start(GinkgoT(), brokertest.WithConfig(func(c *broker.Config) {
			c.Store = store
			c.SysInterval = 50 * time.Millisecond
		}))
		w, _ := connectTo(b.Addr(), packet.V311, "clean")
		w.subscribe(1, "$SYS/broker/uptime", 0)
		Expect(expectPacket[*packet.Publish](w).Topic).To(Equal("$SYS/broker/uptime"))
		(&running{b, store}).stop()
		store, err = boltstore.OpenDir(dir, boltstore.Options{})
		Expect(err).NotTo(HaveOccurred())
		sessions, retained := 0, 0
		Expect(store.Load(func(session.State, []session.Message) error { sessions++; return nil })).To(Succeed())
		Expect(store.LoadRetained(func(session.Retained) error { retained++; return nil })).To(Succeed())
		Expect(sessions).To(BeZero())
		Expect(retained).To(BeZero())
	})
})
