package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A parked subscriber (idle, its socket in the broker's epoll set) that acknowledges a message
// and at once closes its socket has acknowledged it: the PUBACK before the FIN must be read, so
// the resumed session owes nothing. Each round is its own race between the PUBACK and the FIN.
func TestParkedAckBeforeCloseCounts(t *testing.T) {
	b := startParkBroker(t)
	addr := b.Addr("").String()
	persistent := func(id string) *parkClient {
		c := dialParkWith(t, addr, &packet.Connect{ClientID: id, KeepAlive: 60})
		return c
	}
	pub := dialPark(t, addr, "pub", 60)
	sub := persistent("acker")
	sub.send(t, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "ack/close", QoS: 1}}})
	sub.expect(t, packet.TypeSuback)
	const rounds = 40
	for i := range rounds {
		waitFor(t, 5*time.Second, "subscriber not parked", func() bool { return parkedCount(b) == 2 })
		pub.send(t, &packet.Publish{QoS: 1, PacketID: uint16(2*i + 1), Topic: "ack/close", Payload: fmt.Appendf(nil, "m%d", i)})
		pub.expect(t, packet.TypePuback)
		got := sub.expect(t, packet.TypePublish).(*packet.Publish)
		sub.send(t, &packet.Puback{PacketID: got.PacketID})
		_ = sub.nc.Close()

		sub = persistent("acker")
		pub.send(t, &packet.Publish{QoS: 1, PacketID: uint16(2*i + 2), Topic: "ack/close", Payload: fmt.Appendf(nil, "marker%d", i)})
		pub.expect(t, packet.TypePuback)
		q := sub.expect(t, packet.TypePublish).(*packet.Publish)
		if string(q.Payload) != fmt.Sprintf("marker%d", i) {
			t.Fatalf("round %d: the resumed session sent %q (DUP %v) before the marker: the PUBACK sent before the close was lost", i, q.Payload, q.Dup)
		}
		sub.send(t, &packet.Puback{PacketID: q.PacketID})
	}
}
