package spec

import (
	"errors"
	"strings"
	"testing"
)

// good is a valid one-statement catalogue: header, then first. Line 4 holds "- id:", with the
// key at column 5.
const (
	header = `version: "5.0"
source: "a test"
statements:
`
	first = `  - id: MQTT-3.3.2-2
    section: "3.3.2.1"
    level: MUST NOT
    binds: sender
    summary: "No wildcards in a Topic Name."
    testable: both
`
	good = header + first
)

func TestParseGood(t *testing.T) {
	list, err := parse("t.yaml", []byte(good), Version5)
	if err != nil {
		t.Fatal(err)
	}
	want := Statement{ID: "MQTT-3.3.2-2", Version: Version5, Section: "3.3.2.1", Level: LevelMustNot,
		Binds: BindsSender, Summary: "No wildcards in a Topic Name.", Testable: SideBoth}
	if len(list) != 1 || list[0].ID != want.ID || list[0].Section != want.Section || list[0].Level != want.Level ||
		list[0].Binds != want.Binds || list[0].Summary != want.Summary || list[0].Testable != want.Testable ||
		list[0].Version != want.Version || list[0].WhyNot != "" || len(list[0].PrintedAs) != 0 {
		t.Fatalf("parsed %+v, want %+v", list, want)
	}
}

// edit returns good with the line holding old replaced by repl (which may span lines or be
// empty to delete it).
func edit(t *testing.T, old, repl string) string {
	t.Helper()
	if !strings.Contains(good, old) {
		t.Fatalf("good has no %q", old)
	}
	return strings.Replace(good, old, repl, 1)
}

// second is a second statement to append to good.
const second = `  - id: MQTT-3.3.2-3
    section: "3.3.2.1"
    level: MUST
    binds: server
    summary: "Topic Name matches the filter."
    testable: server
`

func TestParseErrorsNamePlace(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole first line of the error must start with this
		says string // and contain this
	}{
		{"unknown key", edit(t, "    level: MUST NOT\n", "    levle: MUST NOT\n"),
			"t.yaml:6:5: ", `unknown field "levle"`},
		{"unknown top-level key", "title: x\n" + good, "t.yaml:1:1: ", `unknown field "title"`},
		{"number where a string goes", edit(t, `section: "3.3.2.1"`, "section: 3.10"),
			"t.yaml:5:14: ", "want a string, found a number"},
		{"list where a string goes", edit(t, `summary: "No wildcards in a Topic Name."`, "summary: [a, b]"),
			"t.yaml:8:14: ", "want a string, found a list"},
		{"boolean where a string goes", edit(t, "testable: both", "testable: true"),
			"t.yaml:9:15: ", "want a string, found a boolean"},
		{"statements not a list", "version: \"5.0\"\nsource: x\nstatements:\n  id: MQTT-3.3.2-2\n",
			"t.yaml:4:5: ", "mapping was used where sequence is expected"},
		{"statement not a mapping", "version: \"5.0\"\nsource: x\nstatements:\n  - MQTT-3.3.2-2\n",
			"t.yaml:4:5: ", "want a statement"},
		{"printed_as not a list", edit(t, "    testable: both\n", "    testable: both\n    printed_as: MQTT-3.3.2.2\n"),
			"t.yaml:10:17: ", "want a list of strings"},
		{"unterminated quote", edit(t, `summary: "No wildcards in a Topic Name."`, `summary: "No wildcards`),
			"t.yaml:8:14: ", "double-quoted"},
		{"duplicate key", edit(t, "    binds: sender\n", "    binds: sender\n    binds: server\n"),
			"t.yaml:8:5: ", `"binds" already defined`},
		{"empty file", "", "t.yaml:1:1: ", "want one YAML document"},
		{"wrong version", edit(t, `version: "5.0"`, `version: "3.1.1"`),
			"t.yaml:1:10: ", `version "3.1.1", want "5.0"`},
		{"missing version", edit(t, "version: \"5.0\"\n", ""), "t.yaml:1:1: ", "missing version"},
		{"missing source", edit(t, "source: \"a test\"\n", ""), "t.yaml:1:1: ", "missing source"},
		{"no statements", "version: \"5.0\"\nsource: x\nstatements: []\n", "t.yaml:1:1: ", "no statements"},
		{"malformed id", edit(t, "id: MQTT-3.3.2-2", "id: MQTT-3.3.2.2"),
			"t.yaml:4:9: ", `id "MQTT-3.3.2.2" is not of the form MQTT-a.b.c-n`},
		{"missing id", edit(t, "  - id: MQTT-3.3.2-2\n    section:", "  - section:"),
			"t.yaml:4:5: ", "statement without an id"},
		{"bad level", edit(t, "level: MUST NOT", "level: must not"),
			"t.yaml:6:12: ", `MQTT-3.3.2-2: level "must not" is not one of MUST, MUST NOT, SHOULD, SHOULD NOT, MAY`},
		{"bad binds", edit(t, "binds: sender", "binds: broker"),
			"t.yaml:7:12: ", `binds "broker" is not one of`},
		{"bad testable", edit(t, "testable: both", "testable: maybe"),
			"t.yaml:9:15: ", `testable "maybe" is not one of`},
		{"missing summary", edit(t, "    summary: \"No wildcards in a Topic Name.\"\n", ""),
			"t.yaml:4:5: ", "MQTT-3.3.2-2: missing summary"},
		{"summary over several lines", edit(t, `summary: "No wildcards in a Topic Name."`, "summary: |\n      One line.\n      Two lines."),
			"t.yaml:8:14: ", "several lines"},
		{"summary too long", edit(t, "No wildcards in a Topic Name.", strings.Repeat("Long. ", 60)),
			"t.yaml:8:14: ", "more than 320"},
		{"bad section", edit(t, `section: "3.3.2.1"`, `section: "3.3.2.1."`),
			"t.yaml:5:14: ", `section "3.3.2.1." is not a section number`},
		{"untestable without why_not", edit(t, "testable: both", "testable: none"),
			"t.yaml:9:15: ", "binds sender but is testable from none: say why in why_not"},
		{"why_not although testable from every bound side", edit(t, "    testable: both\n", "    testable: both\n    why_not: \"because\"\n"),
			"t.yaml:10:14: ", "why_not given"},
		{"duplicate id", good + strings.Replace(second, "MQTT-3.3.2-3", "MQTT-3.3.2-2", 1),
			"t.yaml:10:9: ", "MQTT-3.3.2-2 is listed twice (first at line 4)"},
		{"printed_as repeats another id", edit(t, "    testable: both\n", "    testable: both\n    printed_as: [MQTT-3.3.2-3]\n") + second,
			"t.yaml:11:9: ", "MQTT-3.3.2-3 is listed twice (first at line 10)"},
		{"printed_as not an MQTT ID", edit(t, "    testable: both\n", "    testable: both\n    printed_as: [3.3.2-2]\n"),
			"t.yaml:10:18: ", `printed_as "3.3.2-2" does not start with MQTT-`},
		{"out of order", header + second + first,
			"t.yaml:10:9: ", "MQTT-3.3.2-2 comes after MQTT-3.3.2-3: keep statements in specification order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("t.yaml", []byte(tt.src), Version5)
			if err == nil {
				t.Fatalf("no error for\n%s", tt.src)
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if !strings.HasPrefix(first, tt.want) || !strings.Contains(first, tt.says) {
				t.Errorf("error %q\nwant it to start %q and say %q", first, tt.want, tt.says)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "t.yaml" || e.Line < 1 || e.Column < 1 {
				t.Errorf("error %v is not a placed *spec.Error", err)
			}
		})
	}
}

// Every defect of a file is reported, each at its place, not only the first.
func TestParseReportsEveryDefect(t *testing.T) {
	src := strings.NewReplacer("level: MUST NOT", "level: SHALL", "binds: sender", "binds: anyone").Replace(good)
	_, err := parse("t.yaml", []byte(src), Version5)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "t.yaml:6:12: ") || !strings.HasPrefix(lines[1], "t.yaml:7:12: ") {
		t.Errorf("errors %q, want one at 6:12 and one at 7:12", lines)
	}
}

// The embedded files are named by their path in the repository, so that an error can be opened.
func TestEmbeddedFileNames(t *testing.T) {
	for _, v := range Versions() {
		f, ok := files[v]
		if !ok || !strings.HasPrefix(f.name, "conformance/spec/mqtt-") || len(f.data) == 0 {
			t.Errorf("version %s: file %q with %d bytes", v, f.name, len(f.data))
		}
		if _, err := parseFile(f, v); err != nil {
			t.Errorf("embedded %s: %v", f.name, err)
		}
		// A file checked against the other version is refused at its version line.
		other := Version311
		if v == Version311 {
			other = Version5
		}
		if _, err := parseFile(f, other); err == nil || !strings.Contains(err.Error(), f.name+":") {
			t.Errorf("%s read as %s: %v", f.name, other, err)
		}
	}
}
