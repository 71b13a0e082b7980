package interop_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

// Each stack sets, replaces and deletes a device's retained status; each stack subscribes
// afterwards and gets exactly what is retained at that moment.
var _ = Describe("Retained messages between independent client stacks", func() {
	const topic = "acs/s1/gate/gate-01/status"
	for _, pub := range stacks {
		for _, sub := range stacks {
			It(fmt.Sprintf("set and replaced by %s, received on subscribe by %s", pub.name, sub.name),
				Label("MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"), func() {
					if pub.mosquitto || sub.mosquitto {
						requireMosquitto()
					}
					b := brokertest.Start(GinkgoT())
					pub.publish(b, "gate-01", topic, 1, true, `{"online":true,"fw":"1.4.1"}`)
					pub.publish(b, "gate-01", topic, 1, true, `{"online":true,"fw":"1.4.2"}`)
					got := sub.subscribe(b, "dashboard", "acs/s1/gate/+/status", 1)
					Expect(next(got, "the retained status")).To(Equal(message{Topic: topic, Payload: `{"online":true,"fw":"1.4.2"}`, QoS: 1, Retained: true}))
					m := marker(b, "acs/s1/gate/gate-01/status")
					Expect(next(got, "the marker")).To(Equal(m), "only the last retained message is kept")
				})

			It(fmt.Sprintf("deleted by %s with an empty payload, so that %s gets none on subscribe", pub.name, sub.name),
				Label("MQTT-3.3.1-10", "MQTT-3.3.1-11"), func() {
					if pub.mosquitto || sub.mosquitto {
						requireMosquitto()
					}
					b := brokertest.Start(GinkgoT())
					pub.publish(b, "gate-01", topic, 1, true, `{"online":true}`)
					pub.publish(b, "gate-01", topic, 1, true, "")
					got := sub.subscribe(b, "dashboard", "acs/s1/gate/+/status", 1)
					m := marker(b, "acs/s1/gate/gate-02/status")
					Expect(next(got, "the marker")).To(Equal(m), "no retained message before the marker")
					Expect(b.Stats().Retained.Load()).To(BeZero())
				})
		}
	}
})
