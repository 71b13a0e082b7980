package flows

import (
	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
)

// MultiLevelWildcard is the check that # matches the parent level and every level below, and
// nothing else.
func MultiLevelWildcard(c *suite.C) {
	conn := Subscriber(c, "sub", 0, c.Topic("site", "#"))
	p, _ := c.Connect("pub")
	for _, t := range []string{c.Topic("site"), c.Topic("site", "g1"), c.Topic("site", "g1", "evt", "card")} {
		c.Send(p, Pub(t, "x", 0, false))
		c.AwaitPublish(conn, wire.PublishOn(t))
	}
	c.Send(p, Pub(c.Topic("sites"), "x", 0, false))
	c.AwaitNothing(conn, wire.PublishOn(c.Topic("sites")))
}

// SingleLevelWildcard is the check that + matches exactly one level, empty levels included.
func SingleLevelWildcard(c *suite.C) {
	conn := Subscriber(c, "sub", 0, c.Topic("site", "+", "state"), c.Topic("door", "+"))
	p, _ := c.Connect("pub")
	for _, t := range []string{c.Topic("site", "g1", "state"), c.Topic("site", "", "state"), c.Topic("door", "")} {
		c.Send(p, Pub(t, "x", 0, false))
		c.AwaitPublish(conn, wire.PublishOn(t))
	}
	for _, t := range []string{c.Topic("site", "g1", "x", "state"), c.Topic("site", "state"), c.Topic("door")} {
		c.Send(p, Pub(t, "x", 0, false))
	}
	c.AwaitNothing(conn, wire.PublishUnder(c.Topic()))
}

// DollarTopics is the check that topic names starting with $ do not match filters starting with
// a wildcard. A broker that does not route client messages on $ topics at all makes the rule
// unobservable: the check is then "not supported".
func DollarTopics(c *suite.C) {
	dollar := "$gh" + c.Unique() + "/state"
	exact := Subscriber(c, "exact", 0, dollar)
	wild := Subscriber(c, "wild", 0, "#", "+/state")
	p, _ := c.Connect("pub")
	c.Send(p, Pub(dollar, "x", 0, false))
	if _, err := exact.ExpectPacket(c.Timeout(), wire.PublishOn(dollar)); err != nil {
		c.NotSupported("the broker does not route client messages on $ topics (%v), so the wildcard rule cannot be observed", err)
	}
	c.AwaitNothing(wild, wire.PublishOn(dollar))
}

// BOMKept is the check that U+FEFF (EF BB BF) in a topic name is a character like any other: the
// broker neither strips nor skips it.
func BOMKept(c *suite.C) {
	topic := c.Topic("\uFEFFstate")
	plain := c.Topic("state")
	conn := Subscriber(c, "sub", 0, topic, plain)
	p, _ := c.Connect("pub")
	c.Send(p, Pub(topic, "bom", 0, false))
	in := c.AwaitPublish(conn, wire.PublishUnder(c.Topic()))
	c.Expect(in.Topic).To(gomega.Equal(topic), "Topic Name as delivered")
}

// NoNormalization is the check that topic names match character for character: no Unicode
// normalization, no case folding, empty levels kept.
func NoNormalization(c *suite.C) {
	composed := c.Topic("caf\u00e9")    // é as one code point
	decomposed := c.Topic("cafe\u0301") // e and a combining acute accent
	conn := Subscriber(c, "sub", 0, composed, c.Topic("Gate"), c.Topic("a", "b"))
	p, _ := c.Connect("pub")
	for _, t := range []string{decomposed, c.Topic("gate"), c.Topic("a", "", "b"), c.Topic("a", "b", "")} {
		c.Send(p, Pub(t, "x", 0, false))
	}
	c.AwaitNothing(conn, wire.PublishUnder(c.Topic()))
	c.Send(p, Pub(composed, "x", 0, false))
	in := c.AwaitPublish(conn, wire.PublishUnder(c.Topic()))
	c.Expect(in.Topic).To(gomega.Equal(composed))
}
