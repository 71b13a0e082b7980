package broker_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A device that acknowledges a message and at once closes its socket (a PUBACK in the same TCP
// stream just before the FIN) has acknowledged it: the broker must read what arrived before the
// end of the stream, so the resumed session owes nothing. Each round is its own race between the
// PUBACK and the close, hence the rounds.
var _ = Describe("an acknowledgement just before the client closes its socket", func() {
	const rounds = 200
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("counts: the resumed session does not send the message again, MQTT "+v.String(), Label("MQTT-4.3.2-2", "MQTT-4.4.0-1"), func() {
			b := start()
			id := "acker-" + v.String()
			persistent := func(c *packet.Connect) {
				c.CleanStart = false
				if v == packet.V5 {
					c.Props.SessionExpiry = 3600
				}
			}
			sub := connectWire(b, v, id, persistent)
			sub.subscribe(1, "ack/close", 1)
			pub := connectWire(b, v, "pub-"+v.String())
			for i := range rounds {
				pub.publish("ack/close", 1, false, fmt.Sprintf("m%d", i), uint16(i%1000+1))
				p := expectPacket[*packet.Publish](sub)
				Expect(string(p.Payload)).To(Equal(fmt.Sprintf("m%d", i)), "round %d", i)
				sub.send(&packet.Puback{PacketID: p.PacketID})
				sub.close()
				// The session comes back; a marker published after the reconnection must be the
				// first thing it receives: a message sent again would come before it.
				sub = dialWire(b, v)
				Expect(sub.connect(id, persistent).SessionPresent).To(BeTrue(), "round %d", i)
				pub.publish("ack/close", 1, false, fmt.Sprintf("marker%d", i), uint16(i%1000+1001))
				q := expectPacket[*packet.Publish](sub)
				Expect(string(q.Payload)).To(Equal(fmt.Sprintf("marker%d", i)), "round %d: the acknowledged m%d came again (DUP %v)", i, i, q.Dup)
				sub.send(&packet.Puback{PacketID: q.PacketID})
				sub.ping()
			}
		})
	}
})
