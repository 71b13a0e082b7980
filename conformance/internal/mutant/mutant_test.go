package mutant_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/conformance/internal/mutant"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, url string, id string) (*wire.Conn, *packet.Connack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, url, wire.Options{Name: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ack, err := c.Connect(5*time.Second, &packet.Connect{ClientID: id, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	return c, ack
}

func TestPassesThroughUnlessMutated(t *testing.T) {
	b := brokertest.Start(t)
	p, err := mutant.Start(b.Addr(), mutant.SessionPresentFlip)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, ack := connect(t, p.URL(), "flip")
	if !ack.SessionPresent {
		t.Fatal("session-present-flip did not flip Session Present of a clean session")
	}
	// Everything else passes unchanged.
	if err := c.Send(&packet.Subscribe{PacketID: 5, Subscriptions: []packet.Subscription{{Filter: "m/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExpectPacket(5*time.Second, wire.SubackFor(5)); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(&packet.Publish{Topic: "m/a", Payload: []byte("x"), QoS: 1, PacketID: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExpectPacket(5*time.Second, wire.PublishWith("m/a", []byte("x"))); err != nil {
		t.Fatal(err)
	}
}

func TestRepairsConnect(t *testing.T) {
	b := brokertest.Start(t)
	p, err := mutant.Start(b.Addr(), mutant.NormalizeConnect)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, p.URL(), wire.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Connect(5*time.Second, &packet.Connect{ProtocolName: "MQTX", Version: 7, ReservedFlag: true, ClientID: "fix", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != packet.ConnAccepted {
		t.Fatalf("a repaired CONNECT was refused: 0x%02X", byte(ack.Code))
	}
}

func TestWebSocketSide(t *testing.T) {
	b := brokertest.Start(t)
	p, err := mutant.Start(b.Addr(), mutant.DropPingresp)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, _ := connect(t, p.WSURL(), "ws")
	if err := c.Send(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpectNothing(200*time.Millisecond, wire.IsType(packet.TypePingresp)); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownMutation(t *testing.T) {
	if _, err := mutant.Start("127.0.0.1:1", "no-such-defect"); err == nil {
		t.Fatal("an unknown mutation was accepted")
	}
}
