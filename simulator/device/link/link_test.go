package link_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/simulator/device/link"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// netConn is the network below a link in these tests: it records what is written, with the time
// of each write, and delivers what the test feeds it.
type netConn struct {
	mu     sync.Mutex // protects out, times and closed
	out    []byte
	times  []time.Time // when each write happened
	in     chan []byte
	closed bool
	done   chan struct{}
}

func newNetConn() *netConn { return &netConn{in: make(chan []byte, 16), done: make(chan struct{})} }

func (c *netConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.out = append(c.out, p...)
	c.times = append(c.times, time.Now())
	return len(p), nil
}

func (c *netConn) Read(p []byte) (int, error) {
	select {
	case b := <-c.in:
		return copy(p, b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *netConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	return nil
}

// written returns the bytes written so far and forgets them.
func (c *netConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.out
	c.out = nil
	return b
}

func (c *netConn) writeTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.times...)
}

func (c *netConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *netConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *netConn) SetDeadline(time.Time) error      { return nil }
func (c *netConn) SetReadDeadline(time.Time) error  { return nil }
func (c *netConn) SetWriteDeadline(time.Time) error { return nil }

func encode(t *testing.T, v packet.Version, ps ...packet.Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.AppendTo(b, v); err != nil {
			t.Fatalf("encode %T: %v", p, err)
		}
	}
	return b
}

// decodeAll decodes every packet of b.
func decodeAll(t *testing.T, b []byte, v packet.Version) []packet.Packet {
	t.Helper()
	var out []packet.Packet
	for len(b) > 0 {
		p, n, err := packet.Decode(b, v, 0)
		if err != nil {
			t.Fatalf("decode % x: %v", b, err)
		}
		out = append(out, p)
		b = b[n:]
	}
	return out
}

// A keepalive long enough that no PINGREQ comes in the middle of the rewriting tests.
var quiet = link.Config{Keepalive: time.Hour}

func TestConnectAnnouncesTheConfiguredKeepalive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		version   packet.Version
		keepalive time.Duration
		want      uint16
		bytewise  bool
	}{
		{"3.1.1", packet.V311, 2 * time.Second, 2, false},
		{"3.1 (MQIsdp)", packet.V31, 30 * time.Second, 30, false},
		{"5.0", packet.V5, 45 * time.Second, 45, false},
		{"3.1.1 written a byte at a time", packet.V311, 7 * time.Second, 7, true},
		{"rounded down to whole seconds", packet.V311, 2500 * time.Millisecond, 2, false},
		{"at least one second", packet.V311, 300 * time.Millisecond, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := newNetConn()
			c := link.New(link.Config{Keepalive: tc.keepalive, Idle: time.Hour}).Wrap(nc)
			defer c.Close()
			in := encode(t, tc.version, &packet.Connect{ClientID: "gate-01", KeepAlive: 0, Will: &packet.Will{
				Topic: "acs/site-1/gate/gate-01/status", Payload: []byte(`{"online":false}`), QoS: 1, Retain: true}})
			writes := [][]byte{in}
			if tc.bytewise {
				writes = nil
				for i := range in {
					writes = append(writes, in[i:i+1])
				}
			}
			for _, w := range writes {
				if n, err := c.Write(w); err != nil || n != len(w) {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
			ps := decodeAll(t, nc.written(), tc.version)
			if len(ps) != 1 {
				t.Fatalf("%d packets written, want the CONNECT", len(ps))
			}
			got := ps[0].(*packet.Connect)
			if got.KeepAlive != tc.want || got.ClientID != "gate-01" || got.Will == nil || got.Will.Topic != "acs/site-1/gate/gate-01/status" {
				t.Fatalf("CONNECT keepalive %d client %q will %+v, want keepalive %d and the rest unchanged", got.KeepAlive, got.ClientID, got.Will, tc.want)
			}
		})
	}
}

func pub(id uint16, qos packet.QoS, dup bool) *packet.Publish {
	return &packet.Publish{Topic: "acs/site-1/gate/gate-01/evt/charge", QoS: qos, Dup: dup, PacketID: id, Payload: []byte(`{"charge_id":"gate-01-1"}`)}
}

// step is one thing that happens on a connection: the client writes packets, the server answers
// with packets, or the connection is replaced by a new one of the same session.
type step struct {
	write  []packet.Packet
	answer []packet.Packet
	next   bool // a new connection
	reset  bool // a new session (power-on)
	want   []packet.Packet
}

func TestAReleasedQoS2MessageIsResentAsItsPubrel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a PUBLISH resent before PUBREC goes as it is", []step{
			{write: []packet.Packet{pub(7, 2, false)}, want: []packet.Packet{pub(7, 2, false)}},
			{next: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{pub(7, 2, true)}},
		}},
		{"a PUBLISH resent after its PUBREL goes as the PUBREL", []step{
			{write: []packet.Packet{pub(7, 2, false)}, want: []packet.Packet{pub(7, 2, false)}},
			{answer: []packet.Packet{&packet.Pubrec{PacketID: 7}}},
			{write: []packet.Packet{&packet.Pubrel{PacketID: 7}}, want: []packet.Packet{&packet.Pubrel{PacketID: 7}}},
			{next: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{&packet.Pubrel{PacketID: 7}}},
			{next: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{&packet.Pubrel{PacketID: 7}}},
		}},
		{"other packets of the same write go as they are", []step{
			{write: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}, want: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}},
			{next: true},
			{write: []packet.Packet{pub(3, 1, true), pub(7, 2, true), pub(8, 2, true), &packet.Pingreq{}},
				want: []packet.Packet{pub(3, 1, true), &packet.Pubrel{PacketID: 7}, pub(8, 2, true), &packet.Pingreq{}}},
		}},
		{"PUBCOMP ends the exchange", []step{
			{write: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}, want: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}},
			{answer: []packet.Packet{&packet.Pubcomp{PacketID: 7}}},
			{next: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{pub(7, 2, true)}},
		}},
		{"a new message under the identifier starts a new exchange", []step{
			{write: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}, want: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}},
			{write: []packet.Packet{pub(7, 2, false)}, want: []packet.Packet{pub(7, 2, false)}},
			{next: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{pub(7, 2, true)}},
		}},
		{"QoS 1 is not touched", []step{
			{write: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}, want: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}},
			{next: true},
			{write: []packet.Packet{pub(7, 1, true)}, want: []packet.Packet{pub(7, 1, true)}},
		}},
		{"a new session forgets", []step{
			{write: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}, want: []packet.Packet{pub(7, 2, false), &packet.Pubrel{PacketID: 7}}},
			{reset: true},
			{write: []packet.Packet{pub(7, 2, true)}, want: []packet.Packet{pub(7, 2, true)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := link.New(quiet)
			nc := newNetConn()
			c := l.Wrap(nc)
			defer func() { _ = c.Close() }()
			resent := uint64(0)
			for i, s := range tc.steps {
				switch {
				case s.next:
					_ = c.Close()
					nc = newNetConn()
					c = l.Wrap(nc)
				case s.reset:
					_ = c.Close()
					l.Reset()
					nc = newNetConn()
					c = l.Wrap(nc)
				case s.answer != nil:
					nc.in <- encode(t, packet.V311, s.answer...)
					buf := make([]byte, 64)
					if _, err := c.Read(buf); err != nil {
						t.Fatalf("step %d: read: %v", i, err)
					}
				default:
					if _, err := c.Write(encode(t, packet.V311, s.write...)); err != nil {
						t.Fatalf("step %d: write: %v", i, err)
					}
					got, want := nc.written(), encode(t, packet.V311, s.want...)
					if !bytes.Equal(got, want) {
						t.Fatalf("step %d: sent %v, want %v", i, decodeAll(t, got, packet.V311), s.want)
					}
					for j, p := range s.write {
						if _, ok := s.want[j].(*packet.Pubrel); ok && p.Type() == packet.TypePublish {
							resent++
						}
					}
				}
			}
			if st := l.Stats(); st.PubrelsResent != resent {
				t.Fatalf("%d PUBLISH packets counted as sent as their PUBREL, want %d", st.PubrelsResent, resent)
			}
		})
	}
}

func TestAPacketSplitOverWritesGoesWhenComplete(t *testing.T) {
	l := link.New(quiet)
	nc := newNetConn()
	c := l.Wrap(nc)
	defer c.Close()
	if _, err := c.Write(encode(t, packet.V311, pub(7, 2, false), &packet.Pubrel{PacketID: 7})); err != nil {
		t.Fatal(err)
	}
	nc.written()
	b := encode(t, packet.V311, pub(7, 2, true), pub(9, 2, false))
	cut := len(b) - 5
	if _, err := c.Write(b[:cut]); err != nil {
		t.Fatal(err)
	}
	if got, want := nc.written(), encode(t, packet.V311, &packet.Pubrel{PacketID: 7}); !bytes.Equal(got, want) {
		t.Fatalf("first write sent % x, want the PUBREL alone (% x): the incomplete PUBLISH waits", got, want)
	}
	if _, err := c.Write(b[cut:]); err != nil {
		t.Fatal(err)
	}
	if got, want := nc.written(), encode(t, packet.V311, pub(9, 2, false)); !bytes.Equal(got, want) {
		t.Fatalf("second write sent % x, want the completed PUBLISH % x", got, want)
	}
}

// pings returns how many PINGREQ packets b holds.
func pings(t *testing.T, b []byte) int {
	n := 0
	for _, p := range decodeAll(t, b, packet.V311) {
		if p.Type() == packet.TypePingreq {
			n++
		}
	}
	return n
}

// The keepalive in a bubble of fake time: exact instants, no waiting.
func TestKeepalivePingsBeforeTheKeepAliveRunsOut(t *testing.T) {
	for _, k := range []time.Duration{time.Second, 2 * time.Second, 30 * time.Second} {
		t.Run(k.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := link.New(link.Config{Keepalive: k})
				nc := newNetConn()
				start := time.Now()
				c := l.Wrap(nc)
				defer c.Close()
				if _, err := c.Write(encode(t, packet.V311, &packet.Connect{ClientID: "gate-01"})); err != nil {
					t.Fatal(err)
				}
				// The server answers every PINGREQ; the client writes a message now and then.
				go func() {
					buf := make([]byte, 16)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
				for i := range 12 {
					time.Sleep(k / 3)
					synctest.Wait()
					if n := pings(t, nc.written()); n > 0 {
						for range n {
							nc.in <- []byte{byte(packet.TypePingresp) << 4, 0}
						}
					}
					if i%5 == 4 {
						if _, err := c.Write(encode(t, packet.V311, pub(uint16(i), 1, false))); err != nil {
							t.Fatal(err)
						}
					}
				}
				times := append([]time.Time{start}, nc.writeTimes()...)
				longest := time.Duration(0)
				for i := 1; i < len(times); i++ {
					longest = max(longest, times[i].Sub(times[i-1]))
				}
				if longest > k {
					t.Fatalf("longest gap between packets %s, above the Keep Alive %s (MQTT-3.1.2-23)", longest, k)
				}
				if l.Stats().Pingreqs == 0 {
					t.Fatal("no PINGREQ in four Keep Alive periods")
				}
				if longest < l.Idle() {
					t.Fatalf("longest gap %s: a PINGREQ went before the %s of idleness", longest, l.Idle())
				}
			})
		})
	}
}

func TestAnUnansweredPingreqEndsTheConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := link.New(link.Config{Keepalive: 2 * time.Second})
		nc := newNetConn()
		c := l.Wrap(nc)
		defer c.Close()
		start := time.Now()
		_, err := c.Read(make([]byte, 16))
		if !errors.Is(err, link.ErrKeepalive) {
			t.Fatalf("read after an unanswered PINGREQ: %v, want ErrKeepalive", err)
		}
		// The PINGREQ went after 1.5 s of silence; its PINGRESP had 2 s.
		if d := time.Since(start); d != 3500*time.Millisecond {
			t.Fatalf("gave up after %s, want 3.5s", d)
		}
		if _, err := c.Write([]byte{0xC0, 0}); !errors.Is(err, link.ErrKeepalive) {
			t.Fatalf("write after giving up: %v", err)
		}
		// A second PINGREQ went at 3 s: the gap stays within the Keep Alive while the first waits.
		if st := l.Stats(); st.KeepaliveLosts != 1 || st.Pingreqs != 2 {
			t.Fatalf("stats %+v, want two PINGREQ and one connection given up", st)
		}
	})
}

func TestNoPingreqAfterDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := link.New(link.Config{Keepalive: time.Second})
		nc := newNetConn()
		c := l.Wrap(nc)
		defer c.Close()
		if _, err := c.Write(encode(t, packet.V311, &packet.Disconnect{})); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := pings(t, nc.written()); n != 0 {
			t.Fatalf("%d PINGREQ after DISCONNECT (MQTT-3.14.4-2)", n)
		}
	})
}

// discard is a network that takes every write.
type discard struct{ *netConn }

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkWritePublish is the cost the link adds to each outgoing packet: a QoS 1 event and a
// QoS 2 charge, each written whole as paho writes them.
func BenchmarkWritePublish(b *testing.B) {
	for _, qos := range []packet.QoS{1, 2} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			p := &packet.Publish{Topic: "acs/site-1/gate/gate-01/evt/passage", QoS: qos, PacketID: 7,
				Payload: bytes.Repeat([]byte("x"), 120)}
			frame, err := p.AppendTo(nil, packet.V311)
			if err != nil {
				b.Fatal(err)
			}
			c := link.New(quiet).Wrap(&discard{newNetConn()})
			defer c.Close()
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := c.Write(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
