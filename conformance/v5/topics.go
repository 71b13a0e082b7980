package v5

import (
	"fmt"

	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// badFilter subscribes to an invalid Topic Filter and requires the broker not to grant it. MQTT
// 5.0 lets it answer either way: a SUBACK with an error code for the filter (0x8F Topic Filter
// invalid, or another of 0x80 and above), or closing the connection, with or without a
// DISCONNECT carrying 0x81 or 0x82 first (section 4.13).
func badFilter(c *suite.C, filter string) {
	if problem := badSubscription(c, packet.Subscription{Filter: filter}); problem != "" {
		c.Failf("%s", problem)
	}
}

// badSubscription is badFilter for a subscription with options, saying what is wrong instead of
// failing.
func badSubscription(c *suite.C, s packet.Subscription) string {
	c.Step("SUBSCRIBE to the invalid %q with options 0x%02X", s.Filter, s.Options())
	conn, _ := c.Connect("dev")
	c.TrySendRaw(conn, packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{s}}, v5))
	got, err := conn.ExpectPacket(c.Timeout(), wire.SubackFor(1))
	if err != nil {
		return closedProblem(c, conn, packet.TypeSuback)
	}
	if sa := got.(*packet.Suback); len(sa.Codes) != 1 || !sa.Codes[0].IsError() {
		return fmt.Sprintf("the broker granted %q with options 0x%02X (%s)", s.Filter, s.Options(), wire.Describe(sa))
	}
	return ""
}

// badTopic publishes to an invalid Topic Name (raw bytes of the topic field, no properties) and
// requires the broker to close the connection.
func badTopic(c *suite.C, name string, topic []byte) {
	c.Step("PUBLISH to a Topic Name with %s", name)
	conn, _ := c.Connect("pub")
	c.TrySendRaw(conn, rawPublish(topic, nil, []byte("x")))
	closedWithout(c, conn)
}

// rawPublish builds a QoS 0 PUBLISH from raw fields, for names the codec's strings would not
// carry as they are: topic (any bytes), the encoded properties (without their length) and the
// payload.
func rawPublish(topic, props, payload []byte) []byte {
	body := []byte{byte(len(topic) >> 8), byte(len(topic))}
	body = append(body, topic...)
	body = packet.AppendVarint(body, len(props))
	body = append(append(body, props...), payload...)
	return append(packet.AppendVarint([]byte{0x30}, len(body)), body...)
}

// stringProp encodes a string property (identifier, two-byte length, bytes).
func stringProp(id packet.PropID, s []byte) []byte {
	return append([]byte{byte(id), byte(len(s) >> 8), byte(len(s))}, s...)
}

var _ = describe("Topic names, topic filters and strings", func() {
	suite.Must("matches the multi-level wildcard # against the parent level and every level below",
		ids(spec.V5_4_7_1_1), func(c *suite.C) {
			c.Require(suite.FeatureWildcards)
			flows.MultiLevelWildcard(c)
		})

	suite.Must("does not grant a Topic Filter whose # is not alone in the last level",
		ids(spec.V5_4_7_1_1), func(c *suite.C) {
			badFilter(c, c.Topic("site#"))
			badFilter(c, c.Topic("#", "evt"))
		})

	suite.Must("matches the single-level wildcard + against exactly one level, empty levels included",
		ids(spec.V5_4_7_1_2), func(c *suite.C) {
			c.Require(suite.FeatureWildcards)
			flows.SingleLevelWildcard(c)
		})

	suite.Must("does not grant a Topic Filter whose + does not fill a whole level",
		ids(spec.V5_4_7_1_2), func(c *suite.C) {
			badFilter(c, c.Topic("site+"))
			badFilter(c, c.Topic("+g1", "state"))
		})

	suite.Must("does not match Topic Names that start with $ against filters that start with a wildcard",
		ids(spec.V5_4_7_2_1), func(c *suite.C) {
			c.Require(suite.FeatureWildcards)
			flows.DollarTopics(c)
		})

	suite.Must("closes the connection on a zero-length Topic Name without a Topic Alias, and refuses a zero-length Topic Filter",
		ids(spec.V5_4_7_3_1), func(c *suite.C) {
			badTopic(c, "no characters and no Topic Alias", nil)
			badFilter(c, "")
		})

	suite.Must("closes the connection on U+0000 in a Topic Name and refuses it in a Topic Filter",
		ids(spec.V5_4_7_3_2, spec.V5_1_5_4_2), func(c *suite.C) {
			badTopic(c, "U+0000", []byte(c.Topic("a\x00b")))
			badFilter(c, c.Topic("a\x00b"))
		})

	suite.Must("closes the connection on ill-formed UTF-8 in a string property",
		ids(spec.V5_1_5_4_1), func(c *suite.C) {
			for _, tc := range []struct {
				name  string
				props []byte
			}{
				{"a Content Type holding a UTF-16 surrogate (ED A0 80)", stringProp(packet.PropContentType, []byte{'a', 0xED, 0xA0, 0x80})},
				{"a Response Topic holding a lone continuation byte (80)", stringProp(packet.PropResponseTopic, []byte{'r', 0x80})},
			} {
				c.Step("PUBLISH with %s", tc.name)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, rawPublish([]byte(c.Topic("s")), tc.props, []byte("x")))
				closedWithout(c, conn)
			}
		})

	suite.Must("closes the connection on a User Property whose name or value is not a valid UTF-8 string",
		ids(spec.V5_1_5_7_1), func(c *suite.C) {
			for _, tc := range []struct {
				name      string
				key, data []byte
			}{
				{"a name holding a surrogate", []byte{'k', 0xED, 0xB0, 0x80}, []byte("v")},
				{"a value holding U+0000", []byte("k"), []byte{'v', 0x00}},
			} {
				c.Step("PUBLISH with a User Property with %s", tc.name)
				prop := []byte{byte(packet.PropUserProperty), 0, byte(len(tc.key))}
				prop = append(append(prop, tc.key...), 0, byte(len(tc.data)))
				prop = append(prop, tc.data...)
				conn, _ := c.Connect("pub")
				c.TrySendRaw(conn, rawPublish([]byte(c.Topic("s")), prop, []byte("x")))
				closedWithout(c, conn)
			}
		})

	suite.Must("keeps U+FEFF (EF BB BF) in a Topic Name instead of stripping it",
		ids(spec.V5_1_5_4_3), flows.BOMKept)

	suite.Must("matches Topic Names character for character, without normalizing them",
		ids(spec.V5_4_7_3_4), flows.NoNormalization)
})
