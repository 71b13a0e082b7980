// Package spec is the catalogue of the normative statements of MQTT 3.1.1 and MQTT 5.0: every
// numbered statement ("[MQTT-x.y.z-n]") with the section it appears in, its requirement level,
// whom it binds, a summary in our own words and whether a conformance check can observe it on the
// wire. The catalogue is data (mqtt-3.1.1.yaml and mqtt-5.0.yaml, embedded in the binary); the Go
// constants in ids_v311.go and ids_v5.go are generated from it, so that a conformance check cannot
// cite a statement that does not exist:
//
//	It("refuses a wildcard in a topic name", Label(spec.Labels(spec.V5_3_3_2_2)...), func() { ... })
//
// Catalogue, Lookup and the methods of Statement answer questions about a statement at run time,
// for reports (the coverage matrix of statements against verdicts) and for label filters.
package spec

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

//go:generate go run ./internal/gen

// ID is a normative statement identifier as the specification writes it, e.g. "MQTT-3.3.2-2".
// The same ID can name different statements in 3.1.1 and 5.0: an ID means something only together
// with a version.
type ID string

// String returns the ID as written in the specification.
func (id ID) String() string { return string(id) }

// The versions the catalogue covers, as Catalogue and Lookup take them.
const (
	Version311 = "3.1.1"
	Version5   = "5.0"
)

// Versions lists the catalogued versions, oldest first.
func Versions() []string { return []string{Version311, Version5} }

// Requirement levels (RFC 2119 key words) a statement is written with. A statement that mixes
// key words has the level of its strongest obligation: MUST when it contains any MUST (a "MAY
// send CONNACK 0x84 and then MUST close" statement is MUST), MUST NOT when its only obligations
// are prohibitions.
const (
	LevelMust      = "MUST"
	LevelMustNot   = "MUST NOT"
	LevelShould    = "SHOULD"
	LevelShouldNot = "SHOULD NOT"
	LevelMay       = "MAY"
)

// Parties a statement binds (Statement.Binds). Sender and receiver bind whichever of Client and
// Server plays that part, so they bind both in practice; both is for statements naming Client and
// Server together.
const (
	BindsServer   = "server"
	BindsClient   = "client"
	BindsBoth     = "both"
	BindsSender   = "sender"
	BindsReceiver = "receiver"
)

// Where a statement can be observed (Statement.Testable): when testing a server (the suite plays
// the clients), when testing a client or device (the suite plays the server), both, or neither.
const (
	SideServer = "server"
	SideClient = "client"
	SideBoth   = "both"
	SideNone   = "none"
)

// Statement is one normative statement of one version of the specification.
type Statement struct {
	ID      ID     // e.g. "MQTT-3.3.2-2"
	Version string // Version311 or Version5
	Section string // the section the statement appears in, e.g. "3.3.2.1"
	Level   string // LevelMust, LevelMustNot, LevelShould, LevelShouldNot or LevelMay
	Binds   string // BindsServer, BindsClient, BindsBoth, BindsSender or BindsReceiver
	Summary string // what the statement requires, in our own words
	// Testable says from which side a conformance check can observe the statement on the wire:
	// SideServer, SideClient, SideBoth or SideNone.
	Testable string
	// WhyNot says why a side the statement binds cannot observe it (empty when every bound side
	// can).
	WhyNot string
	// PrintedAs lists other spellings of the ID that the specification itself prints, e.g.
	// "MQTT-3-8.3-4" for MQTT-3.8.3-4 in 3.1.1. Lookup accepts them too.
	PrintedAs []string
}

// Normative reports whether the statement is an absolute requirement (MUST or MUST NOT), as
// opposed to a recommendation (SHOULD, SHOULD NOT) or a permission (MAY).
func (s Statement) Normative() bool { return s.Level == LevelMust || s.Level == LevelMustNot }

// TestableFrom reports whether a check can observe the statement when testing the given side:
// "server" (the suite plays the clients of the server under test) or "client" (the suite plays the
// server of the client or device under test). Any other side is never testable.
func (s Statement) TestableFrom(side string) bool {
	switch side {
	case SideServer, SideClient:
		return s.Testable == side || s.Testable == SideBoth
	}
	return false
}

// Label is the statement's Ginkgo label: its ID. Specs that check the statement carry it, so that
// --label-filter selects them and reports can count verdicts per statement.
func (s Statement) Label() string { return string(s.ID) }

// Labels turns IDs into Ginkgo labels, one per ID, in the order given:
//
//	Label(spec.Labels(spec.V5_3_3_2_2, spec.V5_4_7_0_1)...)
func Labels(ids ...ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// VersionLabel is the Ginkgo label that marks a spec as checking the given version, e.g.
// "mqtt-5.0". Statement IDs are shared between versions, so a spec carries both kinds of label.
func VersionLabel(version string) string { return "mqtt-" + version }

// catalogue is one version's statements, parsed once.
type catalogue struct {
	list  []Statement
	index map[ID]int // ID and every PrintedAs spelling to the position in list
}

// loaded holds the result of parsing each embedded file; sync.OnceValues makes parsing lazy and
// safe for concurrent first use.
var loaded = map[string]func() (*catalogue, error){
	Version311: sync.OnceValues(func() (*catalogue, error) { return load(Version311) }),
	Version5:   sync.OnceValues(func() (*catalogue, error) { return load(Version5) }),
}

func load(version string) (*catalogue, error) {
	list, err := parseFile(files[version], version)
	if err != nil {
		return nil, err
	}
	c := &catalogue{list: list, index: make(map[ID]int, len(list))}
	for i, s := range list {
		c.index[s.ID] = i
		for _, p := range s.PrintedAs {
			c.index[ID(p)] = i
		}
	}
	return c, nil
}

func get(version string) (*catalogue, error) {
	f, ok := loaded[version]
	if !ok {
		return nil, fmt.Errorf("spec: unknown MQTT version %q (catalogued: %s)", version,
			strings.Join(Versions(), ", "))
	}
	return f()
}

// Catalogue returns every statement of the version ("3.1.1" or "5.0") in specification order.
// The slice is the caller's to keep or change. An error means the version is unknown or the
// embedded file is defective (a test of this package guards against the latter).
func Catalogue(version string) ([]Statement, error) {
	c, err := get(version)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, len(c.list))
	for i, s := range c.list {
		s.PrintedAs = append([]string(nil), s.PrintedAs...)
		out[i] = s
	}
	return out, nil
}

// MustCatalogue is Catalogue for callers that cannot go on without it; it panics on error.
func MustCatalogue(version string) []Statement {
	list, err := Catalogue(version)
	if err != nil {
		panic(err)
	}
	return list
}

// Lookup finds the statement of the version with the given ID, or with an ID spelled the way the
// specification misprints it (Statement.PrintedAs). It reports false for an unknown version or ID.
func Lookup(version string, id ID) (Statement, bool) {
	c, err := get(version)
	if err != nil {
		return Statement{}, false
	}
	i, ok := c.index[id]
	if !ok {
		return Statement{}, false
	}
	s := c.list[i]
	s.PrintedAs = append([]string(nil), s.PrintedAs...)
	return s, true
}

// IDs returns the IDs of the version in specification order.
func IDs(version string) ([]ID, error) {
	c, err := get(version)
	if err != nil {
		return nil, err
	}
	out := make([]ID, len(c.list))
	for i, s := range c.list {
		out[i] = s.ID
	}
	return out, nil
}

// Less orders IDs as the specification does: by section number, then statement number, comparing
// each number as a number (MQTT-3.1.2-9 before MQTT-3.1.2-10, MQTT-3.9.3-1 before
// MQTT-3.10.1-1). IDs that do not parse sort after those that do, by their text.
func Less(a, b ID) bool {
	na, oka := numbers(a)
	nb, okb := numbers(b)
	switch {
	case oka && okb:
		for i := 0; i < len(na) && i < len(nb); i++ {
			if na[i] != nb[i] {
				return na[i] < nb[i]
			}
		}
		return len(na) < len(nb)
	case oka != okb:
		return oka
	}
	return a < b
}

// SortIDs sorts ids in specification order (see Less).
func SortIDs(ids []ID) { sort.Slice(ids, func(i, j int) bool { return Less(ids[i], ids[j]) }) }

// numbers splits "MQTT-3.1.2-10" into 3, 1, 2, 10. It accepts only the well-formed shape
// MQTT-a.b.c-n (see wellFormed).
func numbers(id ID) ([]int, bool) {
	if !wellFormed(string(id)) {
		return nil, false
	}
	rest := strings.TrimPrefix(string(id), "MQTT-")
	sec, n, _ := strings.Cut(rest, "-")
	var out []int
	for _, part := range append(strings.Split(sec, "."), n) {
		v := 0
		for _, c := range part {
			v = v*10 + int(c-'0')
		}
		out = append(out, v)
	}
	return out, true
}

// wellFormed reports whether s has the shape of every ID in the appendices of both versions:
// "MQTT-", three dot-separated section numbers, "-", a statement number, with no leading zeros
// and a statement number of at least 1.
func wellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, "MQTT-")
	if !ok {
		return false
	}
	sec, n, ok := strings.Cut(rest, "-")
	if !ok || !number(n) || n == "0" {
		return false
	}
	parts := strings.Split(sec, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if !number(p) {
			return false
		}
	}
	return parts[0] != "0"
}

// number reports whether s is a decimal number without a leading zero.
func number(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
