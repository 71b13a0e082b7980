package link

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// pingreq is the whole PINGREQ packet (3.1.1 §3.12).
var pingreq = []byte{byte(packet.TypePingreq) << 4, 0}

// Conn is one connection behind a Link. It implements net.Conn: what the client writes is sent
// packet by packet (a packet split over several writes is sent once complete), with the CONNECT's
// Keep Alive and resent QoS 2 PUBLISH packets rewritten; what it reads is passed on unchanged and
// watched for PINGRESP and PUBCOMP.
type Conn struct {
	inner  net.Conn
	link   *Link
	closed chan struct{}
	once   sync.Once
	lost   atomic.Pointer[error] // why the link gave the connection up; nil while it has not

	wmu     sync.Mutex // protects partial, raw and ended: the outgoing stream, written by one writer at a time
	partial []byte     // the start of an outgoing packet not yet complete
	raw     bool       // the outgoing stream stopped parsing as MQTT: passed through untouched
	ended   bool       // the client sent DISCONNECT: no PINGREQ may follow (MQTT-3.14.4-2)

	tmu       sync.Mutex  // protects timer, lastWrite and pingSince: the keepalive clock
	timer     *time.Timer // the keepalive: next PINGREQ or ping timeout
	lastWrite time.Time   // when bytes last went to the network
	pingSince time.Time   // when the oldest unanswered PINGREQ went out; zero when none is

	// The incoming framing, walked by the one reader (the client's read loop).
	rhdr    []byte      // fixed header bytes read so far
	rremain int         // body bytes of the current incoming packet still to come
	rtype   packet.Type // type of the current incoming packet
	rid     []byte      // the first body bytes of a PUBCOMP: its packet identifier
	rraw    bool        // the incoming stream stopped parsing as MQTT
}

var _ net.Conn = (*Conn)(nil)

// Write sends the complete packets of p (and of what earlier writes left incomplete).
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.lostErr(); err != nil {
		return 0, err
	}
	if c.raw {
		return c.send(p, len(p))
	}
	buf := p
	if len(c.partial) > 0 {
		buf = append(c.partial, p...)
	}
	out, rest := c.rewrite(buf)
	if len(rest) > 0 {
		c.partial = append([]byte(nil), rest...)
	} else {
		c.partial = nil
	}
	return c.send(out, len(p))
}

// send writes out to the network and reports n bytes taken from the caller.
func (c *Conn) send(out []byte, n int) (int, error) {
	if len(out) == 0 {
		return n, nil
	}
	if _, err := c.inner.Write(out); err != nil {
		return 0, c.mapErr(err)
	}
	c.tmu.Lock()
	c.lastWrite = time.Now()
	c.tmu.Unlock()
	return n, nil
}

// rewrite walks the complete packets at the start of b and returns the bytes to send for them and
// the incomplete rest. out aliases b unless a packet had to change.
func (c *Conn) rewrite(b []byte) (out, rest []byte) {
	var changed []byte // the output once a packet differs from its input
	done := 0          // bytes of b walked into out
	for done < len(b) {
		h, n, err := packet.ReadFixedHeader(b[done:])
		if errors.Is(err, packet.ErrIncomplete) || (err == nil && len(b)-done < n+h.Remaining) {
			break
		}
		if err != nil {
			// Not MQTT (or never was): stop interpreting rather than corrupt it.
			c.raw = true
			if changed != nil {
				return append(changed, b[done:]...), nil
			}
			return b, nil
		}
		pkt := b[done : done+n+h.Remaining]
		if h.Type == packet.TypeDisconnect {
			c.ended = true
		}
		repl := c.link.outgoing(h, pkt, n)
		if repl != nil && changed == nil {
			changed = append(make([]byte, 0, len(b)), b[:done]...)
		}
		switch {
		case repl != nil:
			changed = append(changed, repl...)
		case changed != nil:
			changed = append(changed, pkt...)
		}
		done += len(pkt)
	}
	if changed != nil {
		return changed, b[done:]
	}
	return b[:done], b[done:]
}

// outgoing applies the link's rules to one complete outgoing packet (fixed header of n bytes)
// and returns its replacement, or nil to send it as it is.
func (l *Link) outgoing(h packet.FixedHeader, pkt []byte, n int) []byte {
	body := pkt[n:]
	switch h.Type {
	case packet.TypeConnect:
		// Protocol name (a two-byte length and the name), level, flags, then Keep Alive: the same
		// place in 3.1 (MQIsdp), 3.1.1 and 5.0.
		if len(body) < 2 {
			return nil
		}
		at := 2 + (int(body[0])<<8 | int(body[1])) + 2
		if len(body) < at+2 {
			return nil
		}
		out := append([]byte(nil), pkt...)
		out[n+at], out[n+at+1] = byte(l.announced>>8), byte(l.announced)
		return out
	case packet.TypePublish:
		qos := h.Flags >> 1 & 3
		if qos != 2 || len(body) < 2 {
			return nil
		}
		at := 2 + (int(body[0])<<8 | int(body[1]))
		if len(body) < at+2 {
			return nil
		}
		id := uint16(body[at])<<8 | uint16(body[at+1])
		if h.Flags&0x08 == 0 {
			// A first attempt: the identifier starts a new exchange.
			l.release(id, false)
			return nil
		}
		if !l.Released(id) {
			return nil // a resend before PUBREC: the PUBLISH is what must go again
		}
		// MQTT-4.3.3-1: once PUBREL is sent, the PUBLISH must not be sent again; MQTT-4.4.0-1:
		// on reconnection the unacknowledged PUBREL is what is resent.
		l.pubrelsResent.Add(1)
		return []byte{byte(packet.TypePubrel)<<4 | 0x02, 2, byte(id >> 8), byte(id)}
	case packet.TypePubrel:
		if len(body) >= 2 {
			l.release(uint16(body[0])<<8|uint16(body[1]), true)
		}
	}
	return nil
}

// Read reads from the network and watches the incoming packets.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.inner.Read(p)
	if n > 0 && !c.rraw {
		c.incoming(p[:n])
	}
	if err != nil {
		if l := c.lostErr(); l != nil {
			return n, l
		}
	}
	return n, err
}

// incoming walks the incoming framing in p: a PINGRESP answers the keepalive, a PUBCOMP ends the
// exchange of its packet identifier.
func (c *Conn) incoming(p []byte) {
	for len(p) > 0 {
		if c.rremain > 0 {
			k := min(c.rremain, len(p))
			if c.rtype == packet.TypePubcomp && len(c.rid) < 2 {
				c.rid = append(c.rid, p[:min(2-len(c.rid), k)]...)
				if len(c.rid) == 2 {
					c.link.release(uint16(c.rid[0])<<8|uint16(c.rid[1]), false)
				}
			}
			c.rremain -= k
			p = p[k:]
			continue
		}
		c.rhdr = append(c.rhdr, p[0])
		p = p[1:]
		h, _, err := packet.ReadFixedHeader(c.rhdr)
		if errors.Is(err, packet.ErrIncomplete) {
			continue
		}
		c.rhdr = c.rhdr[:0]
		if err != nil {
			c.rraw = true
			return
		}
		c.rtype, c.rremain, c.rid = h.Type, h.Remaining, c.rid[:0]
		if h.Type == packet.TypePingresp {
			c.tmu.Lock()
			c.pingSince = time.Time{}
			c.tmu.Unlock()
		}
	}
}

// tick is the keepalive timer: it gives the connection up when a PINGREQ went unanswered for the
// ping timeout, sends PINGREQ when nothing went out for the idle time, and sets itself again.
func (c *Conn) tick() {
	select {
	case <-c.closed:
		return
	default:
	}
	l := c.link
	c.tmu.Lock()
	since := c.pingSince
	c.tmu.Unlock()
	if !since.IsZero() && time.Since(since) >= l.pingTimeout {
		l.keepaliveLosts.Add(1)
		c.fail(fmt.Errorf("%w within %s", ErrKeepalive, l.pingTimeout))
		return
	}
	// A write in progress is traffic: the keepalive looks again a little later rather than queue
	// behind it.
	wait := l.idle / 4
	if c.wmu.TryLock() {
		c.tmu.Lock()
		idle := time.Since(c.lastWrite)
		c.tmu.Unlock()
		wait = l.idle - idle
		switch {
		case c.ended:
			c.wmu.Unlock()
			return
		case idle < l.idle:
		case len(c.partial) > 0:
			wait = l.idle / 4 // the client is in the middle of a packet: a PINGREQ cannot go in between
		default:
			// The ping is outstanding before it is written: its PINGRESP may be read before
			// Write returns.
			c.tmu.Lock()
			if c.pingSince.IsZero() {
				c.pingSince = time.Now()
			}
			c.tmu.Unlock()
			if _, err := c.inner.Write(pingreq); err != nil {
				c.wmu.Unlock()
				c.fail(fmt.Errorf("keepalive: sending PINGREQ: %w", err))
				return
			}
			c.tmu.Lock()
			c.lastWrite = time.Now()
			c.tmu.Unlock()
			l.pingreqs.Add(1)
			wait = l.idle
		}
		c.wmu.Unlock()
	}
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if !c.pingSince.IsZero() {
		wait = min(wait, time.Until(c.pingSince.Add(l.pingTimeout)))
	}
	c.timer.Reset(max(wait, time.Millisecond))
}

// fail gives the connection up: reads and writes return reason from now on.
func (c *Conn) fail(reason error) {
	c.lost.CompareAndSwap(nil, &reason)
	_ = c.Close()
}

func (c *Conn) lostErr() error {
	if e := c.lost.Load(); e != nil {
		return *e
	}
	return nil
}

// mapErr replaces the network's error by the link's reason when the link closed the connection.
func (c *Conn) mapErr(err error) error {
	if l := c.lostErr(); l != nil {
		return l
	}
	return err
}

// Close stops the keepalive and closes the connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		c.tmu.Lock()
		c.timer.Stop()
		c.tmu.Unlock()
		err = c.inner.Close()
	})
	return err
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.inner.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.inner.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the connection.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }
