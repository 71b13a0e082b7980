package broker

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Direction says whether a traced packet came from the client (In) or went to it (Out).
type Direction byte

// The two directions of a traced packet.
const (
	In Direction = iota + 1
	Out
)

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "unknown"
}

// TraceEvent is one packet seen by the broker on a client connection.
//
// Every field but Packet belongs to the event and may be kept after Trace returns: the broker
// never hands a tracer a string that aliases one of its buffers (the client id of a CONNECT is
// copied out of the read buffer). Packet is read-only and valid only for the duration of the
// Trace call: its strings and byte slices alias the connection's read or write buffer, which is
// reused for the next packet. A tracer that keeps packets must copy them (brokertest's recorder
// re-encodes and decodes each one).
type TraceEvent struct {
	Time     time.Time
	ClientID string // empty before CONNECT has been read
	Remote   string
	Listener string
	Dir      Direction
	Packet   packet.Packet
	Version  packet.Version
}

// Tracer sees every packet in and out of every client connection. Trace is called from the
// connection's goroutines, concurrently for different connections, possibly with broker locks
// held: it must not block or call back into the broker. What it may keep of an event is stated
// on TraceEvent: every field except Packet, which it must copy to keep.
type Tracer interface {
	Trace(e TraceEvent)
}

// TracerFunc adapts a function to the Tracer interface.
type TracerFunc func(e TraceEvent)

// Trace calls f(e).
func (f TracerFunc) Trace(e TraceEvent) { f(e) }
