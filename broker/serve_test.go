package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestServeStopsWithItsContext checks the embedding contract: Serve returns after its context
// ends, having closed every connection and ended every goroutine it started.
func TestServeStopsWithItsContext(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, ginkgoInterrupts) })
	b, err := broker.New(broker.Config{AllowAnonymous: true, Listeners: []broker.Listener{{Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	var addr net.Addr
	deadline := time.After(5 * time.Second)
	for addr == nil {
		select {
		case err := <-done:
			t.Fatalf("Serve returned early: %v", err)
		case <-deadline:
			t.Fatal("no listener after 5s")
		case <-time.After(time.Millisecond):
			addr = b.Addr("tcp")
		}
	}
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(packet.Build(&packet.Connect{ClientID: "c", CleanStart: true}, packet.V311)); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context ending")
	}
	if _, err := broker.New(broker.Config{Listeners: []broker.Listener{{Kind: "quic", Addr: ":0"}}}); err == nil {
		t.Error("New accepted an unknown listener kind")
	}
}
