package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// mustList loads a version or stops the test.
func mustList(t *testing.T, version string) []Statement {
	t.Helper()
	list, err := Catalogue(version)
	if err != nil {
		t.Fatalf("Catalogue(%q): %v", version, err)
	}
	return list
}

// chapter is the first number of an ID: 3 for MQTT-3.1.2-4.
func chapter(id ID) int {
	n, ok := numbers(id)
	if !ok {
		return -1
	}
	return n[0]
}

// The counts come from the appendices themselves; README.md says how they were cross-checked.
func TestCounts(t *testing.T) {
	tests := []struct {
		version   string
		total     int
		chapters  map[int]int
		misprints int // statements whose ID the standard also prints in a malformed way
	}{
		// Appendix B of 3.1.1 has 141 rows. Two print their ID malformed (MQTT-3.1.2.7 and
		// MQTT-3-8.3-4), so the appendix holds exactly 139 well-formed IDs.
		{Version311, 141, map[int]int{1: 3, 2: 9, 3: 95, 4: 26, 6: 4, 7: 4}, 2},
		// Appendix B of 5.0 has 251 rows, all well-formed; the body prints one of them as
		// MQTT-4.2-1.
		{Version5, 251, map[int]int{1: 5, 2: 7, 3: 175, 4: 60, 6: 4}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			list := mustList(t, tt.version)
			if len(list) != tt.total {
				t.Errorf("%d statements, want %d", len(list), tt.total)
			}
			got := map[int]int{}
			misprints := 0
			for _, s := range list {
				got[chapter(s.ID)]++
				for _, p := range s.PrintedAs {
					if !wellFormed(p) {
						misprints++
						break
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.chapters) {
				t.Errorf("statements per chapter %v, want %v", got, tt.chapters)
			}
			if misprints != tt.misprints {
				t.Errorf("%d statements with a misprinted ID, want %d", misprints, tt.misprints)
			}
			if wf := len(list) - misprints; tt.version == Version311 && wf != 139 {
				t.Errorf("%d well-formed IDs as printed, want the 139 of appendix B", wf)
			}
		})
	}
}

func TestIDsWellFormedUniqueAndOrdered(t *testing.T) {
	for _, v := range Versions() {
		t.Run(v, func(t *testing.T) {
			seen := map[ID]bool{}
			var prev ID
			for _, s := range mustList(t, v) {
				if !wellFormed(string(s.ID)) {
					t.Errorf("%s: not of the form MQTT-a.b.c-n", s.ID)
				}
				if seen[s.ID] {
					t.Errorf("%s: listed twice", s.ID)
				}
				seen[s.ID] = true
				for _, p := range s.PrintedAs {
					if seen[ID(p)] {
						t.Errorf("%s: printed spelling %s is also another statement's ID or spelling", s.ID, p)
					}
					seen[ID(p)] = true
				}
				if prev != "" && !Less(prev, s.ID) {
					t.Errorf("%s after %s: not in specification order", s.ID, prev)
				}
				if s.Version != v {
					t.Errorf("%s: Version %q, want %q", s.ID, s.Version, v)
				}
				prev = s.ID
			}
		})
	}
}

func TestFieldsValid(t *testing.T) {
	in := func(s string, set []string) bool {
		for _, x := range set {
			if s == x {
				return true
			}
		}
		return false
	}
	for _, v := range Versions() {
		t.Run(v, func(t *testing.T) {
			for _, s := range mustList(t, v) {
				if !in(s.Level, levels) {
					t.Errorf("%s: level %q", s.ID, s.Level)
				}
				if !in(s.Binds, binds) {
					t.Errorf("%s: binds %q", s.ID, s.Binds)
				}
				if !in(s.Testable, testable) {
					t.Errorf("%s: testable %q", s.ID, s.Testable)
				}
				if !sectionNumber(s.Section) {
					t.Errorf("%s: section %q", s.ID, s.Section)
				}
				if s.Summary == "" || len(s.Summary) > maxSummary || !strings.HasSuffix(s.Summary, ".") {
					t.Errorf("%s: summary %q: want one or two sentences ending with a period", s.ID, s.Summary)
				}
				if want := !covered(s.Binds, s.Testable); (s.WhyNot != "") != want {
					t.Errorf("%s: binds %s, testable %s, why_not %q", s.ID, s.Binds, s.Testable, s.WhyNot)
				}
			}
		})
	}
}

// sectionExceptions are the statements the specification places outside the section their
// number names. MQTT-4.7.0-1 is numbered for section 4.7 but sits in the text of 4.7.1, where
// 3.1.1 had the same statement as MQTT-4.7.1-1.
var sectionExceptions = map[string]string{
	Version5 + " MQTT-4.7.0-1": "4.7.1",
}

// The section of a statement is the one its number names, or a subsection of it: MQTT-3.3.2-2
// sits in 3.3.2 or below, MQTT-3.1.0-1 in 3.1 or below (a 0 in the number means "no subsection").
func TestSectionMatchesID(t *testing.T) {
	for _, v := range Versions() {
		t.Run(v, func(t *testing.T) {
			for _, s := range mustList(t, v) {
				if want, ok := sectionExceptions[v+" "+string(s.ID)]; ok {
					if s.Section != want {
						t.Errorf("%s: section %s, want %s", s.ID, s.Section, want)
					}
					continue
				}
				if want := idSection(s.ID); s.Section != want && !strings.HasPrefix(s.Section, want+".") {
					t.Errorf("%s: section %s is not %s or one of its subsections", s.ID, s.Section, want)
				}
			}
		})
	}
}

// idSection is the section an ID's number names: "3.3.2" for MQTT-3.3.2-2, "3.1" for
// MQTT-3.1.0-1, "6" for MQTT-6.0.0-1.
func idSection(id ID) string {
	n, _ := numbers(id)
	parts := []string{fmt.Sprint(n[0])}
	for _, x := range n[1:3] {
		if x == 0 {
			break
		}
		parts = append(parts, fmt.Sprint(x))
	}
	return strings.Join(parts, ".")
}

// Spot checks against the text of the standards: statements whose number, level or section is
// easy to get wrong, each read in the standard.
func TestKnownStatements(t *testing.T) {
	tests := []struct {
		version, id, section, level, binds, mention string
	}{
		{Version311, "MQTT-1.5.3-1", "1.5.3", LevelMust, BindsBoth, "UTF-8"},
		{Version311, "MQTT-3.1.2-7", "3.1.2.4", LevelMustNot, BindsServer, "Retained messages"},
		{Version311, "MQTT-3.1.2-24", "3.1.2.10", LevelMust, BindsServer, "Keep Alive"},
		{Version311, "MQTT-3.3.2-2", "3.3.2.1", LevelMustNot, BindsSender, "wildcard"},
		{Version311, "MQTT-3.8.3-4", "3.8.3", LevelMust, BindsServer, "malformed"},
		{Version311, "MQTT-4.8.0-1", "4.8", LevelMust, BindsBoth, "protocol violation"},
		{Version311, "MQTT-7.1.2-1", "7.1.2", LevelMust, BindsClient, "transport"},
		{Version5, "MQTT-1.5.5-1", "1.5.5", LevelMust, BindsSender, "Variable Byte Integer"},
		{Version5, "MQTT-3.1.2-24", "3.1.2.11.4", LevelMustNot, BindsServer, "Maximum Packet Size"},
		{Version5, "MQTT-3.1.3-12", "3.1.3.5", LevelMust, BindsClient, "User Name"},
		{Version5, "MQTT-3.2.2-8", "3.2.2.2", LevelMust, BindsServer, "Connect Reason Codes"},
		{Version5, "MQTT-3.3.2-2", "3.3.2.1", LevelMustNot, BindsSender, "wildcard"},
		{Version5, "MQTT-3.8.3-4", "3.8.3.1", LevelMustNot, BindsClient, "No Local"},
		{Version5, "MQTT-4.2.0-1", "4.2", LevelMust, BindsBoth, "transport"},
		{Version5, "MQTT-4.8.2-1", "4.8.2", LevelMust, BindsClient, "$share/"},
		{Version5, "MQTT-4.13.1-1", "4.13.1", LevelMust, BindsServer, "Malformed Packet"},
		{Version5, "MQTT-6.0.0-4", "6", LevelMust, BindsServer, "mqtt"},
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.id, func(t *testing.T) {
			s, ok := Lookup(tt.version, ID(tt.id))
			if !ok {
				t.Fatalf("not catalogued")
			}
			if s.Section != tt.section || s.Level != tt.level || s.Binds != tt.binds {
				t.Errorf("section %s, level %s, binds %s; want %s, %s, %s", s.Section, s.Level, s.Binds, tt.section, tt.level, tt.binds)
			}
			if !strings.Contains(s.Summary, tt.mention) {
				t.Errorf("summary %q does not mention %q", s.Summary, tt.mention)
			}
		})
	}
	// 5.0 has no numbered statement in chapter 7 (its conformance clauses are unnumbered), and
	// 3.1.1 has none in chapter 5.
	for _, v := range Versions() {
		for _, s := range mustList(t, v) {
			if c := chapter(s.ID); c == 5 || v == Version5 && c == 7 {
				t.Errorf("%s %s: the standard has no numbered statement in chapter %d", v, s.ID, c)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		version string
		id      ID
		found   ID // "" when Lookup must report false
	}{
		{Version311, "MQTT-3.3.2-2", "MQTT-3.3.2-2"},
		{Version5, "MQTT-3.3.2-2", "MQTT-3.3.2-2"},
		{Version311, "MQTT-3.1.2.7", "MQTT-3.1.2-7"}, // misprint in 3.1.1
		{Version311, "MQTT-3-8.3-4", "MQTT-3.8.3-4"}, // misprint in 3.1.1
		{Version5, "MQTT-4.2-1", "MQTT-4.2.0-1"},     // misprint in the body of 5.0
		{Version311, "MQTT-3.1.2-30", ""},            // 5.0 only
		{Version5, "MQTT-3.3.5-1", ""},               // 3.1.1 only
		{Version5, "MQTT-3.1.2.7", ""},               // the misprint is 3.1.1's
		{Version5, "mqtt-3.3.2-2", ""},
		{Version5, "", ""},
		{"3.1", "MQTT-3.3.2-2", ""},
		{"5", "MQTT-3.3.2-2", ""},
	}
	for _, tt := range tests {
		s, ok := Lookup(tt.version, tt.id)
		if ok != (tt.found != "") || s.ID != tt.found {
			t.Errorf("Lookup(%q, %q) = %s, %v; want %q", tt.version, tt.id, s.ID, ok, tt.found)
		}
	}
}

func TestUnknownVersion(t *testing.T) {
	for _, v := range []string{"", "3.1", "5", "v5.0", "3.1.1 "} {
		if _, err := Catalogue(v); err == nil || !strings.Contains(err.Error(), "unknown MQTT version") {
			t.Errorf("Catalogue(%q): err %v, want unknown MQTT version", v, err)
		}
		if _, err := IDs(v); err == nil {
			t.Errorf("IDs(%q): no error", v)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("MustCatalogue(\"4\") did not panic")
		}
	}()
	MustCatalogue("4")
}

// Callers own what Catalogue and Lookup return: changing it does not change the catalogue.
func TestCallersOwnResults(t *testing.T) {
	list := MustCatalogue(Version311)
	for i := range list {
		list[i].Summary = "changed"
		if len(list[i].PrintedAs) > 0 {
			list[i].PrintedAs[0] = "changed"
		}
	}
	s, _ := Lookup(Version311, "MQTT-3.1.2-7")
	if s.Summary == "changed" || s.PrintedAs[0] != "MQTT-3.1.2.7" {
		t.Fatalf("catalogue changed through a returned slice: %+v", s)
	}
	s.PrintedAs[0] = "changed"
	if again, _ := Lookup(Version311, "MQTT-3.1.2.7"); again.ID != "MQTT-3.1.2-7" || again.PrintedAs[0] != "MQTT-3.1.2.7" {
		t.Fatalf("catalogue changed through Lookup's result: %+v", again)
	}
}

func TestIDsInOrder(t *testing.T) {
	ids, err := IDs(Version5)
	if err != nil {
		t.Fatal(err)
	}
	list := MustCatalogue(Version5)
	if len(ids) != len(list) || ids[0] != "MQTT-1.5.4-1" || ids[len(ids)-1] != "MQTT-6.0.0-4" {
		t.Fatalf("IDs(5.0): %d IDs from %s to %s", len(ids), ids[0], ids[len(ids)-1])
	}
}

func TestLess(t *testing.T) {
	in := []ID{"MQTT-3.10.1-1", "bogus", "MQTT-3.1.2-10", "MQTT-3.9.3-1", "MQTT-3.1.2-9", "MQTT-1.5.3-1", "MQTT-3.1.0-2"}
	SortIDs(in)
	want := "[MQTT-1.5.3-1 MQTT-3.1.0-2 MQTT-3.1.2-9 MQTT-3.1.2-10 MQTT-3.9.3-1 MQTT-3.10.1-1 bogus]"
	if got := fmt.Sprint(in); got != want {
		t.Errorf("sorted %s, want %s", got, want)
	}
}

func TestWellFormed(t *testing.T) {
	tests := map[string]bool{
		"MQTT-3.3.2-2":   true,
		"MQTT-3.1.2-30":  true,
		"MQTT-6.0.0-4":   true,
		"MQTT-3.1.2.7":   false,
		"MQTT-3-8.3-4":   false,
		"MQTT-4.2-1":     false,
		"MQTT-3.3.2-0":   false,
		"MQTT-03.3.2-2":  false,
		"MQTT-0.1.1-1":   false,
		"MQTT-3.3.2.1-2": false,
		"MQTT-3.3.2-":    false,
		"mqtt-3.3.2-2":   false,
		"MQTT-3.3.x-2":   false,
		"":               false,
	}
	for s, want := range tests {
		if got := wellFormed(s); got != want {
			t.Errorf("wellFormed(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNormativeAndTestableFrom(t *testing.T) {
	for _, tt := range []struct {
		level string
		want  bool
	}{{LevelMust, true}, {LevelMustNot, true}, {LevelShould, false}, {LevelShouldNot, false}, {LevelMay, false}} {
		if got := (Statement{Level: tt.level}).Normative(); got != tt.want {
			t.Errorf("Normative() of %s = %v", tt.level, got)
		}
	}
	for _, tt := range []struct {
		testable         string
		server, client   bool
		other, emptySide bool
	}{
		{SideServer, true, false, false, false},
		{SideClient, false, true, false, false},
		{SideBoth, true, true, false, false},
		{SideNone, false, false, false, false},
	} {
		s := Statement{Testable: tt.testable}
		if s.TestableFrom("server") != tt.server || s.TestableFrom("client") != tt.client ||
			s.TestableFrom("both") != tt.other || s.TestableFrom("") != tt.emptySide {
			t.Errorf("TestableFrom of testable %s: server %v, client %v, both %v, empty %v", tt.testable,
				s.TestableFrom("server"), s.TestableFrom("client"), s.TestableFrom("both"), s.TestableFrom(""))
		}
	}
	// Every statement the catalogue marks untestable from both sides is testable from neither.
	for _, v := range Versions() {
		for _, s := range MustCatalogue(v) {
			if s.Testable == SideNone && (s.TestableFrom(SideServer) || s.TestableFrom(SideClient)) {
				t.Errorf("%s: testable none but TestableFrom reports a side", s.ID)
			}
		}
	}
}

// Every ID and version label must be usable as a Ginkgo label unchanged.
func TestLabelsAreGinkgoLabels(t *testing.T) {
	for _, v := range Versions() {
		ids, err := IDs(v)
		if err != nil {
			t.Fatal(err)
		}
		labels := append(Labels(ids...), VersionLabel(v))
		for _, l := range labels {
			clean, err := types.ValidateAndCleanupLabel(l, types.CodeLocation{})
			if err != nil || clean != l {
				t.Errorf("label %q: %v (cleaned to %q)", l, err, clean)
			}
		}
		if got := MustCatalogue(v)[0].Label(); got != string(ids[0]) {
			t.Errorf("Label() = %q, want %q", got, ids[0])
		}
	}
	if got := fmt.Sprint(Labels(V5_3_3_2_2, V311_3_1_2_7)); got != "[MQTT-3.3.2-2 MQTT-3.1.2-7]" {
		t.Errorf("Labels = %s", got)
	}
	if len(Labels()) != 0 {
		t.Errorf("Labels() of nothing is not empty")
	}
	if VersionLabel(Version5) != "mqtt-5.0" || VersionLabel(Version311) != "mqtt-3.1.1" {
		t.Errorf("VersionLabel: %s, %s", VersionLabel(Version5), VersionLabel(Version311))
	}
}

// The generated constants name catalogued statements.
func TestGeneratedConstants(t *testing.T) {
	for _, tt := range []struct {
		version string
		id      ID
		want    string
	}{
		{Version311, V311_3_3_2_2, "MQTT-3.3.2-2"},
		{Version311, V311_7_1_2_1, "MQTT-7.1.2-1"},
		{Version5, V5_3_1_2_24, "MQTT-3.1.2-24"},
		{Version5, V5_4_13_2_1, "MQTT-4.13.2-1"},
	} {
		if tt.id.String() != tt.want {
			t.Errorf("constant is %q, want %q", tt.id, tt.want)
		}
		if _, ok := Lookup(tt.version, tt.id); !ok {
			t.Errorf("%s %s not catalogued", tt.version, tt.id)
		}
	}
}
