package spec

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// countsTable is the table of counts README.md shows, computed from the catalogue.
func countsTable() (string, error) {
	type row struct {
		name string
		f    func(Statement) bool
	}
	is := func(field func(Statement) string, v string) func(Statement) bool {
		return func(s Statement) bool { return field(s) == v }
	}
	level := func(s Statement) string { return s.Level }
	bound := func(s Statement) string { return s.Binds }
	side := func(s Statement) string { return s.Testable }
	rows := []row{
		{"statements", func(Statement) bool { return true }},
		{"level MUST", is(level, LevelMust)},
		{"level MUST NOT", is(level, LevelMustNot)},
		{"level SHOULD", is(level, LevelShould)},
		{"level SHOULD NOT", is(level, LevelShouldNot)},
		{"level MAY", is(level, LevelMay)},
		{"binds the server", is(bound, BindsServer)},
		{"binds the client", is(bound, BindsClient)},
		{"binds both", is(bound, BindsBoth)},
		{"binds the sender", is(bound, BindsSender)},
		{"binds the receiver", is(bound, BindsReceiver)},
		{"testable against a server", func(s Statement) bool { return s.TestableFrom(SideServer) }},
		{"testable against a client", func(s Statement) bool { return s.TestableFrom(SideClient) }},
		{"testable against both", is(side, SideBoth)},
		{"testable against neither", is(side, SideNone)},
	}
	var b strings.Builder
	b.WriteString("| | MQTT 3.1.1 | MQTT 5.0 |\n|---|---:|---:|\n")
	lists := map[string][]Statement{}
	for _, v := range Versions() {
		list, err := Catalogue(v)
		if err != nil {
			return "", err
		}
		lists[v] = list
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", r.name)
		for _, v := range Versions() {
			n := 0
			for _, s := range lists[v] {
				if r.f(s) {
					n++
				}
			}
			fmt.Fprintf(&b, " %d |", n)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// README.md shows the counts of the catalogue as it is.
func TestReadmeCounts(t *testing.T) {
	want, err := countsTable()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show the current counts; replace its table with:\n%s", want)
	}
}
