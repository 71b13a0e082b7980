package containertest_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/target"
)

// queued is what a broker owes an offline gate when it crashes: a persistent session with a
// subscription, QoS 1 commands published while the gate was away, and a retained status.
const (
	gateID      = "gate-01"
	cmdFilter   = "acs/site-1/gate/gate-01/cmd/#"
	cmdTopic    = "acs/site-1/gate/gate-01/cmd/open"
	statusTopic = "acs/site-1/gate/gate-01/state"
	queuedCount = 20
)

// crashWithQueue prepares the offline gate's session and its queue on the broker, kills the
// broker with SIGKILL and starts it again. It returns the gate reconnected with its persistent
// session and whether the broker said its session was present.
func crashWithQueue(c *target.Container) (*client, bool) {
	GinkgoHelper()
	gate, present := dial(clientOptions(c.Addr(), gateID, false))
	Expect(present).To(BeFalse(), "a fresh broker has no session for %s", gateID)
	gate.subscribe(cmdFilter)
	gate.c.Disconnect(100) // DISCONNECT: the session stays, the gate is offline

	platform, _ := dial(clientOptions(c.Addr(), "platform", true))
	for _, p := range payloads(queuedCount) {
		platform.publish(cmdTopic, p, false)
	}
	platform.publish(statusTopic, `{"position":"closed"}`, true)
	platform.c.Disconnect(100)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := c.Addr()
	Expect(c.Kill(ctx)).To(Succeed())
	Expect(c.Restart(ctx)).To(Succeed())
	Expect(c.Addr()).To(Equal(addr), "the broker must come back where the clients look for it")

	return dial(clientOptions(c.Addr(), gateID, false))
}

func crashSpecs() {
	Describe("the reference broker image killed with SIGKILL", func() {
		It("keeps sessions, subscriptions, queued QoS 1 messages and retained messages when its data directory is on a volume", func() {
			// The image's default command keeps its data in /data, a volume that outlives the
			// process: what a deployment of the broker does.
			c := startBroker(gatehouseImage, target.ContainerOptions{})
			gate, present := crashWithQueue(c)

			By("the session is resumed (MQTT-3.2.2-2: CONNACK Session Present 1)")
			Expect(present).To(BeTrue(), "the broker forgot %s's session across SIGKILL", gateID)

			By("every queued QoS 1 command is delivered, once and in order (MQTT-4.6.0-6)")
			Eventually(gate.messages).WithTimeout(10 * time.Second).Should(HaveLen(queuedCount))
			Expect(gate.live(cmdTopic)).To(Equal(payloads(queuedCount)))

			By("the retained status is still there for a new subscriber")
			watcher, _ := dial(clientOptions(c.Addr(), "watcher", true))
			watcher.subscribe(statusTopic)
			Eventually(watcher.messages).WithTimeout(5 * time.Second).Should(ContainElement(
				received{Topic: statusTopic, Payload: `{"position":"closed"}`, Retained: true}))
		})

		It("loses them without a data directory, and says so with Session Present 0", func() {
			// The same broker told to keep everything in memory: a crash loses what it owed. The
			// protocol's promise then is only that the loss is visible: MQTT-3.2.2-3 (no session,
			// Session Present 0), so that the gate knows to subscribe again.
			c := startBroker(gatehouseImage, target.ContainerOptions{
				Cmd: []string{"broker", "--listen", "0.0.0.0:1883", "--allow-anonymous"},
			})
			gate, present := crashWithQueue(c)
			Expect(present).To(BeFalse(), "a broker without a data directory cannot have kept the session")
			Consistently(gate.messages).WithTimeout(time.Second).Should(BeEmpty(),
				"nothing can be delivered: the queue was in memory")
			watcher, _ := dial(clientOptions(c.Addr(), "watcher", true))
			watcher.subscribe(statusTopic)
			Consistently(watcher.messages).WithTimeout(500*time.Millisecond).Should(BeEmpty(),
				"the retained status was in memory")
		})
	})
}
