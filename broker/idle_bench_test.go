package broker_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// BenchmarkIdleConnections opens b.N connected, idle MQTT clients and reports the broker's memory
// per connection (heap in use plus goroutine stacks, after GC), client side excluded as far as
// possible (clients keep only their socket). Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench IdleConnections -benchtime 5000x ./broker/
//
// (each connection needs two file descriptors in this process, so at most maxIdleConns are
// opened whatever b.N is; the figures are per connection opened).
func BenchmarkIdleConnections(b *testing.B) {
	n := min(b.N, maxIdleConns)
	bk := brokertest.Start(b, brokertest.WithoutTrace())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	hdr := make([]byte, 4)
	for i := range n {
		nc, err := net.DialTimeout("tcp", bk.Addr(), 10*time.Second)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, nc)
		c := &packet.Connect{ClientID: fmt.Sprintf("idle-%06d", i), CleanStart: true, KeepAlive: 600}
		if _, err := nc.Write(packet.Build(c, packet.V311)); err != nil {
			b.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(nc).Read(hdr); err != nil {
			b.Fatalf("connection %d: no CONNACK: %v", i, err)
		}
	}
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	used := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
	b.ReportMetric(float64(used)/float64(n), "bytes/conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(n), "stack-bytes/conn")
}

// maxIdleConns keeps BenchmarkIdleConnections within the usual limit of open files.
const maxIdleConns = 5000
