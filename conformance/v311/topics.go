package v311

import (
	"strings"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// badFilter subscribes to an invalid topic filter and requires the broker to close the
// connection without granting it. MQTT 3.1.1 makes an invalid filter a protocol violation
// ([MQTT-4.8.0-1]: close the connection); it defines no SUBACK code for it.
func badFilter(c *suite.C, filter string) {
	c.Step("SUBSCRIBE to the invalid filter %q", filter)
	conn, _ := c.Connect("dev")
	c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 0}}}, packet.V311))
	c.AwaitClosed(conn)
	for _, p := range conn.Pending() {
		if sa, ok := p.(*packet.Suback); ok && len(sa.Codes) == 1 && sa.Codes[0] != packet.SubackFailure {
			c.Failf("the broker granted the invalid filter %q (SUBACK 0x%02X)", filter, byte(sa.Codes[0]))
		}
	}
}

// badTopic publishes to an invalid topic name (raw bytes of the topic field) and requires the
// broker to close the connection and deliver nothing to a subscriber of the check's topics.
func badTopic(c *suite.C, name string, topic []byte) {
	c.Step("PUBLISH to a topic name with %s", name)
	conn, _ := c.Connect("pub")
	raw := []byte{0x30, byte(2 + len(topic) + 1), byte(len(topic) >> 8), byte(len(topic))}
	raw = append(append(raw, topic...), 'x')
	c.TrySendRaw(conn, raw)
	c.AwaitClosed(conn)
}

var _ = describe("Topic names and topic filters", func() {
	suite.Must("matches the multi-level wildcard # against the parent level and every level below",
		ids(spec.V311_4_7_1_2), flows.MultiLevelWildcard)

	suite.Must("closes the connection on a # that is not alone in the last level",
		ids(spec.V311_4_7_1_2, spec.V311_4_8_0_1), func(c *suite.C) {
			badFilter(c, c.Topic("site#"))
			badFilter(c, c.Topic("#", "evt"))
		})

	suite.Must("matches the single-level wildcard + against exactly one level, empty levels included",
		ids(spec.V311_4_7_1_3), flows.SingleLevelWildcard)

	suite.Must("closes the connection on a + that does not fill a whole level",
		ids(spec.V311_4_7_1_3, spec.V311_4_8_0_1), func(c *suite.C) {
			badFilter(c, c.Topic("site+"))
			badFilter(c, c.Topic("+g1", "state"))
		})

	suite.Must("does not match topic names that start with $ against filters that start with a wildcard",
		ids(spec.V311_4_7_2_1), flows.DollarTopics)

	suite.Must("closes the connection on a zero-length topic name or topic filter",
		ids(spec.V311_4_7_3_1), func(c *suite.C) {
			badTopic(c, "no characters", nil)
			badFilter(c, "")
		})

	suite.Must("closes the connection on U+0000 in a topic name or topic filter",
		ids(spec.V311_4_7_3_2, spec.V311_1_5_3_2), func(c *suite.C) {
			badTopic(c, "U+0000", []byte(c.Topic("a\x00b")))
			badFilter(c, c.Topic("a\x00b"))
		})

	suite.Must("closes the connection on ill-formed UTF-8 in a topic name",
		ids(spec.V311_1_5_3_1), func(c *suite.C) {
			badTopic(c, "a UTF-16 surrogate (ED A0 80)", append([]byte(c.Topic()+"/"), 0xED, 0xA0, 0x80))
			badTopic(c, "an overlong encoding (C0 AF)", append([]byte(c.Topic()+"/"), 0xC0, 0xAF))
			badTopic(c, "a lone continuation byte (80)", append([]byte(c.Topic()+"/"), 0x80))
		})

	suite.Must("keeps U+FEFF (EF BB BF) in a topic name instead of stripping it",
		ids(spec.V311_1_5_3_3), flows.BOMKept)

	suite.Must("carries a topic name of 65,535 bytes, the longest that can be encoded",
		ids(spec.V311_4_7_3_3), func(c *suite.C) {
			prefix := c.Topic("")
			topic := prefix + strings.Repeat("L", 65535-len(prefix))
			conn := flows.Subscriber(c, "sub", 0, topic)
			p, _ := c.Connect("pub")
			c.Send(p, flows.Pub(topic, "long", 0, false))
			in := c.AwaitPublish(conn, wire.PublishUnder(prefix))
			c.Expect(len(in.Topic)).To(Equal(65535), "length of the delivered topic name")
			c.Expect(in.Topic).To(Equal(topic))
		})

	suite.Must("matches topic names character for character, without normalizing them",
		ids(spec.V311_4_7_3_4), flows.NoNormalization)
})
