package device_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

// A parking charge is billed exactly once however the connection breaks during its QoS 2
// exchange: a proxy between the exit gate and the reference broker cuts the connection after
// the PUBLISH reached the broker, after the PUBREC reached the gate, or after the PUBREL reached
// the broker, and a subscriber of the broker must receive the charge once.
func TestChargeIsBilledOnceWhereverTheConnectionDrops(t *testing.T) {
	for _, tc := range []struct {
		after string
		arm   cutPoint // forwarded: the connection is cut at the next packet...
		cut   cutPoint // ...this one, swallowed
		// resentAsPubrel is how many times the gate sends PUBREL where its client library resends
		// the PUBLISH.
		resentAsPubrel uint64
	}{
		{"PUBLISH", cutPoint{toBroker: true, typ: packet.TypePublish}, cutPoint{toBroker: false, typ: packet.TypePubrec}, 0},
		{"PUBREC", cutPoint{toBroker: false, typ: packet.TypePubrec}, cutPoint{toBroker: true, typ: packet.TypePubrel}, 1},
		{"PUBREL", cutPoint{toBroker: true, typ: packet.TypePubrel}, cutPoint{toBroker: false, typ: packet.TypePubcomp}, 1},
	} {
		t.Run("after "+tc.after, func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t)
			charges := subscribeCharges(t, b.URL())
			p := startCutter(t, b.Addr(), tc.arm, tc.cut)
			id := "exit-" + strings.ToLower(tc.after)
			g := startGate(t, id, p.url(), 5*time.Second)

			passage(t, g, "first")
			p.await(t, p.fired, "the cut "+tc.after)
			p.await(t, p.completed, "the QoS 2 exchange of the charge completed on a later connection")
			first := charges.next(t)
			// Messages to one subscriber keep their order (MQTT-4.6.0-5): once the second charge
			// is in, a duplicate of the first would have come before it.
			passage(t, g, "second")
			second := charges.next(t)
			if first.ChargeID == second.ChargeID || second.PassageSeq <= first.PassageSeq {
				t.Fatalf("after the charge %+v came %+v, want the next passage's charge: the first was billed twice", first, second)
			}
			if extra := charges.drain(); len(extra) > 0 {
				t.Fatalf("charges after the second: %+v", extra)
			}
			// MQTT-4.3.3-1: once the PUBREL is sent, the PUBLISH is never sent again.
			var seq []string
			released := false
			for _, s := range p.fromDevice() {
				seq = append(seq, s)
				if s == "PUBREL" {
					released = true
				}
				if released && strings.HasPrefix(s, "PUBLISH") {
					t.Fatalf("the gate sent %v for packet %d: a PUBLISH after its PUBREL", seq, p.chargeID())
				}
			}
			if got := g.Stats().Link.PubrelsResent; got != tc.resentAsPubrel {
				t.Fatalf("%d resent PUBLISH packets went as their PUBREL, want %d (packets %v)", got, tc.resentAsPubrel, seq)
			}
			t.Logf("packet %d from the gate: %v", p.chargeID(), seq)
		})
	}
}

// passage opens the gate and drives a vehicle over its loop: an exit passage, billed at QoS 2.
func passage(t *testing.T, g *gate.Gate, corr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a, err := g.Do(ctx, "open", []byte(`{"corr":"`+corr+`"}`)); err != nil || a.Result != "ok" {
		t.Fatalf("open: %+v, %v", a, err)
	}
	for _, on := range []bool{true, false} {
		if err := g.SetInput(gate.InLoop, on); err != nil {
			t.Fatal(err)
		}
	}
}

type charge struct {
	ChargeID   string `json:"charge_id"`
	PassageSeq int    `json:"passage_seq"`
	Amount     int    `json:"amount_cents"`
}

// chargeSink is a subscriber of the reference broker to every gate's charges.
type chargeSink struct{ ch chan charge }

func subscribeCharges(t *testing.T, url string) *chargeSink {
	t.Helper()
	s := &chargeSink{ch: make(chan charge, 16)}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("billing").SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("billing subscriber: connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	tok := c.Subscribe("acs/+/gate/+/evt/charge", 2, func(_ mqtt.Client, m mqtt.Message) {
		var ch charge
		if err := json.Unmarshal(m.Payload(), &ch); err != nil {
			t.Errorf("charge %q: %v", m.Payload(), err)
			return
		}
		select {
		case s.ch <- ch:
		default:
			t.Errorf("more charges than the test can hold: %+v", ch)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("billing subscriber: subscribe: %v", tok.Error())
	}
	return s
}

func (s *chargeSink) next(t *testing.T) charge {
	t.Helper()
	select {
	case c := <-s.ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no charge reached the subscriber within 10s")
		return charge{}
	}
}

func (s *chargeSink) drain() []charge {
	var out []charge
	for {
		select {
		case c := <-s.ch:
			out = append(out, c)
		default:
			return out
		}
	}
}

// cutPoint is one packet of the charge's QoS 2 exchange, on its way to the broker or to the gate.
type cutPoint struct {
	toBroker bool
	typ      packet.Type
}

// cutter is a TCP proxy between one device and the broker that reads the MQTT packets both ways.
// It learns the packet identifier of the first charge (a QoS 2 PUBLISH on evt/charge); once the
// arm packet of that exchange has passed, it swallows the cut packet and closes both sides
// (the device sees the connection end), then forwards everything on later connections.
type cutter struct {
	ln       net.Listener
	broker   string
	arm, cut cutPoint

	mu      sync.Mutex // protects id, armed, done, sent, conns and closed
	id      uint16     // the charge's packet identifier, 0 until its PUBLISH is seen
	armed   bool
	done    bool
	sent    []string // packets of the exchange from the device, cut ones included
	conns   []net.Conn
	closed  bool
	fired   chan struct{} // closed at the cut
	compOne sync.Once
	// completed is closed when the PUBCOMP of the exchange reaches the device after the cut.
	completed chan struct{}
	wg        sync.WaitGroup
}

func startCutter(t *testing.T, broker string, arm, cut cutPoint) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutter{ln: ln, broker: broker, arm: arm, cut: cut, fired: make(chan struct{}), completed: make(chan struct{})}
	p.goFunc(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *cutter) url() string { return "tcp://" + p.ln.Addr().String() }

// goFunc starts a goroutine of the proxy, registered first.
func (p *cutter) goFunc(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func (p *cutter) accept() {
	for {
		dev, err := p.ln.Accept()
		if err != nil {
			return
		}
		brk, err := net.Dial("tcp", p.broker)
		if err != nil {
			_ = dev.Close()
			continue
		}
		p.mu.Lock()
		closed := p.closed
		p.conns = append(p.conns, dev, brk)
		p.mu.Unlock()
		if closed {
			_, _ = dev.Close(), brk.Close()
			return
		}
		p.goFunc(func() { p.pump(dev, brk, true) })
		p.goFunc(func() { p.pump(brk, dev, false) })
	}
}

// pump forwards packets from src to dst until either side closes.
func (p *cutter) pump(src, dst net.Conn, toBroker bool) {
	defer func() { _ = src.Close(); _ = dst.Close() }()
	r := bufio.NewReader(src)
	for {
		frame, err := readFrame(r)
		if err != nil {
			return
		}
		pkt, _, err := packet.Decode(frame, packet.V311, 0)
		if err != nil {
			return
		}
		if !p.forward(pkt, toBroker) {
			return
		}
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}

// forward reports whether pkt passes; false cuts the connection.
func (p *cutter) forward(pkt packet.Packet, toBroker bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pub, ok := pkt.(*packet.Publish); ok && toBroker && p.id == 0 && pub.QoS == 2 && strings.HasSuffix(pub.Topic, "/evt/charge") {
		p.id = pub.PacketID
	}
	id := packetID(pkt)
	if p.id == 0 || id != p.id {
		return true
	}
	if toBroker {
		s := pkt.Type().String()
		if pub, ok := pkt.(*packet.Publish); ok {
			s = fmt.Sprintf("PUBLISH(dup=%t)", pub.Dup)
		}
		p.sent = append(p.sent, s)
	}
	here := cutPoint{toBroker: toBroker, typ: pkt.Type()}
	switch {
	case p.done && here == (cutPoint{toBroker: false, typ: packet.TypePubcomp}):
		p.compOne.Do(func() { close(p.completed) })
	case !p.done && p.armed && here == p.cut:
		p.done = true
		close(p.fired)
		return false
	case !p.done && here == p.arm:
		p.armed = true
	}
	return true
}

func packetID(pkt packet.Packet) uint16 {
	switch p := pkt.(type) {
	case *packet.Publish:
		if p.QoS > 0 {
			return p.PacketID
		}
	case *packet.Pubrec:
		return p.PacketID
	case *packet.Pubrel:
		return p.PacketID
	case *packet.Pubcomp:
		return p.PacketID
	}
	return 0
}

func (p *cutter) chargeID() uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// fromDevice lists the packets of the charge's exchange that the device sent, in order.
func (p *cutter) fromDevice() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent...)
}

func (p *cutter) await(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("%s: not within 15s (packets of the charge from the gate: %v)", what, p.sent)
	}
}

func (p *cutter) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// readFrame reads one whole MQTT packet.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var hdr []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		hdr = append(hdr, b)
		h, n, err := packet.ReadFixedHeader(hdr)
		if errors.Is(err, packet.ErrIncomplete) {
			continue
		}
		if err != nil {
			return nil, err
		}
		frame := make([]byte, n+h.Remaining)
		copy(frame, hdr)
		if _, err := io.ReadFull(r, frame[n:]); err != nil {
			return nil, err
		}
		return frame, nil
	}
}
