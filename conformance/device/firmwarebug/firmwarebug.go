// Package firmwarebug puts a firmware bug between a device and its broker: a Shim is a TCP relay,
// built on the packet codec, that rewrites what a correct device sends into what a device with a
// named bug would send — a device that does not subscribe again after losing its session, one
// that acks commands without their correlation id, one that publishes a QoS 2 message again as a
// new message after a reconnection. The device behind the shim plus the shim is the faulty
// device; device certification's self-proof runs it to show that each bug fails the requirement
// it breaks, and only that one.
//
// The bugs the simulator's own fault package already offers on the wire (no PINGREQ, no DUP on
// resend, a wrong will) are not repeated here.
package firmwarebug

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Bug names a firmware bug the shim plays.
type Bug string

// The bugs.
const (
	// NoResubscribe forwards SUBSCRIBE only on the device's first connection, as firmware that
	// subscribes once at boot and trusts the broker to keep its session.
	NoResubscribe Bug = "no_resubscribe"
	// AckWithoutCorr removes the corr field from every command ack ({base}/cmd/{name}/ack).
	AckWithoutCorr Bug = "ack_without_corr"
	// QoS2Republish publishes, after each reconnection, every QoS 2 message the broker already
	// received (it answered PUBREC) once more as a new message — a new packet identifier, DUP 0 —
	// as firmware that "retries" billing on reconnection does: the platform bills twice.
	QoS2Republish Bug = "qos2_republish"
)

// Bugs lists every bug.
var Bugs = []Bug{NoResubscribe, AckWithoutCorr, QoS2Republish}

// firstInjectedID is where the shim's own packet identifiers start, far above what client
// libraries hand out first.
const firstInjectedID = 0xF000

// Shim relays one device's connections to a broker, with a bug.
type Shim struct {
	bug      Bug
	upstream string
	ln       net.Listener
	wg       sync.WaitGroup // every goroutine the shim starts (see goFunc)
	quit     chan struct{}
	stop     sync.Once

	// mu protects conns, n, received, republished and nextID.
	mu          sync.Mutex
	conns       map[*relay]struct{}
	n           int                        // connections relayed so far
	received    map[uint16]*packet.Publish // QoS 2 messages the broker answered with PUBREC, by the device's identifier
	republished map[uint16]bool            // of those, the ones already published again
	injected    map[uint16]bool            // identifiers of the shim's own PUBLISHes in flight
	pending     map[*relay]map[uint16]*packet.Publish
	nextID      uint16
}

// Start listens on a free loopback port and relays each connection to upstream (host:port).
func Start(upstream string, bug Bug) (*Shim, error) {
	known := false
	for _, b := range Bugs {
		known = known || b == bug
	}
	if !known {
		return nil, fmt.Errorf("firmware bug %q is unknown", bug)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("firmware bug shim: %w", err)
	}
	s := &Shim{
		bug: bug, upstream: upstream, ln: ln, quit: make(chan struct{}),
		conns: map[*relay]struct{}{}, received: map[uint16]*packet.Publish{}, republished: map[uint16]bool{},
		injected: map[uint16]bool{}, pending: map[*relay]map[uint16]*packet.Publish{}, nextID: firstInjectedID,
	}
	s.goFunc(s.accept)
	return s, nil
}

func (s *Shim) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Addr returns the address devices connect to.
func (s *Shim) Addr() string { return s.ln.Addr().String() }

// URL returns the address as tcp://host:port.
func (s *Shim) URL() string { return "tcp://" + s.Addr() }

// Close stops relaying and waits for the shim's goroutines.
func (s *Shim) Close() error {
	var err error
	s.stop.Do(func() {
		close(s.quit)
		err = s.ln.Close()
		s.mu.Lock()
		conns := make([]*relay, 0, len(s.conns))
		for r := range s.conns {
			conns = append(conns, r)
		}
		s.mu.Unlock()
		for _, r := range conns {
			r.close()
		}
		s.wg.Wait()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Shim) accept() {
	for {
		dev, err := s.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", s.upstream, 5*time.Second)
		if err != nil {
			_ = dev.Close()
			continue
		}
		s.mu.Lock()
		select {
		case <-s.quit:
			s.mu.Unlock()
			_ = dev.Close()
			_ = up.Close()
			return
		default:
		}
		s.n++
		r := &relay{s: s, n: s.n, dev: dev, up: up}
		s.conns[r] = struct{}{}
		s.pending[r] = map[uint16]*packet.Publish{}
		s.mu.Unlock()
		s.goFunc(r.deviceToBroker)
	}
}

// relay is one device connection and its upstream twin.
type relay struct {
	s       *Shim
	n       int
	dev, up net.Conn
	v       packet.Version

	// devMu and upMu serialise writes to each side.
	devMu, upMu sync.Mutex
	closeOnce   sync.Once
}

func (r *relay) close() {
	r.closeOnce.Do(func() {
		_ = r.dev.Close()
		_ = r.up.Close()
		r.s.mu.Lock()
		delete(r.s.conns, r)
		delete(r.s.pending, r)
		r.s.mu.Unlock()
	})
}

func (r *relay) write(side net.Conn, mu *sync.Mutex, p packet.Packet) error {
	b, err := packet.Encode(p, r.v)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	_ = side.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = side.Write(b)
	return err
}

func (r *relay) toBroker(p packet.Packet) error { return r.write(r.up, &r.upMu, p) }
func (r *relay) toDevice(p packet.Packet) error { return r.write(r.dev, &r.devMu, p) }

// deviceToBroker reads the device's packets (the CONNECT first, which sets the version), applies
// the bug and forwards them; it starts the other direction once the version is known.
func (r *relay) deviceToBroker() {
	defer r.close()
	rd := packet.NewReader(bufio.NewReader(r.dev), 0)
	first, err := rd.ReadPacket()
	c, ok := first.(*packet.Connect)
	if err != nil || !ok {
		return
	}
	r.v = c.Version
	if r.toBroker(c) != nil {
		return
	}
	r.s.goFunc(r.brokerToDevice)
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return
		}
		if p = r.fromDevice(p); p == nil {
			continue
		}
		if r.toBroker(p) != nil {
			return
		}
	}
}

func (r *relay) brokerToDevice() {
	defer r.close()
	rd := packet.NewReader(bufio.NewReader(r.up), 0)
	rd.SetVersion(r.v)
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return
		}
		if p = r.fromBroker(p); p == nil {
			continue
		}
		if r.toDevice(p) != nil {
			return
		}
		if ack, ok := p.(*packet.Connack); ok && ack.Code == 0 {
			r.republish()
		}
	}
}

// fromDevice applies the bug to a packet on its way to the broker; nil swallows it.
func (r *relay) fromDevice(p packet.Packet) packet.Packet {
	switch r.s.bug {
	case NoResubscribe:
		if _, ok := p.(*packet.Subscribe); ok && r.n > 1 {
			return nil
		}
	case AckWithoutCorr:
		if pub, ok := p.(*packet.Publish); ok && strings.HasSuffix(pub.Topic, "/ack") {
			var m map[string]any
			if json.Unmarshal(pub.Payload, &m) == nil {
				delete(m, "corr")
				cp := *pub
				cp.Payload, _ = json.Marshal(m)
				return &cp
			}
		}
	case QoS2Republish:
		if pub, ok := p.(*packet.Publish); ok && pub.QoS == 2 {
			cp := *pub
			r.s.mu.Lock()
			if m := r.s.pending[r]; m != nil {
				m[pub.PacketID] = &cp
			}
			r.s.mu.Unlock()
		}
	}
	return p
}

// fromBroker follows the broker's answers; under QoS2Republish it remembers what the broker owns
// and answers the acknowledgements of the shim's own PUBLISHes itself.
func (r *relay) fromBroker(p packet.Packet) packet.Packet {
	if r.s.bug != QoS2Republish {
		return p
	}
	switch p := p.(type) {
	case *packet.Pubrec:
		r.s.mu.Lock()
		mine := r.s.injected[p.PacketID]
		if pub, ok := r.s.pending[r][p.PacketID]; ok && !mine && p.Code < 0x80 {
			if _, done := r.s.republished[p.PacketID]; !done {
				r.s.received[p.PacketID] = pub
			}
		}
		r.s.mu.Unlock()
		if mine {
			_ = r.toBroker(&packet.Pubrel{PacketID: p.PacketID})
			return nil
		}
	case *packet.Pubcomp:
		r.s.mu.Lock()
		mine := r.s.injected[p.PacketID]
		delete(r.s.injected, p.PacketID)
		r.s.mu.Unlock()
		if mine {
			return nil
		}
	}
	return p
}

// republish publishes again, as new messages, the QoS 2 messages the broker already owns.
func (r *relay) republish() {
	if r.s.bug != QoS2Republish {
		return
	}
	r.s.mu.Lock()
	var out []*packet.Publish
	for id, pub := range r.s.received {
		if r.s.republished[id] {
			continue
		}
		r.s.republished[id] = true
		cp := *pub
		cp.Dup = false
		cp.PacketID = r.s.nextID
		r.s.nextID++
		r.s.injected[cp.PacketID] = true
		out = append(out, &cp)
	}
	r.s.mu.Unlock()
	for _, p := range out {
		_ = r.toBroker(p)
	}
}
