// Package v311 holds the server-side checks of MQTT 3.1.1: each check is a Ginkgo spec declared
// with the conformance framework (conformance/suite) and labelled with the normative statements
// it checks. Importing the package registers the checks; conformance.Run and `gatehouse conform`
// run them.
//
// Files follow the specification: connect.go (3.1, 3.2), publish.go (3.3 and the QoS flows of
// 4.3), retain.go, will.go, session.go (3.1.2.4, 4.1, 4.4), subscribe.go (3.8 to 3.11),
// topics.go (1.5.3, 4.7), framing.go (2.2, 2.3, 3.12, 3.14, 4.8), order.go (4.6), transport.go (6,
// 7.1) and access.go (3.3.5).
package v311

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// describe declares a group of MQTT 3.1.1 checks.
func describe(text string, body func()) bool { return suite.Describe(spec.Version311, text, body) }

// ids is suite.IDs, short for the many checks below.
var ids = suite.IDs

// subscriber connects as role and subscribes to filters at qos, requiring every subscription to
// be granted (a lower QoS than asked makes the check "not supported" when the check needs it:
// see needQoS).
func subscriber(c *suite.C, role string, qos packet.QoS, filters ...string) *wire.Conn {
	conn, _ := c.Connect(role)
	codes := c.Subscribe(conn, qos, filters...)
	for i, code := range codes {
		if code == packet.SubackFailure {
			c.Failf("%s: the broker refused the subscription to %q (SUBACK 0x80)", role, filters[i])
		}
		if code > 2 {
			c.Failf("%s: SUBACK return code 0x%02X for %q is reserved [MQTT-3.9.3-2]", role, byte(code), filters[i])
		}
		needQoS(c, qos, packet.QoS(code))
	}
	return conn
}

// needQoS ends a check as "not supported" when the broker granted less than the check needs:
// 3.1.1 lets a server grant a lower maximum QoS than requested (section 3.8.4).
func needQoS(c *suite.C, want, granted packet.QoS) {
	if granted < want {
		c.NotSupported("the broker grants at most QoS %d where QoS %d was requested (3.1.1 allows a lower grant)", granted, want)
	}
}

// closedWithout waits for the broker to close conn and fails if a packet of type t arrived first.
func closedWithout(c *suite.C, conn *wire.Conn, t packet.Type) {
	c.AwaitClosed(conn)
	for _, p := range conn.Pending() {
		if p.Type() == t {
			c.Failf("%s: the broker sent %s before closing the connection", conn.Name(), wire.Describe(p))
		}
	}
}

// pub builds a PUBLISH.
func pub(topic, payload string, qos packet.QoS, retain bool) *packet.Publish {
	return &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
}

// deadline is the read deadline of a raw WebSocket read in a check.
func deadline(c *suite.C) time.Time { return time.Now().Add(c.Timeout()) }
