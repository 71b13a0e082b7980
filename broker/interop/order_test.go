package interop_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

const orderedCount = 10

// publishSequence has a stack publish orderedCount QoS 1 messages on one topic over one connection.
func publishSequence(s stack, b *brokertest.Broker, topic string) []string {
	GinkgoHelper()
	payloads := make([]string, orderedCount)
	for i := range payloads {
		payloads[i] = fmt.Sprintf(`{"id":"turnstile-04","seq":%d}`, i+1)
	}
	switch {
	case s.mosquitto:
		// -l: one message per line of standard input, all on one connection.
		version := "mqttv311"
		if strings.Contains(s.name, "5.0") {
			version = "mqttv5"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		cmd := exec.CommandContext(ctx, mosquittoPub, append(hostPort(b.Addr()), "-V", version, "-i", "turnstile-04", "-t", topic, "-q", "1", "-l")...)
		cmd.Stdin = strings.NewReader(strings.Join(payloads, "\n") + "\n")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "mosquitto_pub -l: %s", out)
	case strings.HasPrefix(s.name, "paho.golang"):
		c := connect5(b.Addr(), paho5Connect("turnstile-04"))
		for _, p := range payloads {
			_, err := c.publish(topic, 1, false, p)
			Expect(err).NotTo(HaveOccurred())
		}
	default:
		c := pahoConnect(pahoOptions(b.URL(), "turnstile-04"))
		for _, p := range payloads {
			pahoPublish(c, topic, 1, false, p)
		}
	}
	return payloads
}

// One client's messages on one topic reach each subscriber in the order they were sent.
var _ = Describe("Message order between independent client stacks", func() {
	for _, pub := range stacks {
		for _, sub := range stacks {
			It(fmt.Sprintf("keeps the order of %s's QoS 1 messages for %s", pub.name, sub.name), Label("MQTT-4.6.0-5", "MQTT-4.6.0-6"), func() {
				if pub.mosquitto || sub.mosquitto {
					requireMosquitto()
				}
				b := brokertest.Start(GinkgoT())
				got := sub.subscribe(b, "audit", "acs/+/turnstile/+/evt/#", 1)
				sent := publishSequence(pub, b, "acs/s1/turnstile/turnstile-04/evt/passage")
				var received []string
				for range sent {
					received = append(received, next(got, "the next passage event").Payload)
				}
				Expect(received).To(Equal(sent))
			})
		}
	}
})
