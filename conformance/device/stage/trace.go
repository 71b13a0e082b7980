package stage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Kind says what a trace event is.
type Kind byte

// The kinds of trace event.
const (
	FromDevice Kind = iota + 1 // a packet the device sent
	ToDevice                   // a packet the server sent
	Opened                     // the device opened a network connection
	Closed                     // a connection ended; Text says who closed it and how
	Note                       // something the server did that is not a packet: an acknowledgement held back, a CONNACK plan applied
)

// String returns the marker used in trace lines.
func (k Kind) String() string {
	switch k {
	case FromDevice:
		return "device →"
	case ToDevice:
		return "← server"
	case Opened:
		return "open"
	case Closed:
		return "closed"
	case Note:
		return "#"
	}
	return "?"
}

// Event is one entry of the trace.
type Event struct {
	Index int // position in the trace
	At    time.Time
	Conn  int // the device's connection number, from 1; 0 for events of no connection
	Kind  Kind
	// Packet is the decoded packet; nil for events that are not packets and for bytes that did
	// not decode.
	Packet packet.Packet
	// Err is, for a packet from the device, why it is malformed (decoding failed: the connection
	// is then closed) or invalid (it decoded but breaks a rule; it was still processed). For a
	// Closed event, the error that ended the connection, if any.
	Err error
	// Malformed is set when Err is a decoding error rather than a validation one.
	Malformed bool
	// ByDevice is set on a Closed event when the device closed the connection (EOF, reset), as
	// opposed to the server.
	ByDevice bool
	// Held is set on the Note of an acknowledgement the server held back.
	Held *Held
	Text string
}

// Publish returns the event's packet as a PUBLISH, or nil.
func (e Event) Publish() *packet.Publish {
	p, _ := e.Packet.(*packet.Publish)
	return p
}

// Is reports whether the event is a packet of type t in direction k.
func (e Event) Is(k Kind, t packet.Type) bool {
	return e.Kind == k && e.Packet != nil && e.Packet.Type() == t
}

// Line formats the event relative to start: "+1.234s c2 device → PUBLISH qos=1 id=3 ...".
func (e Event) Line(start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+9.3fs c%d %-8s ", e.At.Sub(start).Seconds(), e.Conn, e.Kind)
	switch {
	case e.Packet != nil:
		b.WriteString(wire.Describe(e.Packet))
		if e.Err != nil {
			fmt.Fprintf(&b, "  !! %v", e.Err)
		}
	case e.Err != nil && e.Text != "":
		fmt.Fprintf(&b, "%s: %v", e.Text, e.Err)
	case e.Err != nil:
		fmt.Fprintf(&b, "%v", e.Err)
	default:
		b.WriteString(e.Text)
	}
	return b.String()
}

// Held describes an acknowledgement the server held back on purpose.
type Held struct {
	Ack packet.Type // PUBACK, PUBREC, PUBCOMP or PINGRESP
	ID  uint16      // the packet identifier it would have carried (0 for PINGRESP)
}

// maxEvents bounds a trace; a certification run records a few thousand packets at most, and a
// device that floods the server is cut off rather than allowed to exhaust memory.
const maxEvents = 200_000

// Trace is the ordered record of everything that crossed the device's connections. It is safe
// for concurrent use; waiters are woken on every append.
type Trace struct {
	start time.Time

	// mu protects events, dropped and changed.
	mu      sync.Mutex
	events  []Event
	dropped int
	changed chan struct{} // closed and replaced on every append
}

// NewTrace returns an empty trace whose lines are timed from now.
func NewTrace() *Trace { return &Trace{start: time.Now(), changed: make(chan struct{})} }

// Start returns the time trace lines are relative to.
func (t *Trace) Start() time.Time { return t.start }

// add appends e, stamping its index, and wakes the waiters. It returns the stamped event.
func (t *Trace) add(e Event) Event {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.events) >= maxEvents {
		t.dropped++
		return e
	}
	e.Index = len(t.events)
	t.events = append(t.events, e)
	close(t.changed)
	t.changed = make(chan struct{})
	return e
}

// Note appends a remark of the certifier (a phase starting, a fault applied) to the trace.
func (t *Trace) Note(conn int, format string, args ...any) {
	t.add(Event{Conn: conn, Kind: Note, Text: fmt.Sprintf(format, args...)})
}

// Len returns the number of events so far.
func (t *Trace) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.events)
}

// Dropped returns how many events did not fit in the trace.
func (t *Trace) Dropped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Events returns a copy of the events with from <= Index < to; to < 0 means to the end.
func (t *Trace) Events(from, to int) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	if to < 0 || to > len(t.events) {
		to = len(t.events)
	}
	if from < 0 {
		from = 0
	}
	if from >= to {
		return nil
	}
	return append([]Event(nil), t.events[from:to]...)
}

// Wait returns the first event at or after index from that satisfies match, waiting for new
// events until timeout passes or ctx ends. ok is false when none came in time.
func (t *Trace) Wait(ctx context.Context, from int, timeout time.Duration, match func(Event) bool) (ev Event, ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i := max(from, 0); ; {
		t.mu.Lock()
		for ; i < len(t.events); i++ {
			if match(t.events[i]) {
				e := t.events[i]
				t.mu.Unlock()
				return e, true
			}
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return Event{}, false
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// Lines formats the events with from <= Index < to, one per line; to < 0 means to the end.
func (t *Trace) Lines(from, to int) []string {
	evs := t.Events(from, to)
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Line(t.start)
	}
	return out
}

// Excerpt formats the events around the given indexes — each with up to ctxBefore events before
// it and ctxAfter after — keeping only events of the connections involved, with "…" where events
// were left out. Reports use it as evidence: the few lines that show a verdict.
func (t *Trace) Excerpt(idx []int, ctxBefore, ctxAfter int) []string {
	if len(idx) == 0 {
		return nil
	}
	t.mu.Lock()
	n := len(t.events)
	keep := make([]bool, n)
	for _, i := range idx {
		if i < 0 || i >= n {
			continue
		}
		for j := max(0, i-ctxBefore); j <= min(n-1, i+ctxAfter); j++ {
			keep[j] = true
		}
	}
	var out []string
	gap := false
	for i, k := range keep {
		if !k {
			gap = true
			continue
		}
		if gap && len(out) > 0 {
			out = append(out, "          …")
		}
		gap = false
		out = append(out, t.events[i].Line(t.start))
	}
	t.mu.Unlock()
	return out
}
