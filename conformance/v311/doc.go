// Package v311 holds the server-side checks of MQTT 3.1.1: each check is a Ginkgo spec declared
// with the conformance framework (conformance/suite) and labelled with the normative statements
// it checks. Importing the package registers the checks; conformance.Run and `gatehouse conform`
// run them.
//
// Files follow the specification: connect.go (3.1, 3.2), publish.go (3.3 and the QoS flows of
// 4.3), retain.go, will.go, session.go (3.1.2.4, 4.1, 4.4), subscribe.go (3.8 to 3.11),
// topics.go (1.5.3, 4.7), framing.go (2.2, 2.3, 3.12, 3.14, 4.8), order.go (4.6), transport.go (6,
// 7.1) and access.go (3.3.5).
//
// What the checks share with those of MQTT 5.0 comes from conformance/internal/flows: the steps
// they build on (subscribe and require the grant, wait for a will or a retained message) and the
// bodies of the checks whose rule both specifications state alike, which this package declares
// with its own text and statements.
package v311

import (
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// describe declares a group of MQTT 3.1.1 checks.
func describe(text string, body func()) bool { return suite.Describe(spec.Version311, text, body) }

// ids is suite.IDs, short for the many checks below.
var ids = suite.IDs

// closedWithout waits for the broker to close conn and fails if a packet of type t arrived first.
func closedWithout(c *suite.C, conn *wire.Conn, t packet.Type) {
	c.AwaitClosed(conn)
	for _, p := range conn.Pending() {
		if p.Type() == t {
			c.Failf("%s: the broker sent %s before closing the connection", conn.Name(), wire.Describe(p))
		}
	}
}
