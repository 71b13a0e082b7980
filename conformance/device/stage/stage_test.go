package stage

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 2 * time.Second

func start(t *testing.T, id string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Listen(ctx, Config{Addr: "127.0.0.1:0", ClientID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// device connects a raw client to the stage as the device would.
func device(t *testing.T, s *Server, v packet.Version, connect *packet.Connect) (*wire.Conn, *packet.Connack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wire.Dial(ctx, "mqtt://"+s.Addr().String(), wire.Options{Version: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ack, err := c.Connect(wait, connect)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, c.Trace())
	}
	return c, ack
}

func TestSessionResumedAndRedelivered(t *testing.T) {
	s := start(t, "dev")
	c, ack := device(t, s, packet.V311, &packet.Connect{ClientID: "dev", KeepAlive: 5})
	if ack.Code != 0 || ack.SessionPresent {
		t.Fatalf("first CONNACK = %+v, want accepted without session", ack)
	}
	if err := c.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/+/cmd/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExpectPacket(wait, wire.SubackFor(1)); err != nil {
		t.Fatal(err)
	}
	if q, ok := s.Granted("a/x/cmd/open"); !ok || q != 1 {
		t.Fatalf("granted = %d, %v; want QoS 1", q, ok)
	}
	_, id, err := s.Publish("a/x/cmd/open", []byte(`{"corr":"1"}`), 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.ExpectPacket(wait, wire.IsType(packet.TypePublish))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*packet.Publish); got.PacketID != id || got.Dup {
		t.Fatalf("first delivery %+v, want id %d without DUP", got, id)
	}
	// No PUBACK: the connection drops, the device resumes its session and gets it again, with DUP.
	if _, err := s.Drop("test"); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpectClosed(wait); err != nil {
		t.Fatal(err)
	}
	c2, ack := device(t, s, packet.V311, &packet.Connect{ClientID: "dev", KeepAlive: 5})
	if !ack.SessionPresent {
		t.Fatal("resumed session: Session Present 0")
	}
	p, err = c2.ExpectPacket(wait, wire.IsType(packet.TypePublish))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*packet.Publish); got.PacketID != id || !got.Dup {
		t.Fatalf("redelivery %+v, want id %d with DUP", got, id)
	}
	ev, ok := s.Trace().Wait(context.Background(), 0, wait, func(e Event) bool { return e.Kind == Closed && e.Conn == 1 })
	if !ok || ev.ByDevice || !strings.Contains(ev.Text, "server") {
		t.Fatalf("close of connection 1 recorded as %+v", ev)
	}
}

func TestHoldsAndLostSession(t *testing.T) {
	s := start(t, "dev")
	c, _ := device(t, s, packet.V311, &packet.Connect{ClientID: "dev", KeepAlive: 5})
	s.Hold(Hold{Ack: packet.TypePuback, Count: 1, Match: func(p *packet.Publish) bool { return p.Topic == "held" }})
	s.Hold(Hold{Ack: packet.TypePubrec, Count: 1})
	send := func(p packet.Packet) {
		t.Helper()
		if err := c.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	send(&packet.Publish{Topic: "held", QoS: 1, PacketID: 1})
	send(&packet.Publish{Topic: "other", QoS: 1, PacketID: 2})
	if _, err := c.ExpectPacket(wait, wire.PubackFor(2)); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpectNothing(100*time.Millisecond, wire.PubackFor(1)); err != nil {
		t.Fatal(err)
	}
	send(&packet.Publish{Topic: "q2", QoS: 2, PacketID: 3})
	if err := c.ExpectNothing(100*time.Millisecond, wire.PubrecFor(3)); err != nil {
		t.Fatal(err)
	}
	// The resend is answered (the hold was for one), then the flow completes.
	send(&packet.Publish{Topic: "q2", QoS: 2, PacketID: 3, Dup: true})
	if _, err := c.ExpectPacket(wait, wire.PubrecFor(3)); err != nil {
		t.Fatal(err)
	}
	send(&packet.Pubrel{PacketID: 3})
	if _, err := c.ExpectPacket(wait, wire.PubcompFor(3)); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, e := range s.Trace().Events(0, -1) {
		if e.Held != nil {
			held++
		}
	}
	if held != 2 {
		t.Fatalf("%d held notes, want 2:\n%s", held, strings.Join(s.Trace().Lines(0, -1), "\n"))
	}

	send(&packet.Subscribe{PacketID: 4, Subscriptions: []packet.Subscription{{Filter: "cmd/#", QoS: 1}}})
	if _, err := c.ExpectPacket(wait, wire.SubackFor(4)); err != nil {
		t.Fatal(err)
	}
	s.AnswerNext(Answer{Session: SessionLost})
	c.Close()
	_, ack := device(t, s, packet.V311, &packet.Connect{ClientID: "dev", KeepAlive: 5})
	if ack.SessionPresent {
		t.Fatal("SessionLost answered Session Present 1")
	}
	if subs := s.Subscriptions(); len(subs) != 0 {
		t.Fatalf("subscriptions after a lost session: %v", subs)
	}
}

func TestRefusalLingersAndRecordsWhatFollows(t *testing.T) {
	s := start(t, "dev")
	s.AnswerNext(Answer{Code: packet.ServerUnavailable, Linger: 300 * time.Millisecond})
	ctx := context.Background()
	c, err := wire.Dial(ctx, "mqtt://"+s.Addr().String(), wire.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Connect(wait, &packet.Connect{ClientID: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != packet.ConnRefusedServerUnavailable {
		t.Fatalf("CONNACK code %#x, want 3.1.1 server unavailable", ack.Code)
	}
	if err := c.Send(&packet.Publish{Topic: "x", QoS: 1, PacketID: 9}); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpectClosed(wait); err != nil {
		t.Fatal(err)
	}
	ev, ok := s.Trace().Wait(ctx, 0, wait, func(e Event) bool { return e.Kind == Closed })
	if !ok || ev.ByDevice {
		t.Fatalf("close recorded as %+v", ev)
	}
	var answered, seen bool
	for _, e := range s.Trace().Events(0, -1) {
		answered = answered || e.Is(ToDevice, packet.TypePuback)
		seen = seen || e.Is(FromDevice, packet.TypePublish)
	}
	if answered || !seen {
		t.Fatalf("after a refusal: PUBLISH seen %v, answered %v; want seen, not answered", seen, answered)
	}
}

func TestStrangerRefused(t *testing.T) {
	s := start(t, "dev")
	ctx := context.Background()
	c, err := wire.Dial(ctx, "mqtt://"+s.Addr().String(), wire.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Connect(wait, &packet.Connect{ClientID: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != packet.ConnRefusedIdentifierRejected {
		t.Fatalf("stranger got CONNACK %#x", ack.Code)
	}
	if s.IsDevice(1) {
		t.Fatal("the stranger's connection counts as the device's")
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"acs/+/gate/g1/cmd/+", "acs/s/gate/g1/cmd/open", true},
		{"$share/g/a/+", "a/b", true},
		{"a/b", "a/c", false},
	} {
		if got := Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}
