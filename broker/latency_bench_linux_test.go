package broker_test

import (
	"bufio"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// BenchmarkQoS1OneAtATime is the latency workload in miniature: one QoS 1 message at a time from
// a publisher to a subscriber, the next one only after the subscriber got the previous one and
// the publisher its PUBACK, so that every message finds the broker idle — as at 5,000 msg/s from
// ten devices, where each message comes alone. ns/op is the round trip; cpu-µs/msg is the
// process's CPU time (broker and both clients) per message, which counts the wake-ups, hand-offs
// and system calls one message costs.
func BenchmarkQoS1OneAtATime(b *testing.B) {
	bk := brokertest.Start(b, brokertest.WithoutTrace())
	dial := func(id string) (net.Conn, *packet.Reader) {
		nc, err := net.DialTimeout("tcp", bk.Addr(), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		r := packet.NewReader(bufio.NewReader(nc), 0)
		r.SetVersion(packet.V311)
		writePacket(b, nc, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60})
		if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeConnack {
			b.Fatalf("%s: CONNACK: %v", id, err)
		}
		return nc, r
	}
	sub, subR := dial("sub")
	defer sub.Close()
	writePacket(b, sub, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "acs/+/gate/+/evt/#", QoS: 1}}})
	if p, err := subR.ReadPacket(); err != nil || p.Type() != packet.TypeSuback {
		b.Fatalf("SUBACK: %v", err)
	}
	pub, pubR := dial("gate-01")
	defer pub.Close()

	got := make(chan error, 1)
	go func() {
		for {
			p, err := subR.ReadPacket()
			if err != nil {
				got <- err
				return
			}
			if m, ok := p.(*packet.Publish); ok {
				if _, err := sub.Write(packet.Build(&packet.Puback{PacketID: m.PacketID}, packet.V311)); err != nil {
					got <- err
					return
				}
				got <- nil
			}
		}
	}()
	msg := &packet.Publish{QoS: 1, Topic: "acs/s1/gate/g1/evt/card", Payload: make([]byte, 64)}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for i := range b.N {
		msg.PacketID = uint16(i%65535 + 1)
		writePacket(b, pub, msg)
		if p, err := pubR.ReadPacket(); err != nil || p.Type() != packet.TypePuback {
			b.Fatalf("PUBACK: %v", err)
		}
		select {
		case err := <-got:
			if err != nil {
				b.Fatalf("subscriber: %v", err)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("the subscriber got nothing for 10 s")
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

func writePacket(tb testing.TB, nc net.Conn, p packet.Packet) {
	tb.Helper()
	if _, err := nc.Write(packet.Build(p, packet.V311)); err != nil {
		tb.Fatal(err)
	}
}
