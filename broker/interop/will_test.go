package interop_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

const (
	statusTopic = "acs/s1/gate/gate-01/status"
	offline     = `{"online":false}`
)

// watchers subscribes a paho.mqtt.golang (3.1.1) and a paho.golang (5.0) client to every gate's
// status.
func watchers(b *brokertest.Broker) (v3, v5 <-chan message) {
	GinkgoHelper()
	return pahoSubscriber(b, "ops-3", "acs/+/gate/+/status", 1), paho5Subscriber(b, "ops-5", "acs/+/gate/+/status", 1)
}

// expectWill checks that both watchers receive the will, once.
func expectWill(b *brokertest.Broker, v3, v5 <-chan message, qos byte) {
	GinkgoHelper()
	will := message{Topic: statusTopic, Payload: offline, QoS: qos}
	Expect(next(v3, "the will (3.1.1 watcher)")).To(Equal(will))
	Expect(next(v5, "the will (5.0 watcher)")).To(Equal(will))
	m := marker(b, statusTopic)
	Expect(next(v3, "the marker")).To(Equal(m))
	Expect(next(v5, "the marker")).To(Equal(m))
}

// expectNoWill waits until the broker has closed every socket but the watchers' (so that a will,
// had it been published, is already queued to them), then checks that the next message each
// watcher gets is a marker published afterwards.
func expectNoWill(b *brokertest.Broker, v3, v5 <-chan message) {
	GinkgoHelper()
	Eventually(b.Stats().Sockets.Load).WithTimeout(wait).Should(BeEquivalentTo(2), "only the watchers are connected")
	m := marker(b, statusTopic)
	Expect(next(v3, "the marker")).To(Equal(m), "no will before the marker")
	Expect(next(v5, "the marker")).To(Equal(m), "no will before the marker")
	Expect(b.Stats().WillsPublished.Load()).To(BeZero())
}

var _ = Describe("Wills", func() {
	for _, version := range []string{"mqttv311", "mqttv5"} {
		It("publishes the will of a mosquitto_sub process ("+version+") killed with SIGKILL to paho subscribers, and keeps it when it is retained",
			Label("MQTT-3.1.2-8", "MQTT-3.1.2-17"), func() {
				requireMosquitto()
				b := brokertest.Start(GinkgoT())
				v3, v5 := watchers(b)
				device := subscribeProc(b, b.Addr(), "gate-01", []string{"-V", version, "-t", "acs/s1/gate/gate-01/cmd/#", "-q", "1",
					"--will-topic", statusTopic, "--will-payload", offline, "--will-qos", "1", "--will-retain"})
				Expect(device.stop(syscall.SIGKILL)).To(MatchError(ContainSubstring("killed")))
				expectWill(b, v3, v5, 1)
				later := pahoSubscriber(b, "ops-later", "acs/+/gate/+/status", 1)
				Expect(next(later, "the retained will")).To(Equal(message{Topic: statusTopic, Payload: offline, QoS: 1, Retained: true}))
			})
	}

	It("publishes the will of a paho.mqtt.golang client whose socket closes without DISCONNECT", Label("MQTT-3.1.2-8"), func() {
		b := brokertest.Start(GinkgoT())
		v3, v5 := watchers(b)
		o, cut := droppable(pahoOptions(b.URL(), "gate-01").SetWill(statusTopic, offline, 1, false))
		pahoConnect(o)
		cut()
		expectWill(b, v3, v5, 1)
	})

	It("publishes the will of a paho.golang client whose socket closes without DISCONNECT", Label("MQTT-3.1.2-8"), func() {
		b := brokertest.Start(GinkgoT())
		v3, v5 := watchers(b)
		c := connect5(b.Addr(), &paho5.Connect{ClientID: "gate-01", CleanStart: true,
			WillMessage: &paho5.WillMessage{Topic: statusTopic, Payload: []byte(offline), QoS: 1}})
		c.TerminateConnectionForTest()
		expectWill(b, v3, v5, 1)
	})

	It("publishes the will of a 5.0 client that disconnects with 0x04 (disconnect with will message)", Label("MQTT-3.1.2-8"), func() {
		b := brokertest.Start(GinkgoT())
		v3, v5 := watchers(b)
		c := connect5(b.Addr(), &paho5.Connect{ClientID: "gate-01", CleanStart: true,
			WillMessage: &paho5.WillMessage{Topic: statusTopic, Payload: []byte(offline), QoS: 0}})
		Expect(c.Disconnect(&paho5.Disconnect{ReasonCode: 0x04})).To(Succeed())
		expectWill(b, v3, v5, 0)
	})

	Context("after a clean disconnect", func() {
		It("does not publish the will of a paho.mqtt.golang client", Label("MQTT-3.1.2-10", "MQTT-3.14.4-3"), func() {
			b := brokertest.Start(GinkgoT())
			v3, v5 := watchers(b)
			c := pahoConnect(pahoOptions(b.URL(), "gate-01").SetWill(statusTopic, offline, 1, false))
			c.Disconnect(250)
			expectNoWill(b, v3, v5)
		})

		It("does not publish the will of a paho.golang client (DISCONNECT 0x00)", Label("MQTT-3.1.2-10", "MQTT-3.14.4-3"), func() {
			b := brokertest.Start(GinkgoT())
			v3, v5 := watchers(b)
			c := connect5(b.Addr(), &paho5.Connect{ClientID: "gate-01", CleanStart: true,
				WillMessage: &paho5.WillMessage{Topic: statusTopic, Payload: []byte(offline), QoS: 1}})
			c.close()
			expectNoWill(b, v3, v5)
		})

		for _, version := range []string{"mqttv311", "mqttv5"} {
			It("does not publish the will of mosquitto_sub ("+version+") leaving after its last message", Label("MQTT-3.1.2-10", "MQTT-3.14.4-3"), func() {
				requireMosquitto()
				b := brokertest.Start(GinkgoT())
				v3, v5 := watchers(b)
				device := subscribeProc(b, b.Addr(), "gate-01", []string{"-V", version, "-t", "acs/s1/gate/gate-01/cmd/#", "-q", "1", "-C", "1",
					"--will-topic", statusTopic, "--will-payload", offline, "--will-qos", "1"})
				pahoPublisher(b, "ops", "acs/s1/gate/gate-01/cmd/open", 1, false, `{"corr":"c-1"}`)
				Expect(next(device.msgs, "the command")).To(Equal(message{Topic: "acs/s1/gate/gate-01/cmd/open", Payload: `{"corr":"c-1"}`, QoS: 1}))
				Expect(device.wait()).To(Succeed())
				expectNoWill(b, v3, v5)
			})
		}
	})
})

var _ = Describe("Keepalive", func() {
	It("closes a client silent for 1.5 × its keepalive and publishes its will, while paho clients that ping stay",
		Label("MQTT-3.1.2-24", "MQTT-3.1.2-22"), func() {
			b := brokertest.Start(GinkgoT())
			v3 := make(chan message, 16)
			pinger := pahoConnect(pahoOptions(b.URL(), "ops-3").SetKeepAlive(time.Second).SetPingTimeout(wait))
			Expect(pahoSubscribe(pinger, "acs/+/gate/+/status", 1, v3)).To(Equal(byte(1)))
			v5c := connect5(b.Addr(), &paho5.Connect{ClientID: "ops-5", CleanStart: true, KeepAlive: 1})
			Expect(v5c.subscribe("acs/+/gate/+/status", 1).Reasons).To(Equal([]byte{1}))

			// A raw client: CONNECT with keepalive 1 and a will, then nothing.
			nc, err := net.DialTimeout("tcp", b.Addr(), wait)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _ = nc.Close() })
			_, err = nc.Write(packet.Build(&packet.Connect{ClientID: "gate-01", CleanStart: true, KeepAlive: 1,
				Will: &packet.Will{Topic: statusTopic, Payload: []byte(offline), QoS: 1}}, packet.V311))
			Expect(err).NotTo(HaveOccurred())
			r := packet.NewReader(bufio.NewReader(nc), 0)
			r.SetVersion(packet.V311)
			Expect(nc.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
			ack, err := r.ReadPacket()
			Expect(err).NotTo(HaveOccurred())
			Expect(ack).To(BeAssignableToTypeOf(&packet.Connack{}))
			silent := time.Now()

			_, err = r.ReadPacket()
			closedAfter := time.Since(silent)
			Expect(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)).To(BeTrue(), "the broker closed the connection (got %v)", err)
			Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse())
			Expect(closedAfter).To(BeNumerically(">=", 1400*time.Millisecond), "not before 1.5 × keepalive")
			Expect(closedAfter).To(BeNumerically("<", 3*time.Second), "soon after 1.5 × keepalive")
			Expect(b.Stats().KeepaliveTimeouts.Load()).To(BeEquivalentTo(1), "only the silent client timed out")

			will := message{Topic: statusTopic, Payload: offline, QoS: 1}
			Expect(next(v3, "the will (3.1.1 watcher)")).To(Equal(will))
			Expect(next(v5c.msgs, "the will (5.0 watcher)")).To(Equal(will))
			Expect(pinger.IsConnectionOpen()).To(BeTrue())
		})
})
