package boltstore_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/broker/session/boltstore"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// benchConn is a raw MQTT 3.1.1 connection for benchmarks (no Gomega: failures are b.Fatal).
type benchConn struct {
	nc net.Conn
	r  *packet.Reader
}

func benchDial(b testing.TB, addr, id string, clean bool) *benchConn {
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		b.Fatal(err)
	}
	c := &benchConn{nc: nc, r: packet.NewReader(bufio.NewReader(nc), 0)}
	c.r.SetVersion(packet.V311)
	c.send(b, &packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 60})
	if ack, ok := c.read(b).(*packet.Connack); !ok || ack.Code != packet.Success {
		b.Fatalf("CONNACK of %s: %+v", id, ack)
	}
	return c
}

func (c *benchConn) send(b testing.TB, p packet.Packet) {
	if _, err := c.nc.Write(packet.Build(p, packet.V311)); err != nil {
		b.Fatal(err)
	}
}

func (c *benchConn) read(b testing.TB) packet.Packet {
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	p, err := c.r.ReadPacket()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// subscribe makes id a persistent session subscribed to bench/# at QoS 1.
func (c *benchConn) subscribe(b testing.TB) {
	c.send(b, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "bench/#", QoS: 1}}})
	if _, ok := c.read(b).(*packet.Suback); !ok {
		b.Fatal("no SUBACK")
	}
}

// publishQoS1 publishes and waits for the PUBACK: the latency a device sees for an unlock event.
func (c *benchConn) publishQoS1(b testing.TB, pid uint16, payload []byte) {
	c.send(b, &packet.Publish{QoS: 1, PacketID: pid, Topic: "bench/gate/evt/card", Payload: payload})
	if ack, ok := c.read(b).(*packet.Puback); !ok || ack.PacketID != pid {
		b.Fatalf("want PUBACK %d, got %+v", pid, ack)
	}
}

type storeKind struct {
	name string
	open func(b *testing.B) session.Store
}

var benchStores = []storeKind{
	{"none", func(*testing.B) session.Store { return nil }},
	{"memory", func(*testing.B) session.Store { return session.NewMemory() }},
	{"bolt", func(b *testing.B) session.Store {
		s, err := boltstore.OpenDir(b.TempDir(), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// benchBroker starts a broker without a tracer, so that only the broker and its store are measured.
func benchBroker(b *testing.B, store session.Store) *broker.Broker {
	cfg := broker.Config{
		AllowAnonymous: true,
		Listeners:      []broker.Listener{{Kind: broker.TCP, Addr: "127.0.0.1:0"}},
		MaxInflight:    1000,
	}
	if store != nil {
		cfg.Store = store
	}
	br, err := broker.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := br.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	})
	return br
}

// BenchmarkQoS1ToPersistentSession measures a QoS 1 PUBLISH → PUBACK round trip, one publisher,
// when the message goes to a persistent session: offline (the message is queued: one durable
// write before the PUBACK) or online and acknowledging (queued, in flight, deleted: three writes,
// one of them before the PUBACK).
func BenchmarkQoS1ToPersistentSession(b *testing.B) {
	payload := []byte(`{"id":"gate-01","seq":1,"card":"04A2B9C1"}`)
	for _, online := range []bool{false, true} {
		for _, sk := range benchStores {
			name := fmt.Sprintf("subscriber=offline/store=%s", sk.name)
			if online {
				name = fmt.Sprintf("subscriber=online/store=%s", sk.name)
			}
			b.Run(name, func(b *testing.B) {
				br := benchBroker(b, sk.open(b))
				sub := benchDial(b, br.Addr("").String(), "billing", false)
				sub.subscribe(b)
				var wg sync.WaitGroup
				if online {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							_ = sub.nc.SetReadDeadline(time.Now().Add(wait))
							p, err := sub.r.ReadPacket()
							if err != nil {
								return
							}
							if pub, ok := p.(*packet.Publish); ok {
								if _, err := sub.nc.Write(packet.Build(&packet.Puback{PacketID: pub.PacketID}, packet.V311)); err != nil {
									return
								}
							}
						}
					}()
				} else {
					sub.send(b, &packet.Disconnect{})
				}
				pub := benchDial(b, br.Addr("").String(), "gate-01", true)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					pub.publishQoS1(b, uint16(i%65535+1), payload)
				}
				b.StopTimer()
				_ = pub.nc.Close()
				_ = sub.nc.Close()
				wg.Wait()
			})
		}
	}
}

// BenchmarkQoS1ToPersistentSessionParallel is the offline case with 16 publishers at once, all
// to one subscriber's session or each to a session of its own. The broker writes a session's
// messages under that session's lock, so only writes for different sessions can meet in one
// bbolt commit.
func BenchmarkQoS1ToPersistentSessionParallel(b *testing.B) {
	payload := []byte(`{"id":"gate-01","seq":1,"card":"04A2B9C1"}`)
	for _, sessions := range []string{"one", "per-publisher"} {
		for _, sk := range benchStores {
			b.Run("sessions="+sessions+"/store="+sk.name, func(b *testing.B) {
				br := benchBroker(b, sk.open(b))
				addr := br.Addr("").String()
				subscriber := func(id, filter string) {
					sub := benchDial(b, addr, id, false)
					sub.send(b, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 1}}})
					if _, ok := sub.read(b).(*packet.Suback); !ok {
						b.Fatal("no SUBACK")
					}
					sub.send(b, &packet.Disconnect{})
					_ = sub.nc.Close()
				}
				const publishers = 16
				if sessions == "one" {
					subscriber("billing", "bench/#")
				} else {
					for i := range publishers {
						subscriber(fmt.Sprintf("billing-%d", i), fmt.Sprintf("bench/%d", i))
					}
				}
				var n atomic.Int64
				b.SetParallelism(publishers / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					me := n.Add(1) - 1
					pub := benchDial(b, addr, fmt.Sprintf("gate-%d", me), true)
					defer pub.nc.Close()
					topic := fmt.Sprintf("bench/%d", me)
					for i := 1; pb.Next(); i++ {
						pid := uint16(i%65535 + 1)
						pub.send(b, &packet.Publish{QoS: 1, PacketID: pid, Topic: topic, Payload: payload})
						if ack, ok := pub.read(b).(*packet.Puback); !ok || ack.PacketID != pid {
							b.Errorf("want PUBACK %d, got %+v", pid, ack)
							return
						}
					}
				})
			})
		}
	}
}
