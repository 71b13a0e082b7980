// Package v5 holds the server-side checks of MQTT 5.0: each check is a Ginkgo spec declared with
// the conformance framework (conformance/suite) and labelled with the normative statements it
// checks. Importing the package registers the checks; conformance.Run and `gatehouse conform
// --protocol 5.0` run them.
//
// Files follow the specification: connect.go (3.1, 3.2, 4.12), publish.go (3.3 and the QoS
// flows of 4.3), properties.go (the PUBLISH properties a broker passes on, message expiry),
// retain.go (3.3.1 retained messages and retain handling), will.go, session.go (3.1.2.4, 3.1.2.11,
// 4.1, 4.4), subscribe.go (3.8 to 3.11, subscription identifiers, No Local), topics.go (1.5.4,
// 4.7), alias.go (topic aliases), limits.go (Maximum Packet Size, Receive Maximum, flow control
// of 4.9), framing.go (1.5.5, 2.1.3, 2.2, 3.12, 3.14, 3.15, 4.13), shared.go (4.8.2), order.go
// (4.6), transport.go (4.2, 6) and access.go (checks that need a topic the broker denies);
// codes.go holds the Reason Code tables the checks compare with. What the checks share with those
// of MQTT 3.1.1 comes from conformance/internal/flows: the steps they build on and the bodies of
// the checks whose rule both specifications state alike, which this package declares with its own
// text and statements.
//
// The package's tests (selfproof_test.go) show every check failing against a broker that breaks
// its statement: the reference broker behind the mutant proxy of conformance/internal/mutant
// (MutationsV5), for every statement no broker fault mode (conformance.Faults) breaks.
//
// Where MQTT 5.0 lets a broker choose between answers — close the connection with or without a
// DISCONNECT first, refuse a subscription with a SUBACK code or by closing, deliver overlapping
// subscriptions once or once per subscription — the checks accept each of them and say so.
// Optional features (retained messages, QoS 1 and 2, wildcard, shared and identified
// subscriptions, topic aliases) are read from the CONNACK of the run's probe: a check that needs
// one calls c.Require and is "not supported" on a broker that announces it does not offer it.
package v5

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// describe declares a group of MQTT 5.0 checks.
func describe(text string, body func()) bool { return suite.Describe(spec.Version5, text, body) }

// ids is suite.IDs, short for the many checks below.
var ids = suite.IDs

// v5 is the packet codec's version of every check in this package.
const v5 = packet.V5

// closedWithout waits for the broker to close conn after a protocol violation and fails if a
// packet of one of the types arrived first (the violation must not have been processed). The
// broker may send DISCONNECT with a reason code of 0x80 or more before closing (section 4.13);
// a DISCONNECT with a lower code there is wrong.
func closedWithout(c *suite.C, conn *wire.Conn, forbidden ...packet.Type) {
	if problem := closedProblem(c, conn, forbidden...); problem != "" {
		c.Failf("%s", problem)
	}
}

// closedProblem is closedWithout that says what is wrong instead of failing, for checks that
// try several cases and report every case that fails.
func closedProblem(c *suite.C, conn *wire.Conn, forbidden ...packet.Type) string {
	if err := conn.ExpectClosed(c.Timeout()); err != nil {
		return err.Error()
	}
	for _, p := range conn.Pending() {
		for _, t := range forbidden {
			if p.Type() == t {
				return fmt.Sprintf("%s: the broker sent %s before closing the connection", conn.Name(), wire.Describe(p))
			}
		}
		if d, ok := p.(*packet.Disconnect); ok && !d.Code.IsError() {
			return fmt.Sprintf("%s: the broker closed the connection after a protocol violation with DISCONNECT %s, which is not an error code", conn.Name(), flows.CodeName(d.Code))
		}
	}
	return ""
}

// findings collects failures by statement in a check that judges several statements independently
// and reports them together at the end, so that one broken statement does not leave the others
// unjudged.
type findings struct {
	c    *suite.C
	ids  []spec.ID
	msgs []string
}

// add records a failure of statement id.
func (f *findings) add(id spec.ID, format string, args ...any) {
	if !slices.Contains(f.ids, id) {
		f.ids = append(f.ids, id)
	}
	f.msgs = append(f.msgs, string(id)+": "+fmt.Sprintf(format, args...))
}

// expect records a failure of statement id unless ok.
func (f *findings) expect(id spec.ID, ok bool, format string, args ...any) {
	if !ok {
		f.add(id, format, args...)
	}
}

// report fails the check, attributed to every statement that failed, when any did.
func (f *findings) report() {
	if len(f.ids) > 0 {
		f.c.For(f.ids...).Failf("%s", strings.Join(f.msgs, "; "))
	}
}

// failures collects what went wrong in the cases of a check that tries several, so that the
// evidence shows every failing case, not only the first.
type failures []string

func (f *failures) add(name, problem string) {
	if problem != "" {
		*f = append(*f, name+": "+problem)
	}
}

// report fails the check (as c, which may be a c.For view) when any case failed.
func (f failures) report(c *suite.C) {
	if len(f) > 0 {
		c.Failf("%d case(s) failed:\n  %s", len(f), strings.Join(f, "\n  "))
	}
}

// disconnectCode returns the reason code of the DISCONNECT the broker sent before closing conn,
// and whether it sent one.
func disconnectCode(conn *wire.Conn) (packet.ReasonCode, bool) {
	for _, p := range conn.Pending() {
		if d, ok := p.(*packet.Disconnect); ok {
			return d.Code, true
		}
	}
	return 0, false
}

// props is a Connect option that changes the CONNECT's properties.
func props(f func(p *packet.Properties)) func(*packet.Connect) {
	return func(p *packet.Connect) { f(&p.Props) }
}

// expiry is a Connect option: a Session Expiry Interval of s seconds (Clean Start unchanged).
func expiry(s uint32) func(*packet.Connect) {
	return func(p *packet.Connect) {
		p.Props.SessionExpiry = s
		p.Props.Present.Add(packet.PropSessionExpiry)
	}
}

// resume is a Connect option: Clean Start 0.
func resume(p *packet.Connect) { p.CleanStart = false }

// expiryWait is how long the checks of one-second expiry intervals (session, message) wait before
// they look: the interval, plus a second because the intervals are whole seconds and a broker
// may count them on a clock of one-second resolution, plus scheduling slack.
const expiryWait = 2200 * time.Millisecond

// elapse lets d pass. Checks of statements about time — a Will Delay Interval, a Session Expiry
// Interval, a Message Expiry Interval, a keepalive — cannot observe them without letting the
// interval run out; this is the only place where the package waits for time itself rather than
// for an event, and the intervals it is used with are one second.
func elapse(c *suite.C, d time.Duration) {
	c.Step("letting %s pass", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Context().Done():
		c.Failf("interrupted while letting %s pass: %v", d, context.Cause(c.Context()))
	}
}

// received returns every packet of type t the broker sent in the check so far, from the trace.
func received(c *suite.C, t packet.Type) []wire.Event {
	var out []wire.Event
	for _, e := range c.Trace().Events() {
		if e.Dir == wire.Received && e.Packet != nil && e.Packet.Type() == t {
			out = append(out, e)
		}
	}
	return out
}

// ackProps returns the properties of a packet that answers another or ends a connection —
// CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT: the packets whose
// Reason String and User Properties the rules of Request Problem Information and Maximum Packet
// Size govern. It returns nil for any other packet.
func ackProps(p packet.Packet) *packet.Properties {
	switch p := p.(type) {
	case *packet.Connack:
		return &p.Props
	case *packet.Puback:
		return &p.Props
	case *packet.Pubrec:
		return &p.Props
	case *packet.Pubrel:
		return &p.Props
	case *packet.Pubcomp:
		return &p.Props
	case *packet.Suback:
		return &p.Props
	case *packet.Unsuback:
		return &p.Props
	case *packet.Disconnect:
		return &p.Props
	}
	return nil
}

// publishFor matches a PUBLISH on topic with a packet identifier.
func publishID(topic string, id uint16) wire.Predicate {
	return wire.And(wire.PublishOn(topic), wire.Where(fmt.Sprintf("packet id %d", id), func(p packet.Packet) bool {
		return p.(*packet.Publish).PacketID == id
	}))
}
