package broker

// Writes queued by a read goroutine. Everything a connection's read goroutine queues while it
// handles one read — its own answers (PUBACK, PUBREC, PUBREL, PUBCOMP, PINGRESP) and the
// deliveries of the messages it routes to other clients — is written when that goroutine is done
// with the read, before it waits for more data: one write per connection for all it queued, by
// the read goroutine itself with a non-blocking write when only a few connections are involved,
// instead of by a writer goroutine started for each. At moderate rates that spares a goroutine
// start, its scheduling and its exit for every delivered message. Packets queued outside a read
// goroutine (timers, wills, takeovers) and the rest of what a socket does not take at once still
// go through the writer goroutine (conn.writeLoop).

// inlineFlushMax is the most connections a read goroutine writes to itself after one read; with
// more (a message fanned out to many subscribers), each gets a writer goroutine, so that the
// writes proceed on every core.
const inlineFlushMax = 4

// flushList holds the connections a read goroutine queued packets for and has yet to flush. It
// belongs to that goroutine (conn.fl); a connection is on at most one list at a time
// (conn.deferred, under its outMu).
type flushList struct {
	conns []*conn
}

// endWriteBy is endWrite for a packet queued by the read goroutine owning fl: the connection
// goes on fl (unless its writer runs or it is on a list already) and is written by fl.flush.
// With fl nil it is endWrite. Called with outMu held; unlocks it.
func (c *conn) endWriteBy(start int, qos0 bool, fl *flushList) {
	if fl == nil {
		c.endWrite(start, qos0)
		return
	}
	if qos0 {
		c.q0++
	}
	c.traceOut(c.out[start:])
	if !c.writing && !c.deferred {
		c.deferred = true
		fl.conns = append(fl.conns, c)
	}
	c.outMu.Unlock()
}

// flush writes what the read goroutine queued: at once when few connections are involved and
// the socket takes it without waiting, else through each connection's writer goroutine. Called
// by the read goroutine before it waits for data and whenever its read ends.
func (fl *flushList) flush() {
	inline := len(fl.conns) <= inlineFlushMax
	for i, x := range fl.conns {
		x.outMu.Lock()
		x.deferred = false
		if !x.writing && len(x.out) > 0 && !(inline && x.writeNow()) {
			x.startWriter()
		}
		x.outMu.Unlock()
		fl.conns[i] = nil
	}
	if cap(fl.conns) > 64 {
		// A wide fan-out does not leave its list behind on an idle publisher.
		fl.conns = nil
	} else {
		fl.conns = fl.conns[:0]
	}
}
