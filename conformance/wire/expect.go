package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// ErrTimeout is wrapped by every expectation that was not met within its deadline.
var ErrTimeout = errors.New("deadline passed")

// ErrClosed is wrapped by an expectation of a packet that ended because the connection closed.
var ErrClosed = errors.New("connection closed")

// ErrUnexpected is wrapped by ExpectNothing when a packet arrived that must not have.
var ErrUnexpected = errors.New("unexpected packet")

// ErrMalformed is wrapped by an expectation that met a packet from the broker that does not
// decode: a broker must never send one.
var ErrMalformed = errors.New("malformed packet from the broker")

// await evaluates check under c.mu now and after every change of the connection's state, until it
// reports done or the deadline passes; it returns whether check reported done. It never sleeps:
// it waits on the change notification or the deadline timer, whichever comes first.
func (c *Conn) await(timeout time.Duration, check func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if check() {
			c.mu.Unlock()
			return true
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			c.mu.Lock()
			done := check()
			c.mu.Unlock()
			return done
		}
	}
}

// ExpectPacket waits up to timeout for a packet that satisfies pred and takes it from the inbox.
// Packets that do not satisfy pred stay in the inbox, in order, for later expectations. It fails
// when the deadline passes, when the connection closes first, or when the broker sends a packet
// that does not decode before a matching one.
func (c *Conn) ExpectPacket(timeout time.Duration, pred Predicate) (packet.Packet, error) {
	var (
		got  packet.Packet
		bad  error
		shut bool
	)
	c.await(timeout, func() bool {
		for i, e := range c.inbox {
			if e.Packet == nil {
				bad = e.Err
				return true
			}
			if pred.Match(e.Packet) {
				got = e.Packet
				c.inbox = append(c.inbox[:i:i], c.inbox[i+1:]...)
				return true
			}
		}
		shut = c.closed
		return shut
	})
	switch {
	case got != nil:
		return got, nil
	case bad != nil:
		return nil, c.expectErr("expected "+pred.String(), timeout, fmt.Errorf("%w: %w", ErrMalformed, bad))
	case shut:
		return nil, c.expectErr("expected "+pred.String(), timeout, ErrClosed)
	}
	return nil, c.expectErr("expected "+pred.String(), timeout, ErrTimeout)
}

// ExpectNext waits up to timeout for the next packet in arrival order, whatever it is, and takes
// it from the inbox.
func (c *Conn) ExpectNext(timeout time.Duration) (packet.Packet, error) {
	var (
		ev   Event
		ok   bool
		shut bool
	)
	c.await(timeout, func() bool {
		if len(c.inbox) > 0 {
			ev, ok = c.inbox[0], true
			c.inbox = c.inbox[1:]
			return true
		}
		shut = c.closed
		return shut
	})
	switch {
	case ok && ev.Packet == nil:
		return nil, c.expectErr("expected a packet", timeout, fmt.Errorf("%w: %w", ErrMalformed, ev.Err))
	case ok:
		return ev.Packet, nil
	case shut:
		return nil, c.expectErr("expected a packet", timeout, ErrClosed)
	}
	return nil, c.expectErr("expected a packet", timeout, ErrTimeout)
}

// ExpectClosed waits up to timeout for the broker to close the connection. Packets received before
// the close stay in the inbox (Pending), so that a check can accept, for example, a 5.0
// DISCONNECT with a reason code before the close. It fails when the deadline passes with the
// connection still open, or when the client itself closed it.
func (c *Conn) ExpectClosed(timeout time.Duration) error {
	var by string
	closed := c.await(timeout, func() bool {
		by = c.closedBy
		return c.closed
	})
	switch {
	case !closed:
		return c.expectErr("expected the broker to close the connection", timeout, ErrTimeout)
	case by != "broker":
		return c.expectErr("expected the broker to close the connection", timeout,
			errors.New("the client closed it first"))
	}
	return nil
}

// ExpectNothing watches the connection for window and fails if a packet satisfying pred arrives
// (or had arrived and is still in the inbox); a nil pred means any packet. This is how a check
// shows that a broker does not send something: the window is the one bounded wait of the suite,
// so keep it short. The connection closing during the window is not a failure.
func (c *Conn) ExpectNothing(window time.Duration, pred Predicate) error {
	if pred == nil {
		pred = Any()
	}
	var got *Event
	c.await(window, func() bool {
		for i := range c.inbox {
			e := c.inbox[i]
			if e.Packet == nil || pred.Match(e.Packet) {
				got = &e
				return true
			}
		}
		return false
	})
	if got == nil {
		return nil
	}
	what := "(undecodable bytes)"
	if got.Packet != nil {
		what = Describe(got.Packet)
	}
	return c.expectErr("expected no "+pred.String(), window, fmt.Errorf("%w: received %s", ErrUnexpected, what))
}

// ExpectError is the error of an expectation that was not met: what was expected, how long it
// waited, what happened instead and which packets were waiting in the inbox.
type ExpectError struct {
	Conn    string
	What    string
	Waited  time.Duration
	Pending []string
	Err     error
}

func (e *ExpectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s within %s: %v", e.Conn, e.What, e.Waited, e.Err)
	if len(e.Pending) > 0 {
		fmt.Fprintf(&b, " (received meanwhile: %s)", strings.Join(e.Pending, "; "))
	}
	return b.String()
}

// Unwrap returns the cause: ErrTimeout, ErrClosed, ErrUnexpected or ErrMalformed, possibly wrapped.
func (e *ExpectError) Unwrap() error { return e.Err }

func (c *Conn) expectErr(what string, waited time.Duration, err error) error {
	e := &ExpectError{Conn: c.opts.Name, What: what, Waited: waited, Err: err}
	for _, p := range c.Pending() {
		e.Pending = append(e.Pending, Describe(p))
	}
	return e
}
