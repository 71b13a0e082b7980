package fault

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// ErrPowerOff is returned when a connection is opened while the device has no power.
var ErrPowerOff = errors.New("device power is off")

// ErrNetworkDropped is returned by Dial when the network stayed silent for the whole dial timeout,
// as a TCP handshake into a black hole does.
var ErrNetworkDropped = errors.New("network dropped: no answer to the connection attempt")

// ErrReset is what reads and writes return on a connection aborted by Reset. It must not read
// as a local close ("use of closed network connection"), which MQTT clients treat as their own
// doing and do not report as a lost connection.
var ErrReset = errors.New("connection aborted: reset fault (RST sent)")

// errShutdown is what reads and writes return on connections closed by PowerOff or Close, for
// the same reason.
var errShutdown = errors.New("connection closed: device power off or device stopped")

// maxHeld bounds the bytes a connection accepts from its writer while the network is dropped,
// like a socket send buffer: past it, Write blocks until the network heals or the connection is
// closed.
const maxHeld = 256 << 10

// Wire is the network path of one device. Every connection the device's MQTT client opens goes
// through it (ClientOptions.SetCustomOpenConnectionFn), so that faults act on the bytes:
// silence both ways, an abortive reset, a power cut that closes without DISCONNECT, and firmware
// bugs that drop PINGREQ or clear the DUP flag. A Wire is safe for concurrent use.
type Wire struct {
	mu      sync.Mutex // protects dropped, healed, off, conns and held
	dropped bool
	healed  chan struct{} // closed when a drop ends; replaced by each new drop
	off     bool
	conns   map[*Conn]struct{}
	// held are sockets their owner closed during a drop: closing them for real would put a FIN on
	// the wire, so they are closed when the network heals (or the Wire is closed).
	held []net.Conn

	noPingreq atomic.Bool
	noDup     atomic.Bool

	pingreqsDropped atomic.Uint64
	dupsCleared     atomic.Uint64
	resets          atomic.Uint64
}

// WireStats counts what the wire faults did.
type WireStats struct {
	PingreqsDropped uint64 // outgoing PINGREQ packets swallowed by NoPingreq
	DupsCleared     uint64 // outgoing PUBLISH packets whose DUP flag NoDup cleared
	Resets          uint64 // connections aborted with RST
}

// NewWire returns a healthy, powered wire.
func NewWire() *Wire {
	return &Wire{conns: make(map[*Conn]struct{}), healed: closedChan()}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Stats returns the counters.
func (w *Wire) Stats() WireStats {
	return WireStats{PingreqsDropped: w.pingreqsDropped.Load(), DupsCleared: w.dupsCleared.Load(), Resets: w.resets.Load()}
}

// SetNoPingreq switches the firmware bug that drops outgoing PINGREQ frames.
func (w *Wire) SetNoPingreq(on bool) { w.noPingreq.Store(on) }

// SetNoDup switches the firmware bug that clears DUP on outgoing PUBLISH frames.
func (w *Wire) SetNoDup(on bool) { w.noDup.Store(on) }

// Dropped reports whether the network is silent.
func (w *Wire) Dropped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Drop silences the network both ways: writes are held (as unacknowledged TCP data), received
// bytes are not delivered, and nothing is closed, so neither end sees FIN or RST.
func (w *Wire) Drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dropped {
		w.dropped = true
		w.healed = make(chan struct{})
	}
}

// Heal ends a drop: held outgoing bytes are sent, held incoming bytes are delivered, and sockets
// closed during the drop are closed for real, as TCP would once the path is back.
func (w *Wire) Heal() {
	w.mu.Lock()
	if !w.dropped {
		w.mu.Unlock()
		return
	}
	w.dropped = false
	close(w.healed)
	held := w.held
	w.held = nil
	conns := w.snapshotLocked()
	w.mu.Unlock()
	for _, c := range held {
		_ = c.Close()
	}
	for _, c := range conns {
		c.flush()
	}
}

// Reset aborts every open connection with a TCP RST (SO_LINGER 0, then close) and returns how
// many it aborted. The device may connect again at once.
func (w *Wire) Reset() int {
	w.mu.Lock()
	conns := w.snapshotLocked()
	held := w.held
	w.held = nil
	w.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	for _, c := range held {
		rst(c)
	}
	n := len(conns) + len(held)
	w.resets.Add(uint64(n))
	return n
}

// PowerOff closes every connection without a DISCONNECT (during a drop the close stays on the
// device side until the network heals) and refuses new ones until PowerOn.
func (w *Wire) PowerOff() {
	w.mu.Lock()
	w.off = true
	conns := w.snapshotLocked()
	w.mu.Unlock()
	for _, c := range conns {
		_ = c.closeWith(errShutdown)
	}
}

// PowerOn allows connections again.
func (w *Wire) PowerOn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.off = false
}

// Close releases every socket, held ones included, heals the wire so that nothing waits on it
// any more, and refuses new connections until PowerOn.
func (w *Wire) Close() {
	w.mu.Lock()
	w.off = true // a dial still waiting for the network must not connect a stopped device
	conns := w.snapshotLocked()
	held := w.held
	w.held = nil
	if w.dropped {
		w.dropped = false
		close(w.healed)
	}
	w.mu.Unlock()
	for _, c := range conns {
		_ = c.closeWith(errShutdown)
	}
	for _, c := range held {
		_ = c.Close()
	}
}

func (w *Wire) snapshotLocked() []*Conn {
	out := make([]*Conn, 0, len(w.conns))
	for c := range w.conns {
		out = append(out, c)
	}
	return out
}

// Dial opens a TCP connection to addr through the wire. While the network is dropped it waits
// for the network to heal, at most timeout, and then fails with ErrNetworkDropped.
func (w *Wire) Dial(addr string, timeout time.Duration) (*Conn, error) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	w.mu.Lock()
	off, healed := w.off, w.healed
	w.mu.Unlock()
	if off {
		return nil, fmt.Errorf("dial %s: %w", addr, ErrPowerOff)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-healed:
	case <-deadline.C:
		return nil, fmt.Errorf("dial %s: %w", addr, ErrNetworkDropped)
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return w.Wrap(c)
}

// Wrap puts an open connection behind the wire. It fails, closing c, when the power is off.
func (w *Wire) Wrap(c net.Conn) (*Conn, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off {
		_ = c.Close()
		return nil, ErrPowerOff
	}
	fc := &Conn{inner: c, wire: w, closed: make(chan struct{})}
	w.conns[fc] = struct{}{}
	return fc, nil
}

// waitUsable blocks while the network is dropped and reports whether c is still open.
func (w *Wire) waitUsable(c *Conn) bool {
	w.mu.Lock()
	dropped, healed := w.dropped, w.healed
	w.mu.Unlock()
	if dropped {
		select {
		case <-healed:
		case <-c.closed:
			return false
		}
	}
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

// Conn is one connection behind a Wire. It implements net.Conn and parses the outgoing MQTT
// framing, so that the firmware-bug faults act on whole control packets whatever the writes'
// boundaries.
type Conn struct {
	inner     net.Conn
	wire      *Wire
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  atomic.Pointer[error] // what reads and writes return once closed

	wmu     sync.Mutex // protects pending, hdr, remaining, skipping and raw: the outgoing side
	pending []byte     // bytes written during a drop, sent when the network heals
	hdr     []byte     // fixed header bytes read so far of the next outgoing packet
	// remaining is the number of body bytes of the current outgoing packet still to pass.
	remaining int
	skipping  bool // the current outgoing packet is swallowed
	raw       bool // the outgoing stream stopped parsing as MQTT: pass it through untouched
}

var _ net.Conn = (*Conn)(nil)

// Read reads from the network; during a drop, bytes received are delivered only once the
// network heals.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.inner.Read(p)
	if !c.wire.waitUsable(c) {
		return 0, c.errClosed()
	}
	return n, err
}

// Write sends p after applying the firmware faults; during a drop the bytes are held.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return 0, c.errClosed()
	default:
	}
	out := c.frame(p)
	for {
		c.wire.mu.Lock()
		dropped, healed := c.wire.dropped, c.wire.healed
		c.wire.mu.Unlock()
		if !dropped {
			break
		}
		if len(c.pending)+len(out) <= maxHeld {
			c.pending = append(c.pending, out...)
			return len(p), nil
		}
		select {
		case <-healed:
		case <-c.closed:
			return 0, c.errClosed()
		}
	}
	if len(c.pending) > 0 {
		if _, err := c.inner.Write(c.pending); err != nil {
			return 0, c.mapErr(err)
		}
		c.pending = nil
	}
	if len(out) == 0 {
		return len(p), nil
	}
	if _, err := c.inner.Write(out); err != nil {
		return 0, c.mapErr(err)
	}
	return len(p), nil
}

// frame walks the outgoing MQTT framing in p and returns the bytes to send: PINGREQ packets are
// swallowed under NoPingreq and PUBLISH packets lose their DUP flag under NoDup.
func (c *Conn) frame(p []byte) []byte {
	if c.raw {
		return p
	}
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		if c.remaining > 0 {
			n := min(c.remaining, len(p))
			if !c.skipping {
				out = append(out, p[:n]...)
			}
			c.remaining -= n
			p = p[n:]
			continue
		}
		c.hdr = append(c.hdr, p[0])
		p = p[1:]
		h, _, err := packet.ReadFixedHeader(c.hdr)
		if errors.Is(err, packet.ErrIncomplete) {
			continue
		}
		if err != nil {
			// Not MQTT any more (or never was): stop interpreting rather than corrupt it further.
			c.raw = true
			out = append(out, c.hdr...)
			c.hdr = c.hdr[:0]
			return append(out, p...)
		}
		c.remaining = h.Remaining
		c.skipping = false
		switch {
		case h.Type == packet.TypePingreq && c.wire.noPingreq.Load():
			c.skipping = true
			c.wire.pingreqsDropped.Add(1)
		case h.Type == packet.TypePublish && c.wire.noDup.Load() && c.hdr[0]&0x08 != 0:
			// DUP is bit 3 of the first byte of a PUBLISH (3.1.1 §3.3.1.1).
			c.hdr[0] &^= 0x08
			c.wire.dupsCleared.Add(1)
		}
		if !c.skipping {
			out = append(out, c.hdr...)
		}
		c.hdr = c.hdr[:0]
	}
	return out
}

// flush sends the bytes held during a drop.
func (c *Conn) flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.pending) == 0 {
		return
	}
	select {
	case <-c.closed:
	default:
		_, _ = c.inner.Write(c.pending)
	}
	c.pending = nil
}

// Close closes the connection. During a drop nothing reaches the wire: the socket is kept open
// (its pending reads are released) and closed when the network heals.
func (c *Conn) Close() error { return c.closeWith(nil) }

// closeWith closes the connection; reads and writes then fail with reason (net.ErrClosed when nil).
func (c *Conn) closeWith(reason error) error {
	if reason != nil {
		c.closeErr.CompareAndSwap(nil, &reason)
	}
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		w := c.wire
		w.mu.Lock()
		delete(w.conns, c)
		if w.dropped {
			w.held = append(w.held, c.inner)
			w.mu.Unlock()
			// Release a Read blocked in the socket without sending anything.
			_ = c.inner.SetDeadline(time.Now())
			return
		}
		w.mu.Unlock()
		err = c.inner.Close()
	})
	return err
}

// errClosed is the error of an operation on a closed connection.
func (c *Conn) errClosed() error {
	if e := c.closeErr.Load(); e != nil {
		return *e
	}
	return net.ErrClosed
}

// mapErr replaces the socket's error by the fault's when a fault closed the socket.
func (c *Conn) mapErr(err error) error {
	select {
	case <-c.closed:
		return c.errClosed()
	default:
		return err
	}
}

// abort resets the connection with RST.
func (c *Conn) abort() {
	e := ErrReset
	c.closeErr.CompareAndSwap(nil, &e)
	c.closeOnce.Do(func() {
		close(c.closed)
		c.wire.mu.Lock()
		delete(c.wire.conns, c)
		c.wire.mu.Unlock()
		rst(c.inner)
	})
}

func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.inner.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the socket.
func (c *Conn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the socket.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the socket.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }
