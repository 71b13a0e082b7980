package broker

import (
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A borrowed message aliases the read buffer; keep copies it once, and the copy survives the
// buffer being reused for the next packet.
func TestKeepCopiesABorrowedMessageOnce(t *testing.T) {
	buf := []byte("acs/s/gate/g1/evt/card" + `{"card":"42"}`)
	p := &packet.Publish{QoS: 1, Topic: string(buf[:22]), Payload: buf[22:],
		Props: packet.Properties{ContentType: "application/json", MessageExpiry: 60, Present: packet.PropSet(0)}}
	p.Props.Present.Add(packet.PropMessageExpiry)
	now := time.Now()
	m := borrowMessage(p.Topic, p, "gate-01", now)
	k := m.keep()
	if k == m || k.borrowed || m.keep() != k {
		t.Fatalf("keep = %p (borrowed %v), again %p; want one owned copy distinct from %p", k, k.borrowed, m.keep(), m)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	if k.topic != "acs/s/gate/g1/evt/card" || string(k.payload) != `{"card":"42"}` || k.props.ContentType != "application/json" {
		t.Fatalf("kept copy changed with the read buffer: topic %q payload %q", k.topic, k.payload)
	}
	if !k.expiry.Equal(now.Add(time.Minute)) || k.qos != 1 || k.from != "gate-01" {
		t.Fatalf("kept copy: expiry %v qos %d from %q", k.expiry, k.qos, k.from)
	}
	releaseMessage(m)
	owned := newMessage("a/b", []byte("x"), 0, false, nil, "", now)
	if owned.keep() != owned {
		t.Fatal("keep of an owned message must return it")
	}
}

// Borrowing and releasing a message for a QoS 0 PUBLISH allocates nothing.
func TestBorrowedMessageAllocatesNothing(t *testing.T) {
	p := &packet.Publish{Topic: "acs/s/gate/g1/telemetry", Payload: make([]byte, 64)}
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		releaseMessage(borrowMessage(p.Topic, p, "gate-01", now))
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per borrowed message, want 0", allocs)
	}
}

func BenchmarkMessageCopyVersusBorrow(b *testing.B) {
	p := &packet.Publish{Topic: "acs/s/gate/g1/telemetry", Payload: make([]byte, 64)}
	now := time.Now()
	b.Run("newMessage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = newMessage(p.Topic, p.Payload, p.QoS, p.Retain, &p.Props, "gate-01", now)
		}
	})
	b.Run("borrow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			releaseMessage(borrowMessage(p.Topic, p, "gate-01", now))
		}
	})
}
