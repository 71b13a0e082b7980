package broker_test

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// benchClient is a raw client for benchmarks: a reader goroutine completes every acknowledgement
// flow and counts PUBLISH packets; writes are batched.
type benchClient struct {
	window   chan struct{} // one token per publish in flight (QoS 1/2)
	nc       net.Conn
	mu       sync.Mutex // protects bw
	bw       *bufio.Writer
	received atomic.Int64
	done     chan struct{}
}

func dialBench(tb testing.TB, addr, id string, v packet.Version, filter string, qos packet.QoS) *benchClient {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	c := &benchClient{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), done: make(chan struct{}), window: make(chan struct{}, 1000)}
	br := bufio.NewReaderSize(nc, 64<<10)
	r := packet.NewReader(br, 0)
	r.SetVersion(v)
	c.send(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 0, Props: packet.Properties{ReceiveMaximum: 65535}}, v, true)
	if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeConnack {
		tb.Fatalf("%s: CONNACK: %v", id, err)
	}
	if filter != "" {
		c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}, v, true)
		if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeSuback {
			tb.Fatalf("%s: SUBACK: %v", id, err)
		}
	}
	go func() {
		defer close(c.done)
		for {
			p, err := r.ReadPacket()
			if err != nil {
				return
			}
			var reply packet.Packet
			switch p := p.(type) {
			case *packet.Publish:
				c.received.Add(1)
				switch p.QoS {
				case 1:
					reply = &packet.Puback{PacketID: p.PacketID}
				case 2:
					reply = &packet.Pubrec{PacketID: p.PacketID}
				}
			case *packet.Pubrec:
				reply = &packet.Pubrel{PacketID: p.PacketID}
			case *packet.Pubrel:
				reply = &packet.Pubcomp{PacketID: p.PacketID}
			case *packet.Puback, *packet.Pubcomp:
				<-c.window
			}
			if reply != nil {
				c.send(reply, v, br.Buffered() == 0)
			} else if br.Buffered() == 0 {
				c.flush()
			}
		}
	}()
	return c
}

func (c *benchClient) send(p packet.Packet, v packet.Version, flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := p.AppendTo(c.bw.AvailableBuffer(), v)
	_, _ = c.bw.Write(b)
	if flush {
		_ = c.bw.Flush()
	}
}

func (c *benchClient) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.bw.Flush()
}

func (c *benchClient) close() {
	_ = c.nc.Close()
	<-c.done
}

// publishN sends n PUBLISH packets of payload size sz. QoS 1/2 packet ids cycle through a window
// of 1000: an id is reused only after its flow completed.
func (c *benchClient) publishN(n int, topic string, qos packet.QoS, sz int, v packet.Version) {
	pub := packet.Publish{Topic: topic, QoS: qos, Payload: make([]byte, sz)}
	for i := range n {
		if qos > 0 {
			select {
			case c.window <- struct{}{}:
			default:
				c.flush()
				c.window <- struct{}{}
			}
			pub.PacketID = uint16(i%1000 + 1)
		}
		c.send(&pub, v, false)
	}
	c.flush()
}

func waitCount(tb testing.TB, want int64, count func() int64) {
	tb.Helper()
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for count() < want {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("only %d of %d messages arrived", count(), want)
		}
	}
}

// BenchmarkPublishFanIn: 8 publishers send to one subscriber (64-byte payloads); ns/op is per message.
func BenchmarkPublishFanIn(b *testing.B) {
	for _, qos := range []packet.QoS{0, 1, 2} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			bk := brokertest.Start(b, brokertest.WithoutTrace(), brokertest.WithConfig(func(c *broker.Config) {
				c.MaxQueued = 1 << 30
				c.MaxInflight = 1000
			}))
			const pubs = 8
			sub := dialBench(b, bk.Addr(), "sub", packet.V311, "bench/#", qos)
			defer sub.close()
			ps := make([]*benchClient, pubs)
			for i := range ps {
				ps[i] = dialBench(b, bk.Addr(), fmt.Sprintf("pub%d", i), packet.V311, "", 0)
				defer ps[i].close()
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, p := range ps {
				n := b.N / pubs
				if i == 0 {
					n += b.N % pubs
				}
				wg.Go(func() { p.publishN(n, fmt.Sprintf("bench/%d", i), qos, 64, packet.V311) })
			}
			wg.Wait()
			waitCount(b, int64(b.N), func() int64 { return sub.received.Load() + int64(bk.Stats().DroppedQueueFull.Load()) })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			b.ReportMetric(float64(bk.Stats().DroppedQueueFull.Load()), "dropped")
		})
	}
}

// BenchmarkFanOut: one publisher, 100 subscribers on the same topic; ns/op is per delivered message.
func BenchmarkFanOut(b *testing.B) {
	for _, qos := range []packet.QoS{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			bk := brokertest.Start(b, brokertest.WithoutTrace(), brokertest.WithConfig(func(c *broker.Config) {
				c.MaxQueued = 1 << 30
				c.MaxInflight = 1000
			}))
			const subs = 100
			ss := make([]*benchClient, subs)
			for i := range ss {
				ss[i] = dialBench(b, bk.Addr(), fmt.Sprintf("sub%d", i), packet.V311, "fan/out", qos)
				defer ss[i].close()
			}
			p := dialBench(b, bk.Addr(), "pub", packet.V311, "", 0)
			defer p.close()
			msgs := max(b.N/subs, 1)
			b.ResetTimer()
			p.publishN(msgs, "fan/out", qos, 64, packet.V311)
			total := func() int64 {
				var n int64
				for _, s := range ss {
					n += s.received.Load()
				}
				return n + int64(bk.Stats().DroppedQueueFull.Load())
			}
			waitCount(b, int64(msgs*subs), total)
			b.StopTimer()
			b.ReportMetric(float64(msgs*subs)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
