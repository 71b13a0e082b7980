package auth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

const fixtureACL = "../../fixtures/auth/acl.conf"

func anon(clientID string) Identity { return Identity{ClientID: clientID} }

func as(username, clientID string) Identity {
	return Identity{ClientID: clientID, Username: username, HasUsername: true}
}

func (a Access) short() string { return a.String() }

type aclCase struct {
	id     Identity
	topic  string
	access Access
	want   bool
}

func (c aclCase) String() string {
	who := "anonymous"
	if c.id.HasUsername {
		who = "user " + strconv.Quote(c.id.Username)
	}
	return fmt.Sprintf("%s (client %q) %s %q", who, c.id.ClientID, c.access.short(), c.topic)
}

func runACL(t *testing.T, acl ACL, cases []aclCase) {
	t.Helper()
	for _, c := range cases {
		if got := acl.Allow(c.id, c.topic, c.access); got != c.want {
			t.Errorf("%v: allowed %v, want %v", c, got, c.want)
		}
	}
}

func TestACLFixtureDecisions(t *testing.T) {
	acl, err := LoadACLFile(fixtureACL)
	if err != nil {
		t.Fatal(err)
	}
	gate01 := as("gate-01", "gate-01")
	runACL(t, acl, []aclCase{
		// Anonymous lines.
		{anon("dash"), "acs/site-1/gate/gate-01/status", Read, true},
		{anon("dash"), "acs/site-1/gate/gate-01/status", Write, false},
		{anon("dash"), "acs/site-1/gate/gate-01/state", Read, false},
		{anon("dash"), "acs/site-1/gate/+/status", Subscribe, true},
		{anon("dash"), "acs/+/+/+/status", Subscribe, true},
		{anon("dash"), "acs/#", Subscribe, false},
		{anon("dash"), "acs/site-1/gate/gate-01/#", Subscribe, false},
		// A user block with a deny line.
		{as("backoffice", "bo"), "acs/site-1/gate/gate-01/cmd/open", Write, true},
		{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/card", Read, true},
		{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/charge", Read, false},
		{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/charge", Write, false},
		{as("backoffice", "bo"), "acs/+/gate/#", Subscribe, true},
		{as("backoffice", "bo"), "acs/#", Subscribe, true}, // the deny covers part only: delivery filters
		{as("backoffice", "bo"), "acs/+/gate/+/evt/charge", Subscribe, false},
		{as("backoffice", "bo"), "acs/site-9/gate/g/evt/charge", Subscribe, false},
		{as("backoffice", "bo"), "billing/x", Read, false},
		// Read-only and write-only lines.
		{as("billing", "bill"), "acs/site-2/gate/g-7/evt/charge", Read, true},
		{as("billing", "bill"), "acs/site-2/gate/g-7/evt/charge", Write, false},
		{as("billing", "bill"), "billing/invoices/2026", Write, true},
		{as("billing", "bill"), "billing/#", Subscribe, false}, // write access does not let it subscribe
		{as("billing", "bill"), "acs/site-2/gate/g-7/status", Read, false},
		// Covering: "acs/site-1/#" does not cover "acs/#".
		{as("installer", "inst"), "acs/#", Subscribe, false},
		{as("installer", "inst"), "acs/site-1/#", Subscribe, true},
		{as("installer", "inst"), "acs/site-1/+/+/status", Subscribe, true},
		{as("installer", "inst"), "acs/site-1/gate/gate-01/cmd/open", Write, true},
		{as("installer", "inst"), "acs/site-1/gate/gate-01/state", Write, false},
		// Patterns with %c.
		{gate01, "acs/site-1/gate/gate-01/state", Write, true},
		{gate01, "acs/site-1/gate/gate-01/cmd/open/ack", Write, true},
		{gate01, "acs/site-1/gate/gate-02/state", Write, false},
		{gate01, "acs/site-1/gate/gate-01/cmd/open", Read, true},
		{gate01, "acs/site-1/gate/gate-02/cmd/open", Read, false},
		{gate01, "acs/site-1/gate/gate-01/cmd/+", Subscribe, true},
		{gate01, "$share/g/acs/site-1/gate/gate-01/cmd/#", Subscribe, true},
		{gate01, "acs/site-1/gate/+/cmd/#", Subscribe, false},
		// Patterns with %u need a user name.
		{gate01, "devices/gate-01/config", Write, true},
		{anon("gate-01"), "devices/gate-01/config", Write, false},
		{anon("gate-01"), "devices/%u/config", Write, false},            // %u is not left literal
		{anon("gate-01"), "acs/site-1/gate/gate-01/state", Write, true}, // %c works without a user name
		// A client id with a wildcard must not widen a pattern.
		{as("intruder", "+"), "acs/site-1/gate/x/state", Write, false},
		{as("intruder", "#"), "acs/site-1/gate/x/cmd/open", Read, false},
		{as("gate-01", "gate-01"), "acs/site-1/gate/gate-01/state", Write, true},
		{as("a+b", "dev"), "acs/site-1/gate/dev/state", Write, false},
	})
}

func TestACLOrderAndPrecedence(t *testing.T) {
	acl := loadACL(t, `
user dave
topic readwrite devices/#
topic deny devices/+/secret
user erin
topic readwrite shared/#
topic deny shared/locked
pattern deny devices/%c/locked
pattern readwrite devices/%c/#
topic readwrite after/pattern
`)
	runACL(t, acl, []aclCase{
		// A grant in the user's own list is decided before any pattern, deny patterns included.
		{as("dave", "dev2"), "devices/dev2/locked", Write, true},
		// Deny lines win within a list, wherever they stand.
		{as("dave", "dev2"), "devices/x/secret", Write, false},
		{as("erin", "e"), "shared/locked", Write, false},
		{as("erin", "e"), "shared/open", Write, true},
		// Patterns: deny wins over a later grant.
		{as("carol", "dev3"), "devices/dev3/locked", Write, false},
		{as("carol", "dev3"), "devices/dev3/x", Write, true},
		// A topic line after patterns still belongs to the last user block.
		{as("erin", "e"), "after/pattern", Read, true},
		{as("dave", "d"), "after/pattern", Read, false},
		// No anonymous lines: anonymous clients get the patterns only.
		{anon("dev4"), "devices/dev4/x", Read, true},
		{anon("dev4"), "shared/open", Read, false},
	})
}

func TestACLDollarTopics(t *testing.T) {
	acl := loadACL(t, `
user ops
topic read #
topic read $SYS/broker/#
user all
topic +/#
`)
	runACL(t, acl, []aclCase{
		{as("ops", "o"), "acs/x", Read, true},
		{as("ops", "o"), "$SYS/broker/uptime", Read, true},
		{as("ops", "o"), "$SYS/other", Read, false}, // '#' does not reach '$' topics (MQTT-4.7.2-1)
		{as("ops", "o"), "$SYS/#", Subscribe, false},
		{as("ops", "o"), "$SYS/broker/+", Subscribe, true},
		{as("ops", "o"), "#", Subscribe, true},
		{as("ops", "o"), "+/x", Subscribe, true},
		{as("all", "a"), "$SYS/x", Write, false},
		{as("all", "a"), "a", Write, true}, // "+/#" matches the parent level
		{as("all", "a"), "a/b/c", Write, true},
	})
}

func TestACLEmptyAndMissingLists(t *testing.T) {
	acl := loadACL(t, "# nothing granted to anyone\nuser alone\n")
	runACL(t, acl, []aclCase{
		{as("alone", "x"), "a", Read, false},
		{anon("x"), "a", Write, false},
		{as("stranger", "x"), "a", Subscribe, false},
	})
}

func TestCovers(t *testing.T) {
	cases := []struct {
		acl, req string
		want     bool
	}{
		{"acs/#", "acs/+/gate/#", true},
		{"acs/#", "acs", true},
		{"acs/#", "acs/#", true},
		{"acs/site/+/status", "acs/#", false},
		{"acs/+/gate/#", "acs/site/gate", true},
		{"acs/+/gate/#", "acs/#", false},
		{"a/+", "a/+", true},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a/#", false},
		{"a/+", "a", false},
		{"a/+/#", "a", false},
		{"a/b", "a/+", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"#", "a/b", true},
		{"#", "#", true},
		{"#", "+/#", true},
		{"#", "$SYS/#", false},
		{"+/#", "$SYS/a", false},
		{"$SYS/#", "$SYS/a/b", true},
		{"$SYS/#", "$SYS", true},
		{"+", "+", true},
		{"+", "#", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"A/b", "a/b", false},
	}
	for _, c := range cases {
		if got := covers(c.acl, c.req); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.acl, c.req, got, c.want)
		}
		if got := covers([]byte(c.acl), c.req); got != c.want {
			t.Errorf("covers([]byte %q, %q) = %v, want %v", c.acl, c.req, got, c.want)
		}
	}
}

func TestACLFileErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		content string
		line    int
		want    string
	}{
		{"user a\ntopic read\n", 2, "topic read without a topic"},
		{"pattern deny\n", 1, "pattern deny without a topic"},
		{"# c\nuser\n", 2, "user line without a user name"},
		{"topic read a/#/b\n", 1, "MQTT-4.7.1-2 in 3.1.1, MQTT-4.7.1-1 in 5.0"},
		{"topic write a/b+\n", 1, "MQTT-4.7.1-3 in 3.1.1, MQTT-4.7.1-2 in 5.0"},
		{"\n\n\nallow a/b\n", 4, `unknown keyword "allow"`},
		{"topic\n", 1, "topic line without a topic"},
	}
	for _, c := range cases {
		p := writeFile(t, "acl", c.content)
		_, err := LoadACLFile(p)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Line != c.line {
			t.Errorf("%q: error %v, want a *FileError at line %d", c.content, err, c.line)
			continue
		}
		if prefix := p + ":" + strconv.Itoa(c.line) + ": "; !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want prefix %q and %q", c.content, err, prefix, c.want)
		}
	}
}

func TestACLSyntaxDetails(t *testing.T) {
	acl := loadACL(t, "  # indented comment\r\ntopic   read   with space/and more  \r\n\tuser  x y\ntopic a/b\n")
	runACL(t, acl, []aclCase{
		{anon("c"), "with space/and more", Read, true}, // the topic is the rest of the line
		{anon("c"), "with space/and more", Write, false},
		{as("x y", "c"), "a/b", Write, true}, // user names may contain spaces; no keyword = readwrite
		{as("x y", "c"), "a/b", Read, true},
	})
}

func TestAllowDoesNotAllocate(t *testing.T) {
	acl, err := LoadACLFile(fixtureACL)
	if err != nil {
		t.Fatal(err)
	}
	id := as("gate-01", "gate-01")
	allocs := testing.AllocsPerRun(100, func() {
		if !acl.Allow(id, "acs/site-1/gate/gate-01/cmd/open", Read) {
			t.Fatal("denied")
		}
	})
	if allocs != 0 {
		t.Fatalf("Allow allocated %.1f times per call", allocs)
	}
}

func BenchmarkAllowPattern(b *testing.B) {
	acl, err := LoadACLFile(fixtureACL)
	if err != nil {
		b.Fatal(err)
	}
	id := as("gate-01", "gate-01")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		acl.Allow(id, "acs/site-1/gate/gate-01/cmd/open", Read)
	}
}

func loadACL(t *testing.T, content string) *ACLFile {
	t.Helper()
	acl, err := LoadACLFile(writeFile(t, "acl", content))
	if err != nil {
		t.Fatal(err)
	}
	return acl
}
