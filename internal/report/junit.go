package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The JUnit XML layout that CI systems (Jenkins, GitLab, GitHub test reporters, Azure DevOps) read:
// testsuites > testsuite > (properties, testcase > (failure | error | skipped), system-out).
// One record becomes one testsuite; a case becomes a testcase whose classname is its group.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr,omitempty"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties *junitProps     `xml:"properties,omitempty"`
	Cases      []junitTestCase `xml:"testcase"`
	SystemOut  *junitText      `xml:"system-out,omitempty"`
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is element text written as CDATA, so that multi-line output stays readable in the file.
type junitText struct {
	Text string `xml:",cdata"`
}

func textOf(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{Text: xmlSafe(s)}
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit writes the records as one JUnit XML document, one testsuite per record. A run that
// errored before any case ran still appears, as a testsuite with one errored testcase, so that CI
// does not read an empty suite as success.
func WriteJUnit(w io.Writer, name string, recs ...*Record) error {
	doc := junitSuites{Name: name}
	var total time.Duration
	for _, r := range recs {
		s := junitSuiteOf(r)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		total += r.Duration()
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

func junitSuiteOf(r *Record) junitSuite {
	s := junitSuite{Name: r.Name, Time: seconds(r.Duration())}
	if !r.Start.IsZero() {
		// JUnit timestamps are ISO 8601 without a zone in the common schema; use UTC.
		s.Timestamp = r.Start.UTC().Format("2006-01-02T15:04:05")
	}
	var props []junitProp
	add := func(k, v string) {
		if v != "" {
			props = append(props, junitProp{Name: k, Value: v})
		}
	}
	add("kind", string(r.Kind))
	add("outcome", string(r.Outcome))
	if r.Seed != nil {
		add("seed", strconv.FormatUint(*r.Seed, 10))
	}
	add("version.gatehouse", r.Versions.Gatehouse)
	add("version.go", r.Versions.Go)
	add("version.broker", r.Versions.Broker)
	for _, k := range sortedKeys(r.Versions.Other) {
		add("version."+k, r.Versions.Other[k])
	}
	for _, k := range sortedKeys(r.Properties) {
		add(k, r.Properties[k])
	}
	if len(props) > 0 {
		s.Properties = &junitProps{Props: props}
	}
	cases := r.Cases
	if r.Outcome == Error && r.Message != "" {
		// The run's own error is a testcase so that every CI system shows it.
		cases = append(append([]Case(nil), cases...), Case{Name: "run", Group: r.Name, Outcome: Error, Message: r.Message})
	}
	for _, c := range cases {
		tc := junitTestCase{Name: c.Name, Classname: c.Group, Time: seconds(c.Duration), SystemOut: textOf(caseText(c))}
		if tc.Classname == "" {
			tc.Classname = r.Name
		}
		switch c.Outcome {
		case Fail:
			s.Failures++
			tc.Failure = &junitProblem{Message: firstLine(c.Message), Type: "expectation", Body: xmlSafe(c.Message)}
		case Error:
			s.Errors++
			tc.Error = &junitProblem{Message: firstLine(c.Message), Type: "error", Body: xmlSafe(c.Message)}
		case Skip:
			s.Skipped++
			tc.Skipped = &junitSkipped{Message: firstLine(c.Message)}
		case Pass, Warn:
		default:
			// An unknown outcome must not pass silently.
			s.Errors++
			tc.Error = &junitProblem{Message: fmt.Sprintf("case has no valid outcome (%q)", c.Outcome), Type: "error"}
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	var out strings.Builder
	for _, e := range r.Timeline {
		fmt.Fprintf(&out, "%s %s: %s\n", offset(r.Start, e.Time), e.Source, e.Text)
	}
	s.SystemOut = textOf(out.String())
	return s
}

// caseText renders what JUnit has no element for — measurements, labels, evidence, warnings — as
// the testcase's system-out, which CI systems show beside the verdict.
func caseText(c Case) string {
	var b strings.Builder
	if c.Outcome == Warn && c.Message != "" {
		fmt.Fprintf(&b, "WARNING: %s\n", c.Message)
	}
	if len(c.Labels) > 0 {
		fmt.Fprintf(&b, "labels: %s\n", strings.Join(c.Labels, ", "))
	}
	for _, m := range c.Measurements {
		fmt.Fprintf(&b, "measurement %s = %s [%s] %s\n", m.Name, formatValue(m), limitsText(m), m.Outcome)
	}
	for _, e := range c.Evidence {
		fmt.Fprintf(&b, "--- %s\n", e.Title)
		for _, l := range e.Lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		for _, kv := range e.Pairs {
			fmt.Fprintf(&b, "%s: %s\n", kv.Key, kv.Value)
		}
	}
	return b.String()
}

func formatValue(m Measurement) string {
	v := strconv.FormatFloat(m.Value, 'g', -1, 64)
	if m.Unit != "" {
		v += " " + m.Unit
	}
	return v
}

func limitsText(m Measurement) string {
	f := func(p *float64) string { return strconv.FormatFloat(*p, 'g', -1, 64) }
	switch {
	case m.Low != nil && m.High != nil:
		return f(m.Low) + " ≤ x ≤ " + f(m.High)
	case m.Low != nil:
		return "x ≥ " + f(m.Low)
	case m.High != nil:
		return "x ≤ " + f(m.High)
	}
	return "no limits"
}

// xmlSafe replaces the characters XML 1.0 cannot carry at all (most control characters, which a
// binary payload quoted in a message may hold) with U+FFFD; CDATA sections do not escape them.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// offset renders a timeline time relative to the run's start, e.g. "+1.250s".
func offset(start, t time.Time) string {
	if start.IsZero() || t.IsZero() {
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("+%.3fs", t.Sub(start).Seconds())
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
