package interop_test

import (
	"context"
	"fmt"
	"net"

	paho5 "github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

const billingFilter = "acs/+/gate/+/evt/charge"

// publishWhileAway has every stack publish a QoS 1 and a QoS 2 charge event and returns the
// messages a subscriber of billingFilter must receive.
func publishWhileAway(b *brokertest.Broker) []message {
	GinkgoHelper()
	var want []message
	for i, s := range stacks {
		for qos := byte(1); qos <= 2; qos++ {
			topic := fmt.Sprintf("acs/s1/gate/gate-%02d/evt/charge", i+1)
			payload := fmt.Sprintf(`{"fee":"2.50","qos":%d,"from":%q}`, qos, s.name)
			s.publish(b, fmt.Sprintf("gate-%02d", i+1), topic, qos, false, payload)
			want = append(want, message{Topic: topic, Payload: payload, QoS: qos})
		}
	}
	Expect(b.Stats().Queued.Load()).To(BeEquivalentTo(len(want)), "queued in the offline session")
	return want
}

// receiveAll reads n messages from ch.
func receiveAll(ch <-chan message, n int) []message {
	GinkgoHelper()
	got := make([]message, 0, n)
	for i := range n {
		got = append(got, next(ch, fmt.Sprintf("queued message %d of %d", i+1, n)))
	}
	return got
}

var _ = Describe("Resuming a persistent session", func() {
	BeforeEach(requireMosquitto) // every stack publishes while the subscriber is away

	It("delivers to paho.mqtt.golang (CleanSession 0) the QoS 1/2 messages published while it was away",
		Label("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.2.2-2", "MQTT-4.4.0-1"), func() {
			b := brokertest.Start(GinkgoT())
			ch := make(chan message, 64)
			opts := func() *mqtt.ClientOptions {
				return pahoOptions(b.URL(), "billing").SetCleanSession(false).SetDefaultPublishHandler(collect(ch))
			}
			c := pahoConnect(opts())
			Expect(pahoSubscribe(c, billingFilter, 2, ch)).To(Equal(byte(2)))
			c.Disconnect(250)
			Eventually(b.Stats().ClientsConnected.Load).WithTimeout(wait).Should(BeZero())

			want := publishWhileAway(b)
			again := mqtt.NewClient(opts())
			tok := again.Connect()
			Expect(tok.WaitTimeout(wait)).To(BeTrue())
			Expect(tok.Error()).NotTo(HaveOccurred())
			DeferCleanup(func() { again.Disconnect(50) })
			Expect(tok.(*mqtt.ConnectToken).SessionPresent()).To(BeTrue())
			Expect(receiveAll(ch, len(want))).To(ConsistOf(want))
		})

	It("delivers to paho.golang (Session Expiry Interval 300) the QoS 1/2 messages published while it was away",
		Label("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.2.2-3", "MQTT-4.4.0-1"), func() {
			b := brokertest.Start(GinkgoT())
			expiry := uint32(300)
			cp := func() *paho5.Connect {
				return &paho5.Connect{ClientID: "billing", CleanStart: false, Properties: &paho5.ConnectProperties{SessionExpiryInterval: &expiry}}
			}
			c := connect5(b.Addr(), cp())
			Expect(c.subscribe(billingFilter, 2).Reasons).To(Equal([]byte{2}))
			c.close()
			Eventually(b.Stats().ClientsConnected.Load).WithTimeout(wait).Should(BeZero())

			want := publishWhileAway(b)
			again, ack, err := dial5(b.Addr(), cp())
			Expect(err).NotTo(HaveOccurred())
			Expect(ack.SessionPresent).To(BeTrue())
			Expect(receiveAll(again.msgs, len(want))).To(ConsistOf(want))
		})

	It("re-sends with DUP=1 to paho.mqtt.golang what was in flight when its connection dropped",
		Label("MQTT-4.4.0-1", "MQTT-3.3.1-1"), func() {
			b := brokertest.Start(GinkgoT())
			type delivery struct {
				payload string
				dup     bool
			}
			got := make(chan delivery, 16)
			handler := func(_ mqtt.Client, m mqtt.Message) { got <- delivery{string(m.Payload()), m.Duplicate()} }
			// The first connection never acknowledges (auto-ack off) and is cut without DISCONNECT.
			o, cut := droppable(pahoOptions(b.URL(), "billing").SetCleanSession(false).SetAutoAckDisabled(true).SetDefaultPublishHandler(handler))
			c := pahoConnect(o)
			tok := c.Subscribe(billingFilter, 1, handler)
			Expect(tok.WaitTimeout(wait)).To(BeTrue())
			pahoPublisher(b, "gate-01", "acs/s1/gate/gate-01/evt/charge", 1, false, "fee 2.50")
			Expect(within(got, "the first delivery")).To(Equal(delivery{"fee 2.50", false}))
			cut()
			Eventually(b.Stats().ClientsConnected.Load).WithTimeout(wait).Should(BeZero())

			pahoConnect(pahoOptions(b.URL(), "billing").SetCleanSession(false).SetDefaultPublishHandler(handler))
			Expect(within(got, "the re-sent message")).To(Equal(delivery{"fee 2.50", true}), "re-sent with DUP=1")
		})

	It("re-sends with DUP=1 to paho.golang what was in flight when its connection dropped",
		Label("MQTT-4.4.0-1", "MQTT-3.3.1-1"), func() {
			b := brokertest.Start(GinkgoT())
			expiry := uint32(300)
			cp := &paho5.Connect{ClientID: "billing", KeepAlive: 30, Properties: &paho5.ConnectProperties{SessionExpiryInterval: &expiry}}
			dups := make(chan bool, 16)
			nc, err := net.DialTimeout("tcp", b.Addr(), wait)
			Expect(err).NotTo(HaveOccurred())
			// The first connection acknowledges nothing (manual acknowledgement, never given) and
			// is terminated without DISCONNECT.
			first := paho5.NewClient(paho5.ClientConfig{Conn: nc, EnableManualAcknowledgment: true, OnClientError: func(error) {},
				OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
					dups <- pr.Packet.Duplicate()
					return true, nil
				}}})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, err = first.Connect(ctx, cp)
			Expect(err).NotTo(HaveOccurred())
			_, err = first.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: billingFilter, QoS: 1}}})
			Expect(err).NotTo(HaveOccurred())
			pahoPublisher(b, "gate-01", "acs/s1/gate/gate-01/evt/charge", 1, false, "fee 2.50")
			Expect(within(dups, "the first delivery")).To(BeFalse())
			first.TerminateConnectionForTest()
			Eventually(first.Done()).WithTimeout(wait).Should(BeClosed())
			Eventually(b.Stats().ClientsConnected.Load).WithTimeout(wait).Should(BeZero())

			again, ack, err := dial5(b.Addr(), cp)
			Expect(err).NotTo(HaveOccurred())
			Expect(ack.SessionPresent).To(BeTrue())
			Expect(next(again.msgs, "the re-sent message").Payload).To(Equal("fee 2.50"))
			Expect(again.dups()).To(Equal([]bool{true}), "re-sent with DUP=1")
		})

	for _, version := range []string{"mqttv311", "mqttv5"} {
		It("delivers to mosquitto_sub -c ("+version+") the QoS 1/2 messages published while it was away",
			Label("MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-4.4.0-1"), func() {
				b := brokertest.Start(GinkgoT())
				args := []string{"-V", version, "-c", "-q", "2", "-t", billingFilter}
				// The first run leaves with DISCONNECT after one message (-C 1).
				first := subscribeProc(b, b.Addr(), "billing", append(args, "-C", "1"))
				pahoPublisher(b, "gate-00", "acs/s1/gate/gate-00/evt/charge", 1, false, "before")
				Expect(next(first.msgs, "the first message").Payload).To(Equal("before"))
				Expect(first.wait()).To(Succeed())
				Eventually(b.Stats().ClientsConnected.Load).WithTimeout(wait).Should(BeZero())

				want := publishWhileAway(b)
				again := subscribeProc(b, b.Addr(), "billing", args)
				Expect(receiveAll(again.msgs, len(want))).To(ConsistOf(want))
			})
	}
})
