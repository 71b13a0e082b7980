package flows

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Pub builds a PUBLISH.
func Pub(topic, payload string, qos packet.QoS, retain bool) *packet.Publish {
	return &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
}

// WithWill is a Connect option: a will on topic.
func WithWill(topic, payload string, qos packet.QoS, retain bool) func(*packet.Connect) {
	return func(p *packet.Connect) {
		p.Will = &packet.Will{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	}
}

// Subscriber connects as role and subscribes to filters at qos, requiring every subscription to
// be granted. A broker may grant a lower maximum QoS than requested (section 3.8.4 of both
// versions): a check that needs the QoS it asked for ends "not supported" then (see NeedQoS).
func Subscriber(c *suite.C, role string, qos packet.QoS, filters ...string) *wire.Conn {
	conn, _ := c.Connect(role)
	Subscribe(c, conn, qos, filters...)
	return conn
}

// Subscribe subscribes conn to filters at qos with default options, as Subscriber does.
func Subscribe(c *suite.C, conn *wire.Conn, qos packet.QoS, filters ...string) {
	codes := c.Subscribe(conn, qos, filters...)
	for i, code := range codes {
		if c.Version == spec.Version311 {
			// 3.1.1 has one refusal, 0x80; anything else above 2 is not a return code at all.
			if code == packet.SubackFailure {
				c.Failf("%s: the broker refused the subscription to %q (SUBACK 0x80)", conn.Name(), filters[i])
			}
			if code > 2 {
				c.Failf("%s: SUBACK return code 0x%02X for %q is reserved [MQTT-3.9.3-2]", conn.Name(), byte(code), filters[i])
			}
		} else if code.IsError() {
			c.Failf("%s: the broker refused the subscription to %q (SUBACK %s)", conn.Name(), filters[i], CodeName(code))
		}
		NeedQoS(c, qos, packet.QoS(code))
	}
}

// NeedQoS ends a check as "not supported" when the broker granted less than the check needs.
func NeedQoS(c *suite.C, want, granted packet.QoS) {
	if granted >= want {
		return
	}
	allowed := "a lower grant is allowed"
	if c.Version == spec.Version311 {
		allowed = "3.1.1 allows a lower grant"
	}
	c.NotSupported("the broker grants at most QoS %d where QoS %d was requested (%s)", granted, want, allowed)
}

// CodeName prints a reason code with its value, e.g. "0x87 (not authorized)".
func CodeName(r packet.ReasonCode) string { return fmt.Sprintf("0x%02X (%s)", byte(r), r) }

// AwaitRetained waits at conn for the retained message a new subscription on topic is sent. One
// that never comes is blamed on blame: the statements that the broker stores the message and
// sends it to a new subscription, which every check that uses it for a step it builds on cites.
func AwaitRetained(c *suite.C, conn *wire.Conn, topic string, blame ...spec.ID) *packet.Publish {
	p, err := conn.ExpectPacket(c.Timeout(), wire.PublishOn(topic))
	if err != nil {
		c.For(blame...).Failf("the retained message on %q for a new subscription: %v", topic, err)
	}
	return p.(*packet.Publish)
}

// willPublished is the statement that the broker publishes the will when the connection closes
// without DISCONNECT: MQTT-3.1.2-8 in both versions.
func willPublished(c *suite.C) spec.ID {
	if c.Version == spec.Version311 {
		return spec.V311_3_1_2_8
	}
	return spec.V5_3_1_2_8
}

// AwaitWill waits at sub for the will on topic. A will that never comes is MQTT-3.1.2-8's
// failure; checks of the other rules of wills use it for the step they build on and cite
// MQTT-3.1.2-8.
func AwaitWill(c *suite.C, sub *wire.Conn, topic, payload string) *packet.Publish {
	p, err := sub.ExpectPacket(c.Timeout(), wire.PublishWith(topic, []byte(payload)))
	if err != nil {
		c.For(willPublished(c)).Failf("the will on %q: %v", topic, err)
	}
	return p.(*packet.Publish)
}
