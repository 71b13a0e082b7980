package broker_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// BenchmarkReconnect is a device that keeps losing its connection: each iteration connects with
// the same client id and a will (3.1.1, clean session), reads CONNACK and drops the socket without
// DISCONNECT, so that every connection but the first follows the wind-up of the one before it
// (will published, session ended).
func BenchmarkReconnect(b *testing.B) {
	br := brokertest.Start(b, brokertest.WithoutTrace())
	connect := packet.Build(&packet.Connect{ClientID: "gate-01", CleanStart: true, KeepAlive: 60,
		Will: &packet.Will{Topic: "acs/s1/gate/gate-01/status", Payload: []byte(`{"online":false}`), QoS: 1, Retain: true}}, packet.V311)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		nc, err := net.DialTimeout("tcp", br.Addr(), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(connect); err != nil {
			b.Fatal(err)
		}
		r := packet.NewReader(bufio.NewReader(nc), 0)
		r.SetVersion(packet.V311)
		if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeConnack {
			b.Fatalf("CONNACK: %v", err)
		}
		_ = nc.Close()
	}
	b.StopTimer()
	if w := br.Stats().WillsPublished.Load(); w < uint64(b.N-1) {
		// Each dropped connection left a will; all but the last are out by the next CONNACK.
		b.Fatalf("%d wills published for %d dropped connections", w, b.N)
	}
}
