// Package link is a simulated device's end of its MQTT connection, between the client library
// (github.com/eclipse/paho.mqtt.golang) and the device's network path (fault.Wire). It reads the
// MQTT framing of both directions and keeps two client rules of MQTT 3.1.1 that the library
// breaks:
//
//   - Keep Alive (MQTT-3.1.2-23): the interval between two control packets the client sends must
//     not exceed the Keep Alive it announced. paho counts its Keep Alive in whole seconds and checks
//     it every Keep Alive/4 (every 5 s above 10 s), so its gaps reach 1.25 × Keep Alive, and it
//     cannot pace a 1 s Keep Alive any closer. The device therefore runs paho without a keepalive;
//     the link writes the configured Keep Alive into the CONNECT, sends PINGREQ once the outgoing
//     side has been idle for Idle, and gives the connection up when a PINGREQ stays unanswered
//     for PingTimeout.
//   - QoS 2 sender (MQTT-4.3.3-1, MQTT-4.4.0-1): once PUBREL is sent, only the PUBREL may be
//     resent. paho sends the PUBREL that answers a PUBREC without storing it, so its store still
//     holds the PUBLISH and, on the next connection, it resends that PUBLISH, which a receiver that
//     already released the packet identifier takes as a new message (a parking charge billed
//     twice). The link remembers, across the connections of one session, every packet identifier
//     whose PUBREL went out until its PUBCOMP comes back, and sends a resent (DUP) QoS 2 PUBLISH of
//     such an identifier as that PUBREL. paho's bookkeeping stays right: its resumed PUBLISH keeps
//     the identifier claimed, and the PUBCOMP completes it and removes it from the store.
//
// One Link lives as long as the client's session state (a device's power-on); each connection
// goes through a Conn from Wrap.
package link

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrKeepalive is what reads and writes return on a connection the link gave up because a
// PINGREQ went unanswered. It must not read as a local close ("use of closed network
// connection"), which paho takes for its own doing and does not report as a lost connection.
var ErrKeepalive = errors.New("keepalive: no PINGRESP from the server")

// Config sets the keepalive of a Link.
type Config struct {
	// Keepalive is what the device announces in CONNECT, in whole seconds (rounded down; at
	// least 1 s). The link keeps every gap between outgoing packets within it.
	Keepalive time.Duration
	// Idle is how long the outgoing side may stay idle before the link sends PINGREQ. Default:
	// Keepalive minus a margin for timer and scheduling delays of a quarter of the Keep Alive,
	// and at least 500 ms below a Keep Alive of up to 2 s.
	Idle time.Duration
	// PingTimeout is how long a PINGREQ may wait for its PINGRESP before the connection is given
	// up. Default: the Keep Alive, at most 10 s.
	PingTimeout time.Duration
}

// Link is the client's session state that the library does not keep, and the keepalive
// settings, for every connection of one session.
type Link struct {
	keepalive   time.Duration
	announced   uint16 // Keep Alive in the CONNECT, seconds
	idle        time.Duration
	pingTimeout time.Duration

	mu sync.Mutex // protects released
	// released holds the packet identifiers of QoS 2 messages whose PUBREL was sent and whose
	// PUBCOMP has not come back: their PUBLISH must never go out again.
	released map[uint16]struct{}

	pingreqs       atomic.Uint64
	pubrelsResent  atomic.Uint64
	keepaliveLosts atomic.Uint64
}

// Stats counts what a Link did.
type Stats struct {
	Pingreqs       uint64 `json:"pingreqs"`        // PINGREQ packets the link sent
	PubrelsResent  uint64 `json:"pubrels_resent"`  // resent QoS 2 PUBLISH packets sent as their PUBREL instead
	KeepaliveLosts uint64 `json:"keepalive_losts"` // connections given up for a missing PINGRESP
}

// Add adds o's counters to s.
func (s *Stats) Add(o Stats) {
	s.Pingreqs += o.Pingreqs
	s.PubrelsResent += o.PubrelsResent
	s.KeepaliveLosts += o.KeepaliveLosts
}

// New returns a Link with an empty session.
func New(cfg Config) *Link {
	secs := max(int64(cfg.Keepalive/time.Second), 1)
	secs = min(secs, 65535)
	k := time.Duration(secs) * time.Second
	idle := cfg.Idle
	if idle <= 0 {
		margin := k / 4
		if k <= 2*time.Second {
			margin = max(margin, min(k/2, 500*time.Millisecond))
		}
		idle = k - margin
	}
	idle = min(idle, k)
	timeout := cfg.PingTimeout
	if timeout <= 0 {
		timeout = min(k, 10*time.Second)
	}
	return &Link{keepalive: k, announced: uint16(secs), idle: idle, pingTimeout: timeout,
		released: make(map[uint16]struct{})}
}

// Keepalive returns the Keep Alive the link announces.
func (l *Link) Keepalive() time.Duration { return l.keepalive }

// Idle returns how long the outgoing side stays idle before a PINGREQ.
func (l *Link) Idle() time.Duration { return l.idle }

// Stats returns the counters.
func (l *Link) Stats() Stats {
	return Stats{Pingreqs: l.pingreqs.Load(), PubrelsResent: l.pubrelsResent.Load(), KeepaliveLosts: l.keepaliveLosts.Load()}
}

// Released reports whether the PUBREL of packet identifier id was sent and is not completed.
func (l *Link) Released(id uint16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.released[id]
	return ok
}

func (l *Link) release(id uint16, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.released[id] = struct{}{}
	} else {
		delete(l.released, id)
	}
}

// Wrap puts a connection behind the link and starts its keepalive. The Conn owns c.
func (l *Link) Wrap(c net.Conn) *Conn {
	lc := &Conn{inner: c, link: l, closed: make(chan struct{}), lastWrite: time.Now()}
	lc.tmu.Lock()
	lc.timer = time.AfterFunc(l.idle, lc.tick)
	lc.tmu.Unlock()
	return lc
}

// Reset forgets the session: the client starts a new one (a power-on, a new store).
func (l *Link) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.released)
}
