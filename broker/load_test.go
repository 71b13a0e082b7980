package broker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// loadClient is a bare QoS 1 client for the load test: one goroutine reads and acknowledges,
// the test goroutine writes.
type loadClient struct {
	nc  net.Conn
	bw  *bufio.Writer
	mu  sync.Mutex // protects bw
	got chan *packet.Publish
	err chan error
}

func dialLoad(addr, id, filter string) (*loadClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &loadClient{nc: nc, bw: bufio.NewWriter(nc), got: make(chan *packet.Publish, 64), err: make(chan error, 1)}
	r := packet.NewReader(bufio.NewReader(nc), 0)
	r.SetVersion(packet.V311)
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.write(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}); err != nil {
		return nil, err
	}
	if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeConnack {
		return nil, fmt.Errorf("%s: no CONNACK: %v", id, err)
	}
	if filter != "" {
		if err := c.write(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 1}}}); err != nil {
			return nil, err
		}
		if p, err := r.ReadPacket(); err != nil || p.Type() != packet.TypeSuback {
			return nil, fmt.Errorf("%s: no SUBACK: %v", id, err)
		}
	}
	go func() {
		defer close(c.got)
		for {
			p, err := r.ReadPacket()
			if err != nil {
				c.err <- err
				return
			}
			if pub, ok := p.(*packet.Publish); ok {
				if err := c.write(&packet.Puback{PacketID: pub.PacketID}); err != nil {
					c.err <- err
					return
				}
				c.got <- pub
			}
		}
	}()
	return c, nil
}

func (c *loadClient) write(p packet.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := p.AppendTo(c.bw.AvailableBuffer(), packet.V311)
	if err != nil {
		return err
	}
	if _, err := c.bw.Write(b); err != nil {
		return err
	}
	return c.bw.Flush()
}

// TestThousandClientsQoS1 connects 1,000 clients; each publishes QoS 1 messages to its neighbour
// while a monitor subscribes to everything. Nothing may be lost and each publisher's messages must
// arrive in order, at the neighbour and at the monitor.
func TestThousandClientsQoS1(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, ginkgoInterrupts) }) // runs after the broker's shutdown cleanup
	const clients, perClient = 1000, 10
	b := brokertest.Start(t, brokertest.WithTraceCapacity(1))
	monitor, err := dialLoad(b.Addr(), "monitor", "load/#")
	if err != nil {
		t.Fatal(err)
	}
	defer monitor.nc.Close()
	cs := make([]*loadClient, clients)
	for i := range cs {
		c, err := dialLoad(b.Addr(), fmt.Sprintf("c%04d", i), fmt.Sprintf("load/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		cs[i] = c
	}
	// Publish: message k of client i goes to client i+1, payload = (i, k).
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for k := range perClient {
				payload := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(i)), uint32(k))
				if err := c.write(&packet.Publish{Topic: fmt.Sprintf("load/%d", (i+1)%clients), QoS: 1, PacketID: uint16(k + 1), Payload: payload}); err != nil {
					t.Errorf("client %d publish: %v", i, err)
					return
				}
			}
		})
	}
	deadline := time.After(60 * time.Second)
	check := func(name string, c *loadClient, want int, next map[uint32]uint32) {
		for n := 0; n < want; n++ {
			select {
			case p, ok := <-c.got:
				if !ok {
					t.Fatalf("%s: connection ended after %d of %d messages: %v", name, n, want, <-c.err)
				}
				from, k := binary.BigEndian.Uint32(p.Payload), binary.BigEndian.Uint32(p.Payload[4:])
				if k != next[from] {
					t.Fatalf("%s: from %d got message %d, want %d (order or loss)", name, from, k, next[from])
				}
				next[from]++
			case <-deadline:
				t.Fatalf("%s: %d of %d messages after 60s", name, n, want)
			}
		}
	}
	for i, c := range cs {
		check(fmt.Sprintf("client %d", i), c, perClient, map[uint32]uint32{})
	}
	check("monitor", monitor, clients*perClient, map[uint32]uint32{})
	wg.Wait()
	st := b.Stats().Snapshot()
	if st.Dropped() != 0 {
		t.Errorf("dropped %d messages", st.Dropped())
	}
	for _, c := range append(cs, monitor) {
		_ = c.nc.Close()
		for range c.got {
		}
	}
}
