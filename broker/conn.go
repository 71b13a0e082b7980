package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/packet"
)

const (
	// smallRead is the read buffer every connection owns. An idle connection waits in Read on it
	// alone; a pooled buffer is borrowed only while data flows or a packet is incomplete.
	smallRead = 128
	// pooledBuf is the size of pooled read and write buffers.
	pooledBuf = 16 << 10
	// maxPooled is the largest buffer returned to the pools; bigger ones are left to the GC.
	maxPooled = 256 << 10
)

// bufPool holds pooled buffers, each in a box (*[]byte) so that the pool stores a pointer; the
// empty boxes wait in boxPool, so that returning a buffer allocates nothing either.
var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, pooledBuf); return &b }}
	boxPool = sync.Pool{New: func() any { return new([]byte) }}
)

func getBuf(size int) []byte {
	if size <= pooledBuf {
		box := bufPool.Get().(*[]byte)
		b := (*box)[:pooledBuf]
		*box = nil
		boxPool.Put(box)
		return b
	}
	return make([]byte, size)
}

func putBuf(b []byte) {
	if cap(b) < pooledBuf || cap(b) > maxPooled {
		return
	}
	box := boxPool.Get().(*[]byte)
	*box = b[:cap(b)]
	bufPool.Put(box)
}

// conn is one client network connection. Its read loop owns every field above outMu; the write
// path (fields under outMu) is shared by every goroutine that delivers to the client.
type conn struct {
	b      *Broker
	nc     net.Conn
	lis    Listener
	remote string
	small  [smallRead]byte
	done   chan struct{} // closed when the read loop has cleaned up (session detached)
	wake   chan bool     // a burst hands control back to the read loop: true = go on
	// connectBy is when a connection without CONNECT is closed (read-loop owned).
	connectBy time.Time
	// rdl is the read deadline the read loop last set on the socket (setDeadline).
	rdl    time.Time
	kicked atomic.Bool // set by kick: the read loop handles what had arrived, then ends (burst)

	// Read-loop state, set while handling CONNECT and read by the session while attached (the
	// session's mutex orders the accesses).
	connected   bool
	sessVersion packet.Version // the version negotiated by CONNECT
	clientID    string
	identity    auth.Identity
	sess        *session
	faults      faultBits
	keepAlive   time.Duration // 1.5 × the keepalive in force; 0 = no timeout
	maxOut      int           // the client's Maximum Packet Size; 0 = none
	recvMax     int           // the client's Receive Maximum
	problemInfo bool          // 5.0 Request Problem Information
	aliases     map[uint16]string
	will        *willMsg // the will of this connection; nil once removed (MQTT-3.1.2-10)

	// fl: connections this read goroutine queued packets for, written before it waits (flush.go).
	fl flushList

	// outMu protects the write path: out, writing, closing, broken, q0, version and deferred.
	outMu   sync.Mutex
	out     []byte         // encoded packets waiting for the writer
	writing bool           // a writer goroutine is running
	closing bool           // close the socket once out is flushed; accept no more packets
	broken  bool           // a write failed; drop everything
	q0      int            // QoS 0 PUBLISH packets in out (bounded by Config.MaxQueued)
	version packet.Version // encoding version (0 before CONNECT: 3.1.1 encoding)
	// deferred: on a read goroutine's flushList, which writes out (flush.go).
	deferred bool

	// kickCode and kickTimer (under outMu): the kick's reason code, and the timer that ends the
	// connection should its read side not do so first (kick).
	kickCode  packet.ReasonCode
	kickTimer *time.Timer

	closeOnce sync.Once

	pk parking // idle without a goroutine (park_linux.go)
}

func newConn(b *Broker, nc net.Conn, l Listener) *conn {
	c := &conn{b: b, nc: nc, lis: l, remote: nc.RemoteAddr().String(), done: make(chan struct{}), wake: make(chan bool, 1), recvMax: 65535, problemInfo: true}
	c.initRaw()
	return c
}

// readLoop is the connection's long-lived goroutine. While the client is idle it waits in Read
// on the connection's small buffer with a shallow stack; each time data arrives it hands the
// bytes to a burst goroutine (see burst) and waits for it, so the deep call chains of packet
// handling never grow the idle goroutine's stack. An idle connection therefore costs one small
// goroutine stack, the conn struct and its 128-byte buffer.
//
// Once connected, a client on plain TCP is served by events instead: no goroutine at all while it
// is idle (serveEvents, park_linux.go).
func (c *conn) readLoop() {
	c.connectBy = time.Now().Add(c.b.cfg.ConnectTimeout)
	for !c.kicked.Load() {
		if c.pollable() {
			c.serveEvents()
			return
		}
		c.setReadDeadline()
		m, err := c.nc.Read(c.small[:])
		c.b.goFunc(func() { c.wake <- c.burst(m, err) })
		if !<-c.wake {
			c.cleanup() // burst ended the connection (having handled, if kicked, what was sent before)
			return
		}
	}
	// Kicked between two reads: what the client had sent is handled first.
	c.burst(0, nil)
	c.cleanup()
}

// setReadDeadline sets the deadline of the next read: the CONNECT timeout before CONNECT, then
// 1.5 × the keepalive — or none at all with Keep Alive 0 (§3.1.2.10: it turns the mechanism off),
// which also lifts the CONNECT timeout.
func (c *conn) setReadDeadline() {
	switch {
	case !c.connected:
		c.setDeadline(c.connectBy)
	case c.keepAlive > 0 && !c.faults.has(FaultNoKeepaliveTimeout):
		c.setDeadline(time.Now().Add(c.keepAlive))
	default:
		c.setDeadline(time.Time{})
	}
}

// setDeadline sets the socket's read deadline unless it is set to t already: a deadline change
// is a timer update in the runtime. Only the read loop calls it (kick sets one of its own, and
// the read loop stops after it).
func (c *conn) setDeadline(t time.Time) {
	if t.Equal(c.rdl) {
		return
	}
	c.rdl = t
	_ = c.nc.SetReadDeadline(t)
}

// burst handles the m bytes the read loop got in c.small (and its read error), then keeps reading
// while data flows: it borrows a pooled buffer for partial packets and for reads that fill the
// buffer, decodes every complete packet per read system call and handles each in order. It
// returns true when the connection went idle (nothing partial left, the last read did not fill
// the buffer) and false when the connection must end.
//
// Once the connection is kicked (taken over, shut down), burst goes on with what the client had
// sent before the kick: the bytes it holds, then, on plain TCP, what the socket holds, read
// without waiting whatever the read deadline the kick set, up to drainLimit bytes. An
// acknowledgement that reached the broker before a takeover therefore counts, as it would have
// had the read side been quicker: a device that acknowledges a message and at once closes its
// socket and reconnects is not sent that message again. It then returns false.
func (c *conn) burst(m int, rerr error) bool {
	b := c.b
	buf, n := c.small[:], m
	pooled, need := false, 0
	sc := scratchPool.Get().(*readScratch)
	defer func() {
		// Whatever this read queued goes out before the goroutine waits or the connection ends.
		c.fl.flush()
		if pooled {
			putBuf(buf)
		}
		scratchPool.Put(sc)
	}()
	maxIn := int(b.cfg.MaxPacketSize)
	drained := 0 // bytes read since the kick
	for {
		if m > 0 {
			b.stats.BytesReceived.Add(uint64(m))
		}
		full := n == len(buf) // the read filled the buffer: more is probably waiting
		off := 0
		need = 0
		for off < n {
			p, used, err := c.decode(sc, buf[off:n], c.readVersion(), maxIn)
			if errors.Is(err, packet.ErrIncomplete) {
				if h, hl, herr := packet.ReadFixedHeader(buf[off:n]); herr == nil {
					need = hl + h.Remaining
				}
				break
			}
			if err != nil {
				c.decodeError(p, err)
				return false
			}
			off += used
			if !c.handle(p) {
				return false
			}
		}
		if off > 0 {
			n = copy(buf, buf[off:n])
		}
		// A connection kicked before CONNECT has no session to settle: it ends as it is.
		kicked := c.kicked.Load() && c.connected
		if rerr != nil {
			c.readError(rerr)
			// The kick ends a blocked read with the deadline it sets; only errDrained ends a kicked
			// connection's reads.
			if !kicked || errors.Is(rerr, errDrained) {
				return false
			}
		} else if n == 0 && !full && !kicked {
			return true
		}
		if !pooled || need > len(buf) || n == len(buf) {
			nb := getBuf(max(need, pooledBuf, 2*n))
			copy(nb, buf[:n])
			if pooled {
				putBuf(buf)
			}
			buf, pooled = nb, true
		}
		c.fl.flush()
		if kicked {
			var ok bool
			if m, ok = c.readAvailable(buf[n:]); !ok || drained >= drainLimit {
				m, rerr = 0, errDrained
			}
			drained += m
		} else {
			c.setReadDeadline()
			m, rerr = c.nc.Read(buf[n:])
		}
		n += m
	}
}

// drainLimit bounds what a kicked connection still reads from its socket (burst).
const drainLimit = 64 << 10

// errDrained ends the reads of a kicked connection: its socket holds nothing more, it is not
// plain TCP, or drainLimit is reached.
var errDrained = errors.New("kicked: nothing more to handle")

func (c *conn) readVersion() packet.Version {
	if !c.connected {
		return 0
	}
	return c.identityVersion()
}

// identityVersion is the version negotiated by CONNECT (read-loop owned copy).
func (c *conn) identityVersion() packet.Version { return c.sessVersion }

// setVersion sets the version used to encode packets to this client.
func (c *conn) setVersion(v packet.Version) {
	c.outMu.Lock()
	c.version = v
	c.outMu.Unlock()
}

func (c *conn) readError(err error) {
	var ne net.Error
	switch {
	case c.kicked.Load():
		// Taken over or shut down: kick already sent what had to be sent.
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		if !c.connected {
			c.b.log.Info("connection closed: no CONNECT in time", "remote", c.remote, "connect_timeout", c.b.cfg.ConnectTimeout)
			return
		}
		c.b.stats.KeepaliveTimeouts.Add(1)
		rule := "MQTT-3.1.2-24"
		if c.sessVersion == packet.V5 {
			rule = "MQTT-3.1.2-22"
		}
		c.b.log.Info("keepalive expired; closing connection", "client", c.clientID, "remote", c.remote, "rule", rule, "timeout", c.keepAlive)
		c.finishWith(c.disconnectPacket(packet.KeepAliveTimeout, "keep alive timeout"))
	default:
		c.b.log.Debug("connection lost", "client", c.clientID, "remote", c.remote, "err", err)
	}
}

// decodeError handles a packet that could not be decoded: CONNACK with a refusal for a bad
// CONNECT, DISCONNECT with the reason code (5.0) or a plain close (3.x) afterwards.
func (c *conn) decodeError(p packet.Packet, err error) {
	var pe *packet.Error
	code, rule := packet.MalformedPacket, ""
	if errors.As(err, &pe) {
		code, rule = pe.Code, pe.Rule
	}
	if !c.connected {
		c.b.stats.ProtocolErrors.Add(1)
		c.b.log.Warn("bad CONNECT; closing connection", "remote", c.remote, "rule", rule, "err", err)
		if cp, ok := p.(*packet.Connect); ok && code == packet.UnsupportedProtocolVersion {
			// MQTT-3.1.2-2 (3.1.1) / MQTT-3.1.2-2 (5.0): answer an unknown level with CONNACK
			// 0x01 / 0x84 then close. A level we do not know gets the 3.1.1 form.
			v := cp.Version
			if v != packet.V5 {
				v = packet.V311
			}
			c.setVersion(v)
			c.writeControl(&packet.Connack{Code: packet.ConnackCode(v, packet.UnsupportedProtocolVersion)}, v)
		} else if cp, ok := p.(*packet.Connect); ok && cp.Version == packet.V5 {
			c.setVersion(packet.V5)
			c.writeControl(&packet.Connack{Code: code}, packet.V5)
		}
		c.finish(nil)
		return
	}
	c.violation(code, rule, err.Error())
}

// violation disconnects the client for breaking a protocol rule: 5.0 clients get DISCONNECT with
// the reason code first (MQTT-4.13.1-1); 3.x clients are closed (MQTT-4.8.0-1).
func (c *conn) violation(code packet.ReasonCode, rule, reason string) bool {
	c.b.stats.ProtocolErrors.Add(1)
	c.b.log.Warn("protocol violation; closing connection", "client", c.clientID, "remote", c.remote,
		"rule", rule, "code", code.String(), "reason", reason)
	c.finishWith(c.disconnectPacket(code, reason))
	return false
}

// disconnectPacket returns the DISCONNECT a 5.0 client gets for code, or nil for 3.x.
func (c *conn) disconnectPacket(code packet.ReasonCode, reason string) *packet.Disconnect {
	if !c.connected || c.sessVersion != packet.V5 {
		return nil
	}
	d := &packet.Disconnect{Code: code}
	if reason != "" {
		d.Props.ReasonString = reason
		if c.maxOut > 0 && d.Size(packet.V5) > c.maxOut {
			// MQTT-3.14.2-3: no reason string that would exceed the client's Maximum Packet Size.
			d.Props.ReasonString = ""
		}
	}
	return d
}

// kickGrace is how long a kicked connection's read side has to drain what had arrived before the
// kick; then the connection is closed whatever the read side is doing.
const kickGrace = 2 * time.Second

// kick disconnects the client from outside its read loop (takeover, shutdown). The read side
// handles what the client had sent before the kick (burst) and then ends the connection;
// 5.0 clients get DISCONNECT with code (finishKicked).
func (c *conn) kick(code packet.ReasonCode) {
	c.outMu.Lock()
	if c.kickTimer != nil {
		c.outMu.Unlock()
		return
	}
	c.kickCode = code
	c.kickTimer = time.AfterFunc(kickGrace, c.finishKicked)
	c.outMu.Unlock()
	c.kicked.Store(true)
	// Wake a read loop blocked on an idle client, or a parked one.
	_ = c.nc.SetReadDeadline(time.Now())
	c.wakeParked()
}

// finishKicked ends a kicked connection: 5.0 clients get DISCONNECT with the kick's reason code.
// A second call does nothing (finish).
func (c *conn) finishKicked() {
	c.outMu.Lock()
	v, code := c.version, c.kickCode
	c.outMu.Unlock()
	if v == packet.V5 {
		c.finishWith(&packet.Disconnect{Code: code})
	} else {
		c.finish(nil)
	}
}

// cleanup runs when the read loop ends: the socket is flushed and closed, the session detached
// and the will handled.
func (c *conn) cleanup() {
	c.outMu.Lock()
	kt := c.kickTimer
	c.outMu.Unlock()
	if kt != nil {
		kt.Stop()
		c.finishKicked()
	}
	c.finish(nil)
	b := c.b
	if c.connected {
		b.detach(c)
	}
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	b.stats.Sockets.Add(-1)
	close(c.done)
}

// finishWith is finish with a DISCONNECT that may be nil (3.x clients get none).
func (c *conn) finishWith(d *packet.Disconnect) {
	if d == nil {
		c.finish(nil)
		return
	}
	c.finish(d)
}

// finish queues last (if any) as the final packet and has the writer close the socket after it.
func (c *conn) finish(last packet.Packet) {
	c.outMu.Lock()
	if c.closing {
		c.outMu.Unlock()
		return
	}
	if last != nil && !c.broken {
		start := len(c.out)
		if c.out == nil {
			c.out = getBuf(0)[:0]
		}
		out, err := last.AppendTo(c.out, c.version)
		if err == nil {
			c.out = out
			c.traceOut(out[start:])
		}
	}
	c.closing = true
	c.startWriter()
	c.outMu.Unlock()
}

func (c *conn) closeSocket() {
	c.closeOnce.Do(func() { _ = c.nc.Close() })
	// A parked connection has no read to fail: wake it so that it cleans up.
	c.wakeParked()
}

// beginWrite locks the write path for appending one packet; it returns false (and unlocks) when
// the connection is closing or, for a QoS 0 PUBLISH, when the client's queue is full.
func (c *conn) beginWrite(qos0 bool) bool {
	c.outMu.Lock()
	if c.closing || c.broken {
		c.outMu.Unlock()
		if qos0 {
			// The connection is going away: the QoS 0 message goes nowhere (QoS 1/2 stay in flight
			// in the session and are re-sent on the next connection).
			c.b.stats.DroppedOffline.Add(1)
		}
		return false
	}
	if qos0 && c.q0 >= c.b.cfg.MaxQueued {
		c.outMu.Unlock()
		c.b.stats.DroppedQueueFull.Add(1)
		return false
	}
	if c.out == nil {
		c.out = getBuf(0)[:0]
	}
	return true
}

// endWrite records the appended packet (which starts at start in c.out), starts the writer if
// needed and unlocks the write path.
func (c *conn) endWrite(start int, qos0 bool) {
	if qos0 {
		c.q0++
	}
	c.traceOut(c.out[start:])
	c.startWriter()
	c.outMu.Unlock()
}

// startWriter starts a writer goroutine unless one runs. Called with outMu held.
func (c *conn) startWriter() {
	if c.writing {
		return
	}
	c.writing = true
	c.b.goFunc(c.writeLoop)
}

// writeLoop writes what accumulated in out, many packets per system call, and exits when out is
// empty, so that an idle connection has no writer goroutine and no write buffer.
func (c *conn) writeLoop() {
	for {
		c.outMu.Lock()
		if len(c.out) == 0 || c.broken {
			if c.out != nil {
				putBuf(c.out)
				c.out = nil
			}
			c.writing = false
			closing := c.closing || c.broken
			c.outMu.Unlock()
			if closing {
				c.closeSocket()
			}
			return
		}
		buf := c.out
		c.out, c.q0 = nil, 0
		c.outMu.Unlock()

		_ = c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.WriteTimeout))
		n, err := c.nc.Write(buf)
		c.b.stats.BytesSent.Add(uint64(n))
		putBuf(buf)
		if err != nil {
			c.outMu.Lock()
			c.broken = true
			c.outMu.Unlock()
			c.b.log.Info("write failed; closing connection", "client", c.clientID, "remote", c.remote, "err", err)
		}
	}
}

// writeControl appends a packet outside the hot path (CONNACK, SUBACK, DISCONNECT...), encoded
// for version v.
func (c *conn) writeControl(p packet.Packet, v packet.Version) bool {
	return c.writeControlBy(p, v, nil)
}

// writeControlBy is writeControl for a packet queued by the read goroutine owning fl.
func (c *conn) writeControlBy(p packet.Packet, v packet.Version, fl *flushList) bool {
	if !c.beginWrite(false) {
		return false
	}
	start := len(c.out)
	out, err := p.AppendTo(c.out, v)
	if err != nil {
		c.outMu.Unlock()
		c.b.log.Error("encode failed", "packet", p.Type().String(), "err", err)
		return false
	}
	c.out = out
	c.endWriteBy(start, false, fl)
	return true
}

// send appends a control packet encoded for the connection's version.
func (c *conn) send(p packet.Packet) bool { return c.writeControl(p, c.sessVersion) }

// traceOut hands the tracer what was just encoded, decoded back from the bytes written, so the
// trace shows exactly what went on the wire. Called with outMu held.
func (c *conn) traceOut(b []byte) {
	tr := c.b.cfg.Tracer
	if tr == nil || len(b) == 0 {
		return
	}
	v := c.version
	for len(b) > 0 {
		p, n, err := packet.Decode(b, v, 0)
		if err != nil || n == 0 {
			return
		}
		tr.Trace(TraceEvent{Time: time.Now(), ClientID: c.clientID, Remote: c.remote, Listener: c.lis.Name, Dir: Out, Packet: p, Version: v})
		b = b[n:]
	}
}

func (c *conn) traceIn(p packet.Packet) {
	if tr := c.b.cfg.Tracer; tr != nil {
		id := c.clientID
		if cp, ok := p.(*packet.Connect); ok && id == "" {
			// The decoded client id aliases the read buffer, which the next read overwrites; the
			// Tracer contract lets tracers keep every field but Packet.
			id = strings.Clone(cp.ClientID)
		}
		tr.Trace(TraceEvent{Time: time.Now(), ClientID: id, Remote: c.remote, Listener: c.lis.Name, Dir: In, Packet: p, Version: c.readVersion()})
	}
}

// peerCN returns the Common Name of a verified client certificate, if any.
func (c *conn) peerCN() string {
	var st *tls.ConnectionState
	switch nc := c.nc.(type) {
	case *tls.Conn:
		s := nc.ConnectionState()
		st = &s
	case *wsConn:
		st = nc.tls
	}
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}
