package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// The copy keep makes of a borrowed message goes back to the pool only when its last holder —
// the routing goroutine and every delivery — has released it; until then it stays intact.
func TestKeptCopyOutlivesAllButItsLastHolder(t *testing.T) {
	p := &packet.Publish{QoS: 1, Topic: "acs/s/gate/g1/evt/card", Payload: []byte(`{"card":"42"}`)}
	m := borrowMessage(p.Topic, p, "gate-01", time.Now())
	k1 := m.keep() // a first delivery
	k2 := m.keep() // a second one
	if k1 != k2 || !k1.pooled {
		t.Fatalf("keep returned %p and %p (pooled %v), want one pooled copy", k1, k2, k1.pooled)
	}
	releaseMessage(m) // routing is over
	k1.release()      // the first delivery is acknowledged
	if k2.topic != p.Topic || string(k2.payload) != string(p.Payload) {
		t.Fatalf("copy recycled while a delivery holds it: topic %q payload %q", k2.topic, k2.payload)
	}
	k2.release() // the last one
	if k2.topic != "" || k2.refs != 0 {
		t.Fatalf("copy not recycled after its last release: topic %q refs %d", k2.topic, k2.refs)
	}
}

// A message released more often than it was kept is a broker bug that would hand live memory to
// the next message; it panics instead.
func TestReleasingMoreThanKeptPanics(t *testing.T) {
	p := &packet.Publish{QoS: 1, Topic: "a/b", Payload: []byte("x")}
	m := borrowMessage(p.Topic, p, "c", time.Now())
	k := m.keep()
	releaseMessage(m)
	k.release()
	defer func() {
		if recover() == nil {
			t.Fatal("a second release of the last reference did not panic")
		}
	}()
	k.release()
}

// A QoS 1 message routed to a session, sent and acknowledged allocates nothing once the pools
// are warm: the copy of the message and the delivery record come from pools and go back on
// PUBACK.
func TestQoS1DeliveryAllocatesNothing(t *testing.T) {
	skipUnderRace(t)
	s, c, done := sessionForBench(t)
	defer done()
	p := &packet.Publish{QoS: 1, Topic: "acs/site/gate/g1/evt/card", Payload: make([]byte, 64)}
	now := time.Now()
	deliverAndAck := func() {
		m := borrowMessage(p.Topic, p, "pub", now)
		s.deliver(m, 1, false, nil, nil)
		releaseMessage(m)
		s.mu.Lock()
		pid := s.inflight[len(s.inflight)-1].pid
		s.mu.Unlock()
		s.onPuback(&packet.Puback{PacketID: pid}, nil)
		c.outMu.Lock()
		c.out, c.q0 = c.out[:0], 0 // what the writer would have taken
		c.outMu.Unlock()
	}
	if allocs := testing.AllocsPerRun(1000, deliverAndAck); allocs != 0 {
		t.Fatalf("%.2f allocations per QoS 1 message, want 0", allocs)
	}
}

// sessionForBench returns a connected QoS 1 session whose connection writes nothing: its writer
// counts as running, so packets stay in its buffer.
func sessionForBench(tb testing.TB) (*session, *conn, func()) {
	br, err := New(Config{MaxInflight: 100, MaxQueued: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	server, client := net.Pipe()
	c := newConn(br, server, Listener{Name: "pipe"})
	c.sessVersion, c.version, c.connected = packet.V311, packet.V311, true
	c.writing = true
	s := newSession(br, "bench")
	s.version, s.window, s.conn = packet.V311, 100, c
	c.sess = s
	return s, c, func() { _ = server.Close(); _ = client.Close() }
}

func BenchmarkQoS1Delivery(b *testing.B) {
	s, c, done := sessionForBench(b)
	defer done()
	p := &packet.Publish{QoS: 1, Topic: "acs/site/gate/g1/evt/card", Payload: make([]byte, 64)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m := borrowMessage(p.Topic, p, "pub", now)
		s.deliver(m, 1, false, nil, nil)
		releaseMessage(m)
		s.mu.Lock()
		pid := s.inflight[len(s.inflight)-1].pid
		s.mu.Unlock()
		s.onPuback(&packet.Puback{PacketID: pid}, nil)
		c.outMu.Lock()
		c.out, c.q0 = c.out[:0], 0
		c.outMu.Unlock()
	}
}

// poolClient is a raw MQTT 3.1.1 client for the pool tests.
type poolClient struct {
	nc net.Conn
	r  *packet.Reader
}

func dialPool(t *testing.T, addr, id string) *poolClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &poolClient{nc: nc, r: packet.NewReader(bufio.NewReader(nc), 0)}
	c.r.SetVersion(packet.V311)
	c.send(t, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
	c.expect(t, packet.TypeConnack)
	return c
}

func (c *poolClient) send(t *testing.T, p packet.Packet) {
	t.Helper()
	b, err := packet.Encode(p, packet.V311)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (c *poolClient) expect(t *testing.T, typ packet.Type) packet.Packet {
	t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := c.r.ReadPacket()
	if err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	if p.Type() != typ {
		t.Fatalf("got %s, want %s", p.Type(), typ)
	}
	return p
}

// subscribe subscribes c to filter at qos.
func (c *poolClient) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	c.send(t, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: packet.QoS(qos)}}})
	c.expect(t, packet.TypeSuback)
}

// receive reads one message at qos, completes its flow and returns its payload.
func (c *poolClient) receive(t *testing.T, qos byte) string {
	t.Helper()
	p := c.expect(t, packet.TypePublish).(*packet.Publish)
	switch qos {
	case 1:
		c.send(t, &packet.Puback{PacketID: p.PacketID})
	case 2:
		c.send(t, &packet.Pubrec{PacketID: p.PacketID})
		c.expect(t, packet.TypePubrel)
		c.send(t, &packet.Pubcomp{PacketID: p.PacketID})
	}
	return string(p.Payload)
}

// A subscriber that lets its messages wait — one in flight, the rest queued in its session —
// gets every one of them intact, although a fast subscriber acknowledged the same messages long
// before and the publisher's later messages were copied through the same pool meanwhile: no
// pooled message is reused while a delivery still points at it.
func TestQueuedMessagesSurviveTheirCopiesBeingRecycledElsewhere(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			b, err := New(Config{
				Listeners:      []Listener{{Kind: TCP, Addr: "127.0.0.1:0"}},
				AllowAnonymous: true,
				MaxInflight:    1, // the slow subscriber's messages wait in its session's queue
				Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := b.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			addr := b.Addr("").String()
			slow, fast := dialPool(t, addr, "slow"), dialPool(t, addr, "fast")
			slow.subscribe(t, "acs/+/gate/+/evt/#", qos)
			fast.subscribe(t, "acs/+/gate/+/evt/#", qos)
			pub := dialPool(t, addr, "gate-01")
			const n = 300
			payload := func(i int) string { return fmt.Sprintf(`{"seq":%d,"card":"%08d"}`, i, i*7919) }
			for i := range n {
				pid := uint16(i + 1)
				pub.send(t, &packet.Publish{QoS: packet.QoS(qos), PacketID: pid, Topic: "acs/s1/gate/g1/evt/card", Payload: []byte(payload(i))})
				if qos == 1 {
					pub.expect(t, packet.TypePuback)
				} else {
					pub.expect(t, packet.TypePubrec)
					pub.send(t, &packet.Pubrel{PacketID: pid})
					pub.expect(t, packet.TypePubcomp)
				}
				if got := fast.receive(t, qos); got != payload(i) {
					t.Fatalf("fast subscriber, message %d: %q, want %q", i, got, payload(i))
				}
			}
			for i := range n {
				if got := slow.receive(t, qos); got != payload(i) {
					t.Fatalf("slow subscriber, message %d: %q, want %q", i, got, payload(i))
				}
			}
		})
	}
}

// Taking a pooled read or write buffer and giving it back allocates nothing: every write of a
// connection's buffer returns it to the pool.
func TestPooledBufferRoundTripAllocatesNothing(t *testing.T) {
	skipUnderRace(t)
	putBuf(getBuf(0))
	if allocs := testing.AllocsPerRun(1000, func() { putBuf(getBuf(0)) }); allocs != 0 {
		t.Fatalf("%.2f allocations per buffer taken and returned, want 0", allocs)
	}
}

// skipUnderRace skips a test that counts allocations of pooled objects under the race detector,
// which makes sync.Pool drop some of what it is given; make test runs these tests again without
// it (make test-alloc).
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("counts pooled allocations, which the race detector perturbs: run without -race (make test-alloc)")
	}
}
