package suite

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name    string    `json:"name"`  // the check's full text: its groups and its own text
	Group   string    `json:"group"` // its groups, e.g. "MQTT 3.1.1 › CONNECT"
	Text    string    `json:"text"`  // its own text
	Version string    `json:"version"`
	Level   Level     `json:"level"`
	IDs     []spec.ID `json:"ids"`
	Verdict Verdict   `json:"verdict"`
	// Blamed are the statements a failure or warning is attributed to: every ID of the check
	// unless it failed inside c.For(...).
	Blamed   []spec.ID     `json:"blamed,omitempty"`
	Message  string        `json:"message,omitempty"` // why it failed, warned or is not supported
	Location string        `json:"location,omitempty"`
	Start    time.Time     `json:"start,omitzero"`
	Duration time.Duration `json:"duration_ns"`
	Trace    []string      `json:"trace,omitempty"` // the packet trace, one event per line
}

// StatementResult is the verdict on one normative statement: the combination of the checks that
// cover it (the worst wins: fail, warn, pass, not-supported, not-run), or why no check does.
type StatementResult struct {
	ID       spec.ID `json:"id"`
	Version  string  `json:"version"`
	Section  string  `json:"section"`
	Level    string  `json:"level"`
	Binds    string  `json:"binds"`
	Testable string  `json:"testable"`
	Summary  string  `json:"summary"`
	Verdict  Verdict `json:"verdict"`
	// Reason explains a verdict that is not pass or fail: the warning, what is not supported,
	// why the statement is not testable or not covered.
	Reason string `json:"reason,omitempty"`
	// Checks are the names of the checks that cover the statement, with their verdicts.
	Checks []CheckRef `json:"checks,omitempty"`
}

// CheckRef names a check and its verdict.
type CheckRef struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
}

// Result is the outcome of a run.
type Result struct {
	Broker      string            `json:"broker"`
	URL         string            `json:"url"`
	Versions    []string          `json:"versions"`
	LabelFilter string            `json:"label_filter"`
	Seed        int64             `json:"seed"`
	Start       time.Time         `json:"start"`
	End         time.Time         `json:"end"`
	Settings    map[string]string `json:"settings"`
	// Capabilities lists what the broker offers per version and where that was learnt.
	Capabilities []string          `json:"capabilities"`
	Checks       []CheckResult     `json:"checks"`
	Statements   []StatementResult `json:"statements"`
}

// Failed reports whether any Must check failed: the run's verdict for a pipeline.
func (r *Result) Failed() bool {
	for _, c := range r.Checks {
		if c.Verdict == Fail {
			return true
		}
	}
	return false
}

// Count tallies checks by verdict.
func (r *Result) Count() map[Verdict]int {
	n := map[Verdict]int{}
	for _, c := range r.Checks {
		n[c.Verdict]++
	}
	return n
}

// StatementCount tallies the statements of a version by verdict.
func (r *Result) StatementCount(version string) map[Verdict]int {
	n := map[Verdict]int{}
	for _, s := range r.Statements {
		if s.Version == version {
			n[s.Verdict]++
		}
	}
	return n
}

// Covered returns the statements of a version that at least one check of this run covers (its
// verdict is pass, fail, warn or not-supported).
func (r *Result) Covered(version string) []spec.ID {
	var out []spec.ID
	for _, s := range r.Statements {
		if s.Version == version {
			switch s.Verdict {
			case Pass, Fail, Warn, NotSupported:
				out = append(out, s.ID)
			}
		}
	}
	return out
}

// FailedStatements returns the statements with verdict fail, by version.
func (r *Result) FailedStatements() map[string][]spec.ID {
	out := map[string][]spec.ID{}
	for _, s := range r.Statements {
		if s.Verdict == Fail {
			out[s.Version] = append(out[s.Version], s.ID)
		}
	}
	return out
}

func newResult(env *Env, cfg Config, sc types.SuiteConfig, rep types.Report, start time.Time) *Result {
	r := &Result{
		Broker:       env.Broker,
		URL:          env.URL,
		Versions:     append([]string(nil), cfg.Versions...),
		LabelFilter:  sc.LabelFilter,
		Seed:         sc.RandomSeed,
		Start:        start,
		End:          time.Now(),
		Capabilities: env.Describe(),
		Settings: map[string]string{
			"timeout": env.Timeout.String(),
			"window":  env.Window.String(),
		},
	}
	if env.WebSocketURL != "" {
		r.Settings["websocket_url"] = env.WebSocketURL
	}
	if env.DeniedTopic != "" {
		r.Settings["denied_topic"] = env.DeniedTopic
	}
	for _, sr := range rep.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		// Specs of other suites linked into the binary have no version label: not checks.
		if c := checkResult(sr); c.Version != "" {
			r.Checks = append(r.Checks, c)
		}
	}
	sort.SliceStable(r.Checks, func(i, j int) bool { return r.Checks[i].Name < r.Checks[j].Name })
	r.Statements = statements(cfg.Versions, r.Checks)
	return r
}

// checkResult reads one check's outcome from its Ginkgo report.
func checkResult(sr types.SpecReport) CheckResult {
	c := CheckResult{
		Text:     sr.LeafNodeText,
		Location: sr.LeafNodeLocation.String(),
		Start:    sr.StartTime,
		Duration: sr.RunTime,
		Level:    LevelMust,
	}
	groups := append([]string(nil), sr.ContainerHierarchyTexts...)
	for _, l := range sr.Labels() {
		switch {
		case strings.HasPrefix(l, "MQTT-"):
			c.IDs = append(c.IDs, spec.ID(l))
		case l == string(LevelShould):
			c.Level = LevelShould
		default:
			for _, v := range spec.Versions() {
				if l == spec.VersionLabel(v) {
					c.Version = v
				}
			}
		}
	}
	if c.Version != "" {
		groups = append([]string{"MQTT " + c.Version}, groups...)
	}
	c.Group = strings.Join(groups, " › ")
	c.Name = strings.Join(append(groups, sr.LeafNodeText), " › ")
	var fromEntry *verdictEntry
	for _, e := range sr.ReportEntries {
		switch v := e.Value.GetRawValue().(type) {
		case verdictEntry:
			fromEntry = &v
		case traceEntry:
			c.Trace = []string(v)
		case blameEntry:
			c.Blamed = []spec.ID(v)
		}
	}
	switch {
	case fromEntry != nil:
		c.Verdict, c.Message = fromEntry.Verdict, fromEntry.Message
	case sr.State == types.SpecStatePassed:
		c.Verdict = Pass
	case sr.State == types.SpecStatePending:
		c.Verdict, c.Message = NotRun, "pending"
	case sr.State == types.SpecStateSkipped:
		c.Verdict, c.Message = NotRun, sr.Failure.Message
		if c.Message == "" {
			c.Message = "not selected"
		}
	case sr.State.Is(types.SpecStateFailureStates):
		c.Verdict, c.Message = Fail, sr.Failure.Message
		if sr.State != types.SpecStateFailed {
			c.Message = sr.State.String() + ": " + c.Message
		}
		if c.Level == LevelShould {
			c.Verdict = Warn
		}
	default:
		c.Verdict, c.Message = NotRun, sr.State.String()
	}
	switch {
	case c.Verdict != Fail && c.Verdict != Warn:
		c.Blamed = nil
	case len(c.Blamed) == 0:
		c.Blamed = c.IDs
	}
	return c
}

// statements gives every statement of the versions a verdict from the checks that cover it.
func statements(versions []string, checks []CheckResult) []StatementResult {
	var out []StatementResult
	for _, v := range versions {
		byID := map[spec.ID][]CheckResult{}
		for _, c := range checks {
			if c.Version != v {
				continue
			}
			for _, id := range c.IDs {
				byID[id] = append(byID[id], c)
			}
		}
		for _, st := range spec.MustCatalogue(v) {
			s := StatementResult{ID: st.ID, Version: v, Section: st.Section, Level: st.Level, Binds: st.Binds,
				Testable: st.Testable, Summary: st.Summary}
			cs := byID[st.ID]
			for _, c := range cs {
				s.Checks = append(s.Checks, CheckRef{Name: c.Name, Verdict: c.Verdict})
				v, reason := c.verdictOn(st.ID)
				if v.rank() > s.Verdict.rank() {
					s.Verdict, s.Reason = v, reason
				}
			}
			switch {
			case len(cs) > 0 && s.Verdict == Pass:
				s.Reason = ""
			case len(cs) > 0 && s.Verdict == NotRun:
				s.Reason = "no check of this statement was selected in this run"
			case len(cs) > 0:
			case !st.TestableFrom(spec.SideServer):
				s.Verdict = NotTestable
				s.Reason = notTestableReason(st)
			default:
				s.Verdict = NotCovered
				s.Reason = "testable from the server side, but no check covers it yet"
			}
			out = append(out, s)
		}
	}
	return out
}

// verdictOn is what the check says about one of its statements: its own verdict, except that a
// check that failed on another of its statements first says nothing about this one.
func (c CheckResult) verdictOn(id spec.ID) (Verdict, string) {
	if (c.Verdict == Fail || c.Verdict == Warn) && !slices.Contains(c.Blamed, id) {
		return NotRun, "inconclusive: " + c.Name + " failed on " + joinIDs(c.Blamed) + " first"
	}
	return c.Verdict, c.Message
}

func joinIDs(ids []spec.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

func notTestableReason(st spec.Statement) string {
	switch {
	case st.Testable == spec.SideClient:
		return "binds clients only: it is checked by device conformance, where the suite plays the server"
	case st.WhyNot != "":
		return st.WhyNot
	}
	return "not observable on the wire (" + st.Testable + ")"
}

// Summary returns a few lines for the console: counts of checks and of statements per version.
func (r *Result) Summary() []string {
	n := r.Count()
	lines := []string{fmt.Sprintf("checks: %d pass, %d fail, %d warn, %d not supported, %d not run (%s, %s)",
		n[Pass], n[Fail], n[Warn], n[NotSupported], n[NotRun], r.Broker, r.End.Sub(r.Start).Round(time.Millisecond))}
	for _, v := range r.Versions {
		s := r.StatementCount(v)
		total := 0
		for _, k := range s {
			total += k
		}
		lines = append(lines, fmt.Sprintf("MQTT %s statements (%d): %d pass, %d fail, %d warn, %d not supported, %d not run, %d not covered, %d not testable",
			v, total, s[Pass], s[Fail], s[Warn], s[NotSupported], s[NotRun], s[NotCovered], s[NotTestable]))
	}
	for _, c := range r.Checks {
		switch c.Verdict {
		case Fail:
			lines = append(lines, "FAIL "+c.Name+": "+firstLine(c.Message))
		case Warn:
			lines = append(lines, "WARN "+c.Name+": "+firstLine(c.Message))
		}
	}
	return lines
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// seedString formats the seed for reports.
func (r *Result) seedString() string { return strconv.FormatInt(r.Seed, 10) }

// Merge combines the results of the shards of one run (Config.Shard) into the result of the
// whole run: every check once, verdicts per statement over all of them.
func Merge(parts ...*Result) (*Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("suite: nothing to merge")
	}
	r := *parts[0]
	r.Checks = nil
	seen := map[string]bool{}
	for _, p := range parts {
		if p.Start.Before(r.Start) {
			r.Start = p.Start
		}
		if p.End.After(r.End) {
			r.End = p.End
		}
		for _, c := range p.Checks {
			if c.Verdict == NotRun && seen[c.Name] {
				continue
			}
			if seen[c.Name] {
				return nil, fmt.Errorf("suite: check %q ran in two shards", c.Name)
			}
			seen[c.Name] = true
			r.Checks = append(r.Checks, c)
		}
	}
	sort.SliceStable(r.Checks, func(i, j int) bool { return r.Checks[i].Name < r.Checks[j].Name })
	r.Statements = statements(r.Versions, r.Checks)
	return &r, nil
}
