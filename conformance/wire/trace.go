package wire

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Direction says what a trace event is: a packet sent to the broker, a packet received from it,
// the end of a connection, or a note a check wrote between packets.
type Direction byte

// The kinds of trace event.
const (
	Sent     Direction = iota + 1 // a packet (or raw bytes) written to the broker
	Received                      // a packet read from the broker
	Closed                        // the connection ended: closed by the broker, or by us
	Note                          // a remark of the check, e.g. "broker restarted"
)

// String returns the arrow used in trace lines.
func (d Direction) String() string {
	switch d {
	case Sent:
		return "→"
	case Received:
		return "←"
	case Closed:
		return "×"
	case Note:
		return "#"
	}
	return "?"
}

// Event is one entry of a packet trace.
type Event struct {
	At     time.Time
	Conn   string // name of the connection (Options.Name)
	Dir    Direction
	Packet packet.Packet // the decoded packet; nil for a Closed or Note event or bytes that did not decode
	Raw    []byte        // the bytes as they crossed the wire (a copy)
	// Err is, for a received packet, why it failed to decode or validate (a broker that sends a
	// malformed packet breaks the specification); for a Closed event, how the connection ended.
	Err  error
	Text string // for Note and Closed events: what happened
}

// maxTraceEvents bounds a trace; events beyond it are counted, not kept.
const maxTraceEvents = 5000

// maxRawShown bounds how many raw bytes a trace line prints.
const maxRawShown = 48

// Trace is a packet trace shared by the connections of one check. It is safe for concurrent use.
type Trace struct {
	start time.Time

	// mu protects events and dropped.
	mu      sync.Mutex
	events  []Event
	dropped int
}

// NewTrace returns an empty trace whose times are relative to now.
func NewTrace() *Trace { return &Trace{start: time.Now()} }

// Start returns the time trace lines are relative to.
func (t *Trace) Start() time.Time { return t.start }

func (t *Trace) add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.events) >= maxTraceEvents {
		t.dropped++
		return
	}
	t.events = append(t.events, e)
}

// Notef records a remark of the check between packets, e.g. which step begins.
func (t *Trace) Notef(conn, format string, args ...any) {
	t.add(Event{At: time.Now(), Conn: conn, Dir: Note, Text: fmt.Sprintf(format, args...)})
}

// Events returns a copy of the events so far, in the order they happened.
func (t *Trace) Events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.events...)
}

// Dropped returns how many events did not fit in the trace.
func (t *Trace) Dropped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Lines formats the trace one event per line: the time since the trace began, the connection,
// the direction (→ sent, ← received, × closed, # note), the packet and its raw bytes, e.g.
// `+0.412ms pub → PUBLISH qos=1 id=1 dup=0 retain=0 topic="a/b" payload=5B [32 0c 00 03 ...]`.
func (t *Trace) Lines() []string {
	evs := t.Events()
	out := make([]string, 0, len(evs)+1)
	for _, e := range evs {
		out = append(out, e.Line(t.start))
	}
	if n := t.Dropped(); n > 0 {
		out = append(out, fmt.Sprintf("(%d further events not kept)", n))
	}
	return out
}

// String returns the trace's lines joined by newlines.
func (t *Trace) String() string { return strings.Join(t.Lines(), "\n") }

// Line formats one event with its time relative to start.
func (e Event) Line(start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%9.3fms %-6s %s ", float64(e.At.Sub(start))/float64(time.Millisecond), e.Conn, e.Dir)
	switch e.Dir {
	case Note:
		b.WriteString(e.Text)
		return b.String()
	case Closed:
		b.WriteString("connection closed")
		if e.Text != "" {
			b.WriteString(": " + e.Text)
		}
		return b.String()
	}
	switch {
	case e.Packet != nil:
		b.WriteString(Describe(e.Packet))
	case len(e.Raw) > 0:
		// Bytes that do not decode (sent on purpose, or a broker's defect): name the type the
		// first byte claims.
		fmt.Fprintf(&b, "(malformed %s, flags %04b)", packet.Type(e.Raw[0]>>4), e.Raw[0]&0x0F)
	default:
		b.WriteString("(no bytes)")
	}
	if e.Err != nil {
		b.WriteString(" !! " + e.Err.Error())
	}
	if len(e.Raw) > 0 {
		b.WriteString("  [" + hexBytes(e.Raw) + "]")
	}
	return b.String()
}

func hexBytes(raw []byte) string {
	shown := raw
	if len(shown) > maxRawShown {
		shown = shown[:maxRawShown]
	}
	h := hex.EncodeToString(shown)
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+2])
	}
	if len(raw) > maxRawShown {
		fmt.Fprintf(&b, " …+%dB", len(raw)-maxRawShown)
	}
	return b.String()
}
