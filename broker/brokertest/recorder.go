package brokertest

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Event is one recorded packet. Every field may be kept: Packet is the recorder's own copy, and the
// broker hands tracers only strings it owns (see broker.TraceEvent).
type Event struct {
	Seq      int // position in the recording, from 0
	Time     time.Time
	ClientID string
	Remote   string
	Dir      broker.Direction
	Packet   packet.Packet
	Version  packet.Version
}

func (e Event) String() string {
	return fmt.Sprintf("#%d %s %s %s %s", e.Seq, e.Time.Format("15:04:05.000000"), e.Dir, e.ClientID, describe(e.Packet))
}

func describe(p packet.Packet) string {
	switch p := p.(type) {
	case *packet.Publish:
		return fmt.Sprintf("PUBLISH topic=%q qos=%d id=%d dup=%t retain=%t payload=%q", p.Topic, p.QoS, p.PacketID, p.Dup, p.Retain, p.Payload)
	case *packet.Connack:
		return fmt.Sprintf("CONNACK sp=%t code=%s", p.SessionPresent, p.Code)
	case *packet.Disconnect:
		return fmt.Sprintf("DISCONNECT code=%s", p.Code)
	case *packet.Suback:
		return fmt.Sprintf("SUBACK id=%d codes=%v", p.PacketID, p.Codes)
	case *packet.Puback:
		return fmt.Sprintf("PUBACK id=%d code=%s", p.PacketID, p.Code)
	case nil:
		return "<nil>"
	}
	return p.Type().String()
}

// Recorder is a broker.Tracer that keeps a copy of every packet and lets tests wait for one.
type Recorder struct {
	mu      sync.Mutex // protects events, base, changed
	events  []Event
	base    int           // Seq of events[0]
	limit   int           // most events kept
	changed chan struct{} // closed and replaced when an event is added
}

var _ broker.Tracer = (*Recorder)(nil)

// NewRecorder returns a recorder keeping at most limit events (0: unbounded).
func NewRecorder(limit int) *Recorder {
	return &Recorder{limit: limit, changed: make(chan struct{})}
}

// Trace implements broker.Tracer: the packet is copied (re-encoded and decoded) before it is kept,
// because the broker's packet aliases its buffers.
func (r *Recorder) Trace(e broker.TraceEvent) {
	p := copyPacket(e.Packet, e.Version)
	r.mu.Lock()
	ev := Event{Seq: r.base + len(r.events), Time: e.Time, ClientID: e.ClientID, Remote: e.Remote, Dir: e.Dir, Packet: p, Version: e.Version}
	r.events = append(r.events, ev)
	if r.limit > 0 && len(r.events) > r.limit {
		drop := len(r.events) - r.limit
		r.events = append(r.events[:0:0], r.events[drop:]...)
		r.base += drop
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func copyPacket(p packet.Packet, v packet.Version) packet.Packet {
	if p == nil {
		return nil
	}
	if v == 0 {
		v = packet.V311
		if c, ok := p.(*packet.Connect); ok && c.Version != 0 {
			v = c.Version
		}
	}
	b, err := p.AppendTo(nil, v)
	if err != nil {
		return p
	}
	q, _, err := packet.Decode(b, v, 0)
	if err != nil || q == nil {
		return p
	}
	return q
}

// Events returns a copy of every event kept.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Packets returns the packets matching pred (every packet when pred is nil), in order.
func (r *Recorder) Packets(pred Predicate) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if pred == nil || pred(e) {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many kept events match pred.
func (r *Recorder) Count(pred Predicate) int { return len(r.Packets(pred)) }

// Next returns the Seq the next event will have; pass it to WaitAfter to ignore what came before.
func (r *Recorder) Next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base + len(r.events)
}

// Wait returns the first event matching pred, waiting up to timeout for it to happen.
func (r *Recorder) Wait(timeout time.Duration, pred Predicate) (Event, error) {
	return r.WaitAfter(0, timeout, pred)
}

// WaitAfter is Wait that looks only at events with Seq >= from.
func (r *Recorder) WaitAfter(from int, timeout time.Duration, pred Predicate) (Event, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		start := max(from-r.base, 0)
		for _, e := range r.events[min(start, len(r.events)):] {
			if pred(e) {
				r.mu.Unlock()
				return e, nil
			}
		}
		from = r.base + len(r.events)
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return Event{}, fmt.Errorf("brokertest: no matching packet within %s", timeout)
		}
	}
}

// WaitFor is Wait that fails the test (with the recent trace) when no event matches in time.
func (r *Recorder) WaitFor(t TB, timeout time.Duration, pred Predicate) Event {
	t.Helper()
	e, err := r.Wait(timeout, pred)
	if err != nil {
		t.Fatalf("%v; trace:\n%s", err, r.Dump(40))
	}
	return e
}

// Dump formats the last n events for a failure message.
func (r *Recorder) Dump(n int) string {
	evs := r.Events()
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	var sb strings.Builder
	for _, e := range evs {
		sb.WriteString(e.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Predicate selects events.
type Predicate func(Event) bool

// In matches packets of type typ sent by a client.
func In(typ packet.Type) Predicate {
	return func(e Event) bool { return e.Dir == broker.In && e.Packet != nil && e.Packet.Type() == typ }
}

// Out matches packets of type typ sent by the broker.
func Out(typ packet.Type) Predicate {
	return func(e Event) bool { return e.Dir == broker.Out && e.Packet != nil && e.Packet.Type() == typ }
}

// Client matches events of one client identifier.
func Client(id string) Predicate { return func(e Event) bool { return e.ClientID == id } }

// Topic matches PUBLISH packets with that topic name.
func Topic(name string) Predicate {
	return func(e Event) bool {
		p, ok := e.Packet.(*packet.Publish)
		return ok && p.Topic == name
	}
}

// All matches when every predicate matches.
func All(ps ...Predicate) Predicate {
	return func(e Event) bool {
		for _, p := range ps {
			if !p(e) {
				return false
			}
		}
		return true
	}
}
