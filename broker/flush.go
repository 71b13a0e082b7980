package broker

// The answers a connection's read goroutine queues to what it read — PUBACK, PUBREC, PUBCOMP —
// are written by that goroutine itself before it next waits for data, in one write for all the
// answers to one read, instead of by a writer goroutine started for them: at low rates that is
// one goroutine hand-off less per message. Packets queued by other goroutines (deliveries) still
// start the writer goroutine, which then writes the answers too.

// endWriteOwn is endWrite for an answer queued by the connection's read goroutine: the writer is
// not started; flushOwn writes it. Called with outMu held; unlocks it.
func (c *conn) endWriteOwn(start int) {
	c.traceOut(c.out[start:])
	if !c.writing {
		c.ownPending = true
	}
	c.outMu.Unlock()
}

// flushOwn writes the answers endWriteOwn left: at once when the socket takes them without
// waiting, else through the writer goroutine. Called by the read goroutine before it waits.
func (c *conn) flushOwn() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if !c.ownPending {
		return
	}
	c.ownPending = false
	if c.writing || len(c.out) == 0 {
		return
	}
	if !c.writeNow() {
		c.startWriter()
	}
}
