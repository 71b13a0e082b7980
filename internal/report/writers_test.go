package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update once to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file; if the change is intended, run go test ./internal/report -update\n--- got:\n%s", path, got)
	}
}

func TestJSONGoldenAndRoundTrip(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "record.golden.json", b.Bytes())
	back, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalise(back), normalise(r)) {
		t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", back, r)
	}
}

// normalise drops monotonic clock readings and locations so that DeepEqual compares instants.
func normalise(r *Record) *Record {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(r)
	var out Record
	_ = json.Unmarshal(b.Bytes(), &out)
	return &out
}

func TestJSONFieldNamesAreTheDocumentedOnes(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "name", "kind", "start", "end", "outcome", "seed", "versions", "properties", "cases", "timeline", "sections"} {
		if _, ok := m[k]; !ok {
			t.Errorf("record lacks field %q", k)
		}
	}
	c := m["cases"].([]any)[1].(map[string]any)
	for _, k := range []string{"name", "group", "outcome", "start", "duration_ns", "message", "evidence", "labels"} {
		if _, ok := c[k]; !ok {
			t.Errorf("case lacks field %q", k)
		}
	}
	meas := m["cases"].([]any)[0].(map[string]any)["measurements"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "value", "unit", "high", "outcome"} {
		if _, ok := meas[k]; !ok {
			t.Errorf("measurement lacks field %q", k)
		}
	}
	if m["seed"].(float64) != 42 {
		t.Errorf("seed = %v, want 42", m["seed"])
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "duration_ns", "measurements", "evidence", "timeline", "sections", "labels"} {
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("README.md does not document field %q", k)
		}
	}
}

func TestReadJSONRefusesOtherSchemas(t *testing.T) {
	for _, in := range []string{
		`{"schema":"something/v9","name":"x"}`,
		`{"schema":"gatehouse.report/v1","name":"x","bogus":1}`,
		`{"schema":`,
	} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("ReadJSON(%s) accepted it", in)
		}
	}
}

// junitSchema is the structure of the JUnit XML that CI systems read (the Jenkins/Surefire
// layout): for each element, the attributes it may carry, which of them are required, and the
// child elements it may contain. The check walks the document token by token so that a stray
// element or attribute that encoding/xml would ignore while unmarshalling is caught.
var junitSchema = map[string]struct {
	attrs    map[string]bool // name → required
	children []string
	text     bool
}{
	"testsuites": {attrs: map[string]bool{"name": false, "tests": true, "failures": true, "errors": true, "skipped": false, "time": false}, children: []string{"testsuite"}},
	"testsuite": {attrs: map[string]bool{"name": true, "tests": true, "failures": true, "errors": true, "skipped": false, "time": false, "timestamp": false, "hostname": false, "id": false, "package": false},
		children: []string{"properties", "testcase", "system-out", "system-err"}},
	"properties": {children: []string{"property"}},
	"property":   {attrs: map[string]bool{"name": true, "value": true}},
	"testcase":   {attrs: map[string]bool{"name": true, "classname": true, "time": false}, children: []string{"failure", "error", "skipped", "system-out", "system-err"}},
	"failure":    {attrs: map[string]bool{"message": false, "type": false}, text: true},
	"error":      {attrs: map[string]bool{"message": false, "type": false}, text: true},
	"skipped":    {attrs: map[string]bool{"message": false}, text: true},
	"system-out": {text: true},
	"system-err": {text: true},
}

func validateJUnit(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML: %w", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := tok.Name.Local
			rule, ok := junitSchema[name]
			if !ok {
				return fmt.Errorf("element <%s> is not part of the JUnit schema", name)
			}
			if len(stack) == 0 && name != "testsuites" {
				return fmt.Errorf("root element is <%s>, want <testsuites>", name)
			}
			if len(stack) > 0 {
				parent := junitSchema[stack[len(stack)-1]]
				allowed := false
				for _, c := range parent.children {
					allowed = allowed || c == name
				}
				if !allowed {
					return fmt.Errorf("<%s> may not contain <%s>", stack[len(stack)-1], name)
				}
			}
			seen := map[string]bool{}
			for _, a := range tok.Attr {
				if _, ok := rule.attrs[a.Name.Local]; !ok {
					return fmt.Errorf("<%s> has attribute %q outside the schema", name, a.Name.Local)
				}
				seen[a.Name.Local] = true
			}
			for a, required := range rule.attrs {
				if required && !seen[a] {
					return fmt.Errorf("<%s> lacks required attribute %q", name, a)
				}
			}
			stack = append(stack, name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && !junitSchema[stack[len(stack)-1]].text && strings.TrimSpace(string(tok)) != "" {
				return fmt.Errorf("<%s> may not contain text", stack[len(stack)-1])
			}
		}
	}
	return nil
}

func TestValidateJUnitCatchesSchemaViolations(t *testing.T) {
	bad := map[string]string{
		"wrong root":        `<testsuite name="x" tests="0" failures="0" errors="0"/>`,
		"unknown element":   `<testsuites tests="0" failures="0" errors="0"><testsuite name="x" tests="0" failures="0" errors="0"><bogus/></testsuite></testsuites>`,
		"missing attribute": `<testsuites tests="0" failures="0" errors="0"><testsuite tests="0" failures="0" errors="0"/></testsuites>`,
		"misplaced failure": `<testsuites tests="0" failures="0" errors="0"><testsuite name="x" tests="0" failures="0" errors="0"><failure/></testsuite></testsuites>`,
		"unknown attribute": `<testsuites tests="0" failures="0" errors="0" colour="red"/>`,
		"not xml":           `<testsuites>`,
	}
	for name, doc := range bad {
		if err := validateJUnit([]byte(doc)); err == nil {
			t.Errorf("%s: the schema check accepted %s", name, doc)
		}
	}
}

func TestJUnitValidatesAndCounts(t *testing.T) {
	ok := New("all-good", KindScenario, t0)
	ok.Versions.Go = "go1.26.0"
	ok.AddCase(Case{Name: "a", Outcome: Pass})
	ok.Finish(t0.Add(2 * 1e9))
	broken := New("no-broker", KindScenario, t0)
	broken.Versions.Go = "go1.26.0"
	broken.SetError("embedded broker: listen tcp 127.0.0.1:0: address in use")
	broken.Finish(t0)

	var b bytes.Buffer
	if err := WriteJUnit(&b, "gatehouse run", sample(), ok, broken); err != nil {
		t.Fatal(err)
	}
	if err := validateJUnit(b.Bytes()); err != nil {
		t.Fatalf("JUnit output breaks the schema: %v\n%s", err, b.String())
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 7 || doc.Failures != 1 || doc.Errors != 2 || doc.Skipped != 1 || len(doc.Suites) != 3 {
		t.Fatalf("testsuites counts tests=%d failures=%d errors=%d skipped=%d suites=%d, want 7/1/2/1/3",
			doc.Tests, doc.Failures, doc.Errors, doc.Skipped, len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Tests != 5 || s.Failures != 1 || s.Errors != 1 || s.Skipped != 1 || s.Time != "12.000" {
		t.Fatalf("suite counts %+v", s)
	}
	props := map[string]string{}
	for _, p := range s.Properties.Props {
		props[p.Name] = p.Value
	}
	if props["seed"] != "42" || props["version.broker"] == "" || props["file"] != "scenarios/gate-power-cut.yaml" {
		t.Fatalf("suite properties %v lack the seed, broker version or file", props)
	}
	fail := s.Cases[1]
	if fail.Failure == nil || !strings.Contains(fail.Failure.Message, "observed instead") || fail.SystemOut == nil || !strings.Contains(fail.SystemOut.Text, "power_cut") {
		t.Fatalf("failing testcase %+v lacks its message or evidence", fail)
	}
	if s.Cases[0].Failure != nil || s.Cases[0].Error != nil || s.Cases[0].Skipped != nil {
		t.Fatalf("passing testcase carries a problem: %+v", s.Cases[0])
	}
	if s.Cases[0].SystemOut == nil || !strings.Contains(s.Cases[0].SystemOut.Text, "time to all online = 420 ms") {
		t.Fatalf("measurement missing from system-out: %q", s.Cases[0].SystemOut)
	}
	if e := doc.Suites[2]; e.Errors != 1 || len(e.Cases) != 1 || e.Cases[0].Error == nil || !strings.Contains(e.Cases[0].Error.Message, "address in use") {
		t.Fatalf("a run that errored before any case must show as an errored testcase: %+v", e)
	}
	golden(t, "junit.golden.xml", b.Bytes())
}

func TestJUnitCarriesControlCharactersSafely(t *testing.T) {
	r := New("binary", KindScenario, t0)
	r.AddCase(Case{Name: "snapshot", Outcome: Fail, Message: "payload \x00\x01\x1b ]]> ended",
		Evidence: []Evidence{Text("raw", "]]><![CDATA[ \x07")}})
	r.Finish(t0)
	var b bytes.Buffer
	if err := WriteJUnit(&b, "x", r); err != nil {
		t.Fatal(err)
	}
	if err := validateJUnit(b.Bytes()); err != nil {
		t.Fatalf("control characters broke the XML: %v\n%s", err, b.String())
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Suites[0].Cases[0].Failure.Body; got != "payload \uFFFD\uFFFD\uFFFD ]]> ended" {
		t.Fatalf("failure body read back as %q", got)
	}
}

func TestHTMLShowsEveryFailureAndNeedsNothingExternal(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, "gatehouse run", sample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	r := sample()
	for _, c := range r.Cases {
		if c.Outcome.Failed() {
			if !strings.Contains(html.UnescapeString(page), c.Message) {
				t.Errorf("HTML lacks the message of failing case %q: %s", c.Name, c.Message)
			}
		}
	}
	for _, want := range []string{"<style>", "<details", "Timeline", "command open to gate-01", "Statement coverage", "MQTT-3.1.2-8", "seed", "42", "time to all online"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "<link", "<img", "src=", "http://", "https://", "@import", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("HTML is not self-contained: it contains %q", banned)
		}
	}
	if strings.Contains(page, "<&>") {
		t.Error("HTML does not escape a message")
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	a, b := sample(), sample()
	p, err := WriteDir(dir, "gatehouse run", a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "gate-power-cut.json"), filepath.Join(dir, "gate-power-cut-2.json")}
	if !reflect.DeepEqual(p.JSON, want) {
		t.Fatalf("JSON paths %v, want %v", p.JSON, want)
	}
	for _, f := range append([]string{p.HTML, p.JUnit}, p.JSON...) {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	f, err := os.Open(p.JSON[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if back, err := ReadJSON(f); err != nil || back.Name != "gate-power-cut" {
		t.Fatalf("written record does not read back: %v", err)
	}
	if err := WriteJUnitFile(filepath.Join(t.TempDir(), "ci", "junit.xml"), "x", a); err != nil {
		t.Fatal(err)
	}
}
