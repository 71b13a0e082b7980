package wire_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// short is the deadline of expectations that are met at once; long enough for a loaded machine.
const short = 5 * time.Second

// scripted is a one-connection TCP server whose side of the exchange the test writes by hand.
type scripted struct {
	ln   net.Listener
	conn chan net.Conn
}

func newScripted(t *testing.T) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln, conn: make(chan net.Conn, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			s.conn <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		select {
		case c := <-s.conn:
			_ = c.Close()
		default:
		}
	})
	return s
}

// dial connects a wire client to the scripted server and returns both ends.
func (s *scripted) dial(t *testing.T) (*wire.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), short)
	defer cancel()
	c, err := wire.Dial(ctx, "mqtt://"+s.ln.Addr().String(), wire.Options{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	select {
	case sc := <-s.conn:
		t.Cleanup(func() { _ = sc.Close() })
		return c, sc
	case <-time.After(short):
		t.Fatal("scripted server: no connection")
	}
	return nil, nil
}

func write(t *testing.T, c net.Conn, ps ...packet.Packet) {
	t.Helper()
	for _, p := range ps {
		if _, err := c.Write(packet.Build(p, packet.V311)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundTripWithReferenceBroker(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithWebSocket())
	for _, url := range []string{"mqtt://" + b.Addr(), b.WSURL()} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), short)
			defer cancel()
			tr := wire.NewTrace()
			sub, err := wire.Dial(ctx, url, wire.Options{Name: "sub", Trace: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			ack, err := sub.Connect(short, &packet.Connect{ClientID: "wire-sub", CleanStart: true, KeepAlive: 30})
			if err != nil {
				t.Fatal(err)
			}
			if ack.Code != packet.ConnAccepted {
				t.Fatalf("CONNACK code %v", ack.Code)
			}
			if err := sub.Send(&packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: "wire/#", QoS: 1}}}); err != nil {
				t.Fatal(err)
			}
			p, err := sub.ExpectPacket(short, wire.SubackFor(7))
			if err != nil {
				t.Fatal(err)
			}
			if codes := p.(*packet.Suback).Codes; len(codes) != 1 || codes[0] != packet.GrantedQoS1 {
				t.Fatalf("SUBACK codes %v", codes)
			}
			pub, err := wire.Dial(ctx, url, wire.Options{Name: "pub", Trace: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			if _, err := pub.Connect(short, &packet.Connect{ClientID: "wire-pub", CleanStart: true}); err != nil {
				t.Fatal(err)
			}
			if err := pub.Send(&packet.Publish{QoS: 1, PacketID: 3, Topic: "wire/a", Payload: []byte("hello")}); err != nil {
				t.Fatal(err)
			}
			if _, err := pub.ExpectPacket(short, wire.PubackFor(3)); err != nil {
				t.Fatal(err)
			}
			got, err := sub.ExpectPacket(short, wire.PublishWith("wire/a", []byte("hello")))
			if err != nil {
				t.Fatal(err)
			}
			if q := got.(*packet.Publish).QoS; q != 1 {
				t.Fatalf("delivered at QoS %d, want 1", q)
			}
			if err := pub.Disconnect(); err != nil {
				t.Fatal(err)
			}
			lines := tr.Lines()
			text := strings.Join(lines, "\n")
			for _, want := range []string{"sub    → CONNECT", "sub    ← CONNACK", "pub    → PUBLISH qos=1 id=3", "sub    ← PUBLISH", "pub    × connection closed: by the client", "[32 0f 00 06 77 69 72 65 2f 61 00 03"} {
				if !strings.Contains(text, want) {
					t.Errorf("trace lacks %q:\n%s", want, text)
				}
			}
			if errs := sub.Invalid(); len(errs) > 0 {
				t.Errorf("reference broker sent invalid packets: %v", errs)
			}
		})
	}
}

func TestExpectPacketLeavesOthersInOrder(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	write(t, sc, &packet.Pingresp{}, &packet.Puback{PacketID: 1}, &packet.Suback{PacketID: 2, Codes: []packet.ReasonCode{0}})
	if _, err := c.ExpectPacket(short, wire.SubackFor(2)); err != nil {
		t.Fatal(err)
	}
	first, err := c.ExpectNext(short)
	if err != nil || first.Type() != packet.TypePingresp {
		t.Fatalf("next = %v, %v; want PINGRESP", first, err)
	}
	second, err := c.ExpectNext(short)
	if err != nil || second.Type() != packet.TypePuback {
		t.Fatalf("next = %v, %v; want PUBACK", second, err)
	}
}

func TestExpectPacketTimesOutListingWhatArrived(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	write(t, sc, &packet.Pingresp{})
	_, err := c.ExpectPacket(50*time.Millisecond, wire.PubackFor(9))
	if !errors.Is(err, wire.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "PUBACK for packet id 9") || !strings.Contains(err.Error(), "PINGRESP") {
		t.Fatalf("message does not name the expectation and what arrived: %v", err)
	}
}

func TestExpectPacketStopsWhenBrokerCloses(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	_ = sc.Close()
	start := time.Now()
	_, err := c.ExpectPacket(short, wire.IsType(packet.TypeConnack))
	if !errors.Is(err, wire.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if time.Since(start) >= short {
		t.Fatal("waited for the whole deadline although the connection had closed")
	}
}

func TestExpectClosed(t *testing.T) {
	t.Run("broker closes", func(t *testing.T) {
		s := newScripted(t)
		c, sc := s.dial(t)
		write(t, sc, &packet.Connack{Code: packet.ConnRefusedProtocolVersion})
		_ = sc.Close()
		if err := c.ExpectClosed(short); err != nil {
			t.Fatal(err)
		}
		if by := closedBy(c); by != "broker" {
			t.Fatalf("closed by %q", by)
		}
		// The CONNACK sent before the close is still there to be judged.
		if p, err := c.ExpectNext(short); err != nil || p.Type() != packet.TypeConnack {
			t.Fatalf("next = %v, %v; want the CONNACK", p, err)
		}
	})
	t.Run("broker keeps it open", func(t *testing.T) {
		s := newScripted(t)
		c, _ := s.dial(t)
		if err := c.ExpectClosed(50 * time.Millisecond); !errors.Is(err, wire.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})
	t.Run("client closed it", func(t *testing.T) {
		s := newScripted(t)
		c, _ := s.dial(t)
		_ = c.Close()
		if err := c.ExpectClosed(short); err == nil || !strings.Contains(err.Error(), "client closed it") {
			t.Fatalf("err = %v, want a complaint that the client closed it", err)
		}
	})
}

func closedBy(c *wire.Conn) string {
	_, by := c.Closed()
	return by
}

func TestExpectNothing(t *testing.T) {
	t.Run("quiet", func(t *testing.T) {
		s := newScripted(t)
		c, _ := s.dial(t)
		if err := c.ExpectNothing(30*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("packet arrives", func(t *testing.T) {
		s := newScripted(t)
		c, sc := s.dial(t)
		write(t, sc, &packet.Publish{Topic: "x", Payload: []byte("no")})
		err := c.ExpectNothing(short, wire.IsType(packet.TypePublish))
		if !errors.Is(err, wire.ErrUnexpected) || !strings.Contains(err.Error(), `topic="x"`) {
			t.Fatalf("err = %v, want ErrUnexpected naming the PUBLISH", err)
		}
	})
	t.Run("other packets do not count", func(t *testing.T) {
		s := newScripted(t)
		c, sc := s.dial(t)
		write(t, sc, &packet.Pingresp{})
		if err := c.ExpectNothing(30*time.Millisecond, wire.IsType(packet.TypePublish)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMalformedPacketFromBroker(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	// A CONNACK with a one-byte body: the return code is missing.
	if _, err := sc.Write([]byte{0x20, 0x01, 0x00}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ExpectPacket(short, wire.IsType(packet.TypeConnack))
	if !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if len(c.Invalid()) != 1 {
		t.Fatalf("Invalid() = %v, want one error", c.Invalid())
	}
}

func TestInvalidPacketFromBrokerIsFlagged(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	// Decodes, but a server must never send a wildcard in a topic name.
	write(t, sc, &packet.Publish{Topic: "a/+", Payload: []byte("x")})
	p, err := c.ExpectPacket(short, wire.IsType(packet.TypePublish))
	if err != nil || p == nil {
		t.Fatalf("ExpectPacket = %v, %v", p, err)
	}
	errs := c.Invalid()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "MQTT-3.3.2-2") {
		t.Fatalf("Invalid() = %v, want the wildcard violation", errs)
	}
}

func TestOverlongRemainingLengthEndsConnection(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	if _, err := sc.Write([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ExpectPacket(short, wire.Any())
	if !errors.Is(err, wire.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if !strings.Contains(c.Trace().String(), "longer than four bytes") {
		t.Fatalf("trace does not say why:\n%s", c.Trace())
	}
}

func TestSendRawIsTracedDecoded(t *testing.T) {
	s := newScripted(t)
	c, sc := s.dial(t)
	raw := packet.Build(&packet.Pingreq{}, packet.V311, packet.WithFlags(0x3))
	if err := c.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if err := sc.SetReadDeadline(time.Now().Add(short)); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Read(buf); err != nil || buf[0] != 0xC3 {
		t.Fatalf("server read %x, %v", buf, err)
	}
	if !strings.Contains(c.Trace().String(), "→ (malformed PINGREQ, flags 0011) !! PINGREQ fixed header flags") ||
		!strings.Contains(c.Trace().String(), "[c3 00]") {
		t.Fatalf("trace:\n%s", c.Trace())
	}
}

func TestDialRefusesUnknownScheme(t *testing.T) {
	_, err := wire.Dial(context.Background(), "http://127.0.0.1:1", wire.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown scheme "http"`) {
		t.Fatalf("err = %v", err)
	}
}
