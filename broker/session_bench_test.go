package broker

import (
	"net"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// BenchmarkSessionQueue measures the QoS 1 path through one session without the network: a
// message is queued, moved into flight (packet id, encoding into the connection's write buffer)
// and acknowledged. The connection's peer discards what the writer sends.
func BenchmarkSessionQueue(b *testing.B) {
	br, err := New(Config{MaxInflight: 100, MaxQueued: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	c := newConn(br, server, Listener{Name: "pipe"})
	c.sessVersion, c.version, c.connected = packet.V311, packet.V311, true
	s := newSession(br, "bench")
	s.version, s.window, s.conn = packet.V311, 100, c
	c.sess = s
	m := newMessage("acs/site/gate/g1/evt/card", make([]byte, 64), 1, false, nil, "pub", time.Now())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.deliver(m, 1, false, nil, nil)
		s.mu.Lock()
		d := s.inflight[len(s.inflight)-1]
		s.mu.Unlock()
		s.onPuback(&packet.Puback{PacketID: d.pid}, nil)
	}
	b.StopTimer()
	c.finish(nil)
	br.wg.Wait()
	_ = client.Close()
	<-done
}
