package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

type parkClient struct {
	nc net.Conn
	r  *packet.Reader
}

func dialPark(t *testing.T, addr, id string, keepAlive uint16) *parkClient {
	t.Helper()
	return dialParkWith(t, addr, &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: keepAlive})
}

// dialParkWith connects with the CONNECT given (3.1.1) and reads the CONNACK.
func dialParkWith(t *testing.T, addr string, connect *packet.Connect) *parkClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &parkClient{nc: nc, r: packet.NewReader(bufio.NewReader(nc), 0)}
	c.r.SetVersion(packet.V311)
	c.send(t, connect)
	c.expect(t, packet.TypeConnack)
	return c
}

func (c *parkClient) send(t *testing.T, p packet.Packet) {
	t.Helper()
	b, err := packet.Encode(p, packet.V311)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (c *parkClient) expect(t *testing.T, typ packet.Type) packet.Packet {
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

func startParkBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := New(Config{
		Listeners:      []Listener{{Kind: TCP, Addr: "127.0.0.1:0"}},
		AllowAnonymous: true,
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
	return b
}

// parkedCount counts the broker's connections parked without a goroutine.
func parkedCount(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for c := range b.conns {
		if c.pk.state.Load() == parked {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after %s: %s", within, what)
		}
	}
}

// Idle connected clients hold no goroutine, and every one of them still answers, receives and is
// closed when its keepalive runs out.
func TestIdleClientsAreParkedWithoutGoroutines(t *testing.T) {
	b := startParkBroker(t)
	addr := b.Addr("").String()
	base := runtime.NumGoroutine()
	const n = 200
	clients := make([]*parkClient, n)
	for i := range clients {
		clients[i] = dialPark(t, addr, "idle-"+strconv.Itoa(i), 60)
	}
	waitFor(t, 5*time.Second, "idle connections not parked", func() bool { return parkedCount(b) == n })
	if g := runtime.NumGoroutine(); g > base+n/10 {
		t.Fatalf("%d goroutines for %d parked connections (%d before connecting)", g, n, base)
	}

	// Parked clients wake on data: each answers PINGREQ.
	for _, c := range clients {
		c.send(t, &packet.Pingreq{})
	}
	for _, c := range clients {
		c.expect(t, packet.TypePingresp)
	}

	// A parked subscriber gets what a parked publisher sends, at QoS 1 both ways.
	sub, pub := clients[0], clients[1]
	sub.send(t, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "acs/+/gate/#", QoS: 1}}})
	sub.expect(t, packet.TypeSuback)
	waitFor(t, 5*time.Second, "subscriber not parked again", func() bool { return parkedCount(b) == n })
	pub.send(t, &packet.Publish{QoS: 1, PacketID: 9, Topic: "acs/s1/gate/g1/evt/card", Payload: []byte("42")})
	pub.expect(t, packet.TypePuback)
	got := sub.expect(t, packet.TypePublish).(*packet.Publish)
	if string(got.Payload) != "42" {
		t.Fatalf("subscriber got %q", got.Payload)
	}
	sub.send(t, &packet.Puback{PacketID: got.PacketID})
}

// A parked client that stays silent is closed after 1.5 × its keepalive (MQTT-3.1.2-24).
func TestParkedClientKeepaliveExpires(t *testing.T) {
	b := startParkBroker(t)
	c := dialPark(t, b.Addr("").String(), "silent", 1)
	start := time.Now()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadPacket()
	took := time.Since(start)
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("silent client still open after 5 s (keepalive 1 s)")
		}
	}
	if took < 1400*time.Millisecond {
		t.Fatalf("closed after %s, before 1.5 × keepalive", took)
	}
	if got := b.Stats().KeepaliveTimeouts.Load(); got != 1 {
		t.Fatalf("keepalive timeouts = %d, want 1", got)
	}
}

// Shutdown wakes parked clients and ends every goroutine, the poller's included.
func TestShutdownEndsParkedClients(t *testing.T) {
	b := startParkBroker(t)
	c := dialPark(t, b.Addr("").String(), "parked", 60)
	waitFor(t, 5*time.Second, "client not parked", func() bool { return parkedCount(b) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a parked client: %v", err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadPacket(); err == nil {
		t.Fatal("parked client still open after shutdown")
	}
}
