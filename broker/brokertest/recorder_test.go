package brokertest_test

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestRecorderKeepsClientIDs keeps every event of many connections, each of which goes on
// sending after its CONNECT so that the broker reuses the buffer the CONNECT was read into.
// Every recorded CONNECT must still carry its own client id afterwards (under -race, any field
// of a TraceEvent that aliases a broker buffer is also reported as a data race).
func TestRecorderKeepsClientIDs(t *testing.T) {
	b := brokertest.Start(t)
	const clients = 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := connectAndPublish(b.Addr(), fmt.Sprintf("gate-%02d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := map[string]int{}
	for _, e := range b.Trace().Packets(brokertest.In(packet.TypeConnect)) {
		cp := e.Packet.(*packet.Connect)
		if e.ClientID != cp.ClientID {
			t.Errorf("CONNECT event #%d: ClientID %q, but the packet's client id is %q", e.Seq, e.ClientID, cp.ClientID)
		}
		seen[e.ClientID]++
	}
	for i := range clients {
		if id := fmt.Sprintf("gate-%02d", i); seen[id] != 1 {
			t.Errorf("client %s: %d CONNECT events, want 1 (recorded ids: %v)", id, seen[id], seen)
		}
	}
	// Every event after CONNECT is attributed to its connection's client too.
	for _, e := range b.Trace().Packets(brokertest.In(packet.TypePublish)) {
		p := e.Packet.(*packet.Publish)
		if want := "acs/s1/gate/" + e.ClientID + "/status"; p.Topic != want {
			t.Errorf("PUBLISH event #%d from %q has topic %q, want %q", e.Seq, e.ClientID, p.Topic, want)
		}
	}
}

// connectAndPublish connects as id (3.1.1), then sends several QoS 1 PUBLISH packets that
// overwrite the broker's read buffer, each acknowledged before the next.
func connectAndPublish(addr, id string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := packet.NewReader(bufio.NewReader(nc), 0)
	r.SetVersion(packet.V311)
	if _, err := nc.Write(packet.Build(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}, packet.V311)); err != nil {
		return fmt.Errorf("%s: write CONNECT: %w", id, err)
	}
	if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeConnack {
		return fmt.Errorf("%s: want CONNACK, got %v (%w)", id, p, err)
	}
	for n := uint16(1); n <= 5; n++ {
		pub := &packet.Publish{Topic: "acs/s1/gate/" + id + "/status", QoS: 1, PacketID: n, Payload: []byte(`{"online":true,"fw":"1.4.2"}`)}
		if _, err := nc.Write(packet.Build(pub, packet.V311)); err != nil {
			return fmt.Errorf("%s: write PUBLISH: %w", id, err)
		}
		if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypePuback {
			return fmt.Errorf("%s: want PUBACK, got %v (%w)", id, p, err)
		}
	}
	if _, err := nc.Write(packet.Build(&packet.Disconnect{}, packet.V311)); err != nil {
		return fmt.Errorf("%s: write DISCONNECT: %w", id, err)
	}
	return nil
}

var _ broker.Tracer = (*brokertest.Recorder)(nil)
