package interop_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

// Every stack publishes to every stack at every QoS; the subscriber asks for QoS 2, so the message
// arrives at the QoS it was published with, once.
var _ = Describe("QoS 0, 1 and 2 between independent client stacks", func() {
	for _, pub := range stacks {
		for _, sub := range stacks {
			for qos := range byte(3) {
				It(fmt.Sprintf("QoS %d from %s to %s", qos, pub.name, sub.name),
					Label("MQTT-3.3.4-1", "MQTT-3.8.4-6", "MQTT-4.3.2-2", "MQTT-4.3.3-2"), func() {
						if pub.mosquitto || sub.mosquitto {
							requireMosquitto()
						}
						b := brokertest.Start(GinkgoT())
						got := sub.subscribe(b, "billing", "acs/+/gate/+/evt/#", 2)
						payload := fmt.Sprintf(`{"id":"gate-01","seq":%d,"card":"04A2B9C1"}`, qos)
						pub.publish(b, "gate-01", "acs/s1/gate/gate-01/evt/card", qos, false, payload)
						Expect(next(got, "the published message")).To(Equal(message{Topic: "acs/s1/gate/gate-01/evt/card", Payload: payload, QoS: qos}))
						m := marker(b, "acs/s1/gate/gate-01/evt/marker")
						Expect(next(got, "the marker")).To(Equal(m), "the message arrived once")
					})
			}
		}
	}
})
