package fault

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a connection dialled through w and the broker's end of it.
func pair(t *testing.T, w *Wire) (*Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := w.Dial(l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial through the wire: %v", err)
	}
	var peer net.Conn
	select {
	case peer = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("accept timed out")
	}
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { peer.Close(); c.Close(); w.Close() })
	return c, peer
}

// readN reads exactly n bytes with a deadline.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// expectSilence checks that nothing arrives on c within a short window: the absence of bytes is
// the effect being tested, and a deadline bounds the wait.
func expectSilence(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	b := make([]byte, 64)
	n, err := c.Read(b)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: read returned %d bytes % x, err %v; want silence (timeout)", what, n, b[:n], err)
	}
}

var (
	pingreq    = []byte{0xC0, 0x00}
	publishDup = []byte{0x3A, 0x07, 0x00, 0x01, 't', 0x00, 0x05, 'h', 'i'} // QoS 1, DUP, id 5, "hi"
	publishOK  = []byte{0x32, 0x07, 0x00, 0x01, 't', 0x00, 0x05, 'h', 'i'}
	puback     = []byte{0x40, 0x02, 0x00, 0x05}
)

func TestWirePassesBytesUntouchedWithoutFaults(t *testing.T) {
	w := NewWire()
	c, peer := pair(t, w)
	stream := concat(publishDup, pingreq, puback)
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, peer, len(stream)); !bytes.Equal(got, stream) {
		t.Fatalf("peer got % x, want % x", got, stream)
	}
}

func TestNoPingreqSwallowsPingreqWhateverTheWriteBoundaries(t *testing.T) {
	w := NewWire()
	w.SetNoPingreq(true)
	c, peer := pair(t, w)
	stream := concat(publishOK, pingreq, puback, pingreq)
	// One byte per write: the framing must survive any split.
	for i := range stream {
		if _, err := c.Write(stream[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	want := concat(publishOK, puback)
	if got := readN(t, peer, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("peer got % x, want % x", got, want)
	}
	expectSilence(t, peer, "after the swallowed PINGREQ")
	if s := w.Stats(); s.PingreqsDropped != 2 {
		t.Fatalf("PingreqsDropped = %d, want 2", s.PingreqsDropped)
	}
	w.SetNoPingreq(false)
	if _, err := c.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, peer, 2); !bytes.Equal(got, pingreq) {
		t.Fatalf("after clearing no_pingreq the peer got % x, want PINGREQ", got)
	}
}

func TestNoDupClearsDupOnPublishOnly(t *testing.T) {
	w := NewWire()
	w.SetNoDup(true)
	c, peer := pair(t, w)
	pubrelLike := []byte{0x62, 0x02, 0x00, 0x05} // PUBREL: bit 3 is not a DUP flag there
	if _, err := c.Write(concat(publishDup[:3], nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(concat(publishDup[3:], pubrelLike)); err != nil {
		t.Fatal(err)
	}
	want := concat(publishOK, pubrelLike)
	if got := readN(t, peer, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("peer got % x, want % x (DUP cleared)", got, want)
	}
	if s := w.Stats(); s.DupsCleared != 1 {
		t.Fatalf("DupsCleared = %d, want 1", s.DupsCleared)
	}
}

func TestNetworkDropIsSilentBothWaysAndHeals(t *testing.T) {
	w := NewWire()
	c, peer := pair(t, w)
	w.Drop()
	if _, err := c.Write(pingreq); err != nil {
		t.Fatalf("write during a drop: %v (a silent network accepts writes)", err)
	}
	expectSilence(t, peer, "device write during the drop")

	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 2)
		n, _ := io.ReadFull(c, b)
		got <- b[:n]
	}()
	if _, err := peer.Write([]byte{0xD0, 0x00}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		t.Fatalf("device read % x during the drop", b)
	case <-time.After(150 * time.Millisecond):
	}
	w.Heal()
	if b := readN(t, peer, 2); !bytes.Equal(b, pingreq) {
		t.Fatalf("after healing the peer got % x, want the held PINGREQ", b)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, []byte{0xD0, 0x00}) {
			t.Fatalf("device read % x after healing, want PINGRESP", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("device read nothing after healing")
	}
}

func TestCloseDuringDropSendsNoFINUntilHealed(t *testing.T) {
	w := NewWire()
	c, peer := pair(t, w)
	w.Drop()
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		readErr <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a blocked Read")
	}
	expectSilence(t, peer, "close during the drop")
	w.Heal()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("after healing the peer read %d, %v; want EOF (the late FIN)", n, err)
	}
}

func TestDialDuringDropTimesOut(t *testing.T) {
	w := NewWire()
	w.Drop()
	defer w.Heal()
	_, err := w.Dial("127.0.0.1:1", 50*time.Millisecond)
	if !errors.Is(err, ErrNetworkDropped) {
		t.Fatalf("dial during a drop: %v, want ErrNetworkDropped", err)
	}
}

func TestResetSendsRST(t *testing.T) {
	w := NewWire()
	c, peer := pair(t, w)
	if n := w.Reset(); n != 1 {
		t.Fatalf("Reset aborted %d connections, want 1", n)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := peer.Read(make([]byte, 8))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read after Reset: %v, want connection reset by peer", err)
	}
	if _, err := c.Write(pingreq); !errors.Is(err, ErrReset) {
		t.Fatalf("write after Reset: %v, want ErrReset", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrReset) || strings.Contains(err.Error(), "use of closed network connection") {
		t.Fatalf("read after Reset: %v, want ErrReset (not a local close, which clients ignore)", err)
	}
}

func TestPowerOffClosesWithFINAndRefusesConnections(t *testing.T) {
	w := NewWire()
	_, peer := pair(t, w)
	w.PowerOff()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("peer read after power off: %v, want EOF", err)
	}
	if _, err := w.Dial("127.0.0.1:1", time.Second); !errors.Is(err, ErrPowerOff) {
		t.Fatalf("dial while off: %v, want ErrPowerOff", err)
	}
	w.PowerOn()
	_, peer2 := pair(t, w)
	if peer2 == nil {
		t.Fatal("no connection after power on")
	}
}

func TestFaultValidate(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{Fault{Kind: "meteor"}, `fault kind "meteor" is unknown`},
		{Fault{Kind: SlowAck, Params: map[string]any{"latency": "fast"}}, `fault slow_ack: param latency: "fast" is not a duration`},
		{Fault{Kind: Bounce, Params: map[string]any{"edges": 1.5}}, "fault bounce: param edges: 1.5 is not a whole number"},
		{Fault{Kind: StuckRelay, Params: map[string]any{"terminal": 3}}, "fault stuck_relay: param terminal: 3 (int) is not a string"},
		{Fault{Kind: PowerCut, Duration: -time.Second}, "duration -1s is negative"},
	} {
		err := tc.f.Validate()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%v: Validate() = %v, want it to contain %q", tc.f, err, tc.want)
		}
	}
	ok := Fault{Kind: ClockSkew, Params: map[string]any{"offset": "-30s"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid fault rejected: %v", err)
	}
	if d, _ := ok.DurationParam("offset", 0); d != -30*time.Second {
		t.Fatalf("offset = %v", d)
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
