package suite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-iot/gatehouse/internal/report"
)

// StatementsSchema names the layout of statements.json (documented in conformance/README.md).
const StatementsSchema = "gatehouse.conformance-statements/v1"

// StatementsFile is statements.json: one record per normative statement with its verdict, the
// checks that decided it and their packet traces as evidence.
type StatementsFile struct {
	Schema       string              `json:"schema"`
	Broker       string              `json:"broker"`
	URL          string              `json:"url"`
	Versions     []string            `json:"versions"`
	LabelFilter  string              `json:"label_filter"`
	Seed         int64               `json:"seed"`
	Start        string              `json:"start"`
	End          string              `json:"end"`
	Capabilities []string            `json:"capabilities"`
	Statements   []StatementEvidence `json:"statements"`
}

// StatementEvidence is a statement's verdict with the evidence of every check that covers it.
type StatementEvidence struct {
	StatementResult
	Evidence []CheckEvidence `json:"evidence,omitempty"`
}

// CheckEvidence is what one check saw: its verdict, its message and its packet trace.
type CheckEvidence struct {
	Check   string   `json:"check"`
	Verdict Verdict  `json:"verdict"`
	Message string   `json:"message,omitempty"`
	Trace   []string `json:"trace,omitempty"`
}

// StatementsFile builds the content of statements.json.
func (r *Result) StatementsFile() StatementsFile {
	byName := map[string]CheckResult{}
	for _, c := range r.Checks {
		byName[c.Name] = c
	}
	f := StatementsFile{Schema: StatementsSchema, Broker: r.Broker, URL: r.URL, Versions: r.Versions,
		LabelFilter: r.LabelFilter, Seed: r.Seed, Start: r.Start.Format(timeFormat), End: r.End.Format(timeFormat),
		Capabilities: r.Capabilities}
	for _, s := range r.Statements {
		se := StatementEvidence{StatementResult: s}
		for _, ref := range s.Checks {
			c := byName[ref.Name]
			if c.Verdict == NotRun {
				continue
			}
			v, msg := c.verdictOn(s.ID)
			se.Evidence = append(se.Evidence, CheckEvidence{Check: c.Name, Verdict: v, Message: msg, Trace: c.Trace})
		}
		f.Statements = append(f.Statements, se)
	}
	return f
}

const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Record turns the result into the report model shared by every kind of run: one case per check
// that ran (with its statement IDs as labels and its packet trace as evidence), a coverage matrix
// per version (statements × verdict, with the reason for every statement not covered) and the
// broker's capabilities.
func (r *Result) Record(gatehouseVersion string) *report.Record {
	rec := report.New("MQTT conformance: "+r.Broker, report.KindConformance, r.Start)
	rec.Versions.Gatehouse = gatehouseVersion
	rec.Versions.Broker = r.Broker
	rec.SetProperty("target_url", r.URL)
	rec.SetProperty("versions", strings.Join(r.Versions, ", "))
	rec.SetProperty("label_filter", r.LabelFilter)
	rec.SetProperty("seed", r.seedString())
	for k, v := range r.Settings {
		rec.SetProperty(k, v)
	}
	for _, c := range r.Checks {
		if c.Verdict == NotRun {
			continue
		}
		rc := report.Case{Name: c.Text, Group: c.Group, Start: c.Start, Duration: c.Duration, Message: c.Message}
		for _, id := range c.IDs {
			rc.Labels = append(rc.Labels, string(id))
		}
		rc.Labels = append(rc.Labels, string(c.Level))
		switch c.Verdict {
		case Pass:
			rc.Outcome = report.Pass
		case Fail:
			rc.Outcome = report.Fail
		case Warn:
			rc.Outcome = report.Warn
		case NotSupported:
			rc.Outcome = report.Skip
			rc.Message = "not supported: " + c.Message
		}
		if len(c.Trace) > 0 {
			rc.Evidence = append(rc.Evidence, report.Trace("packet trace", c.Trace...))
		}
		rc.Evidence = append(rc.Evidence, report.KeyValues("check",
			report.KV{Key: "statements", Value: strings.Join(rc.Labels[:len(c.IDs)], ", ")},
			report.KV{Key: "level", Value: string(c.Level)},
			report.KV{Key: "source", Value: c.Location}))
		rec.AddCase(rc)
	}
	for _, v := range r.Versions {
		rec.Sections = append(rec.Sections, r.coverageSection(v))
	}
	rec.Sections = append(rec.Sections, report.Section{ID: "capabilities", Title: "Broker capabilities", Text: r.Capabilities})
	rec.Finish(r.End)
	return rec
}

func (r *Result) coverageSection(version string) report.Section {
	n := r.StatementCount(version)
	total := 0
	for _, k := range n {
		total += k
	}
	sec := report.Section{
		ID:    "coverage-" + strings.ReplaceAll(version, ".", "-"),
		Title: "Statement coverage, MQTT " + version,
		Text: []string{
			fmt.Sprintf("%d statements: %d pass, %d fail, %d warn, %d not supported, %d not run, %d not covered, %d not testable from the server side.",
				total, n[Pass], n[Fail], n[Warn], n[NotSupported], n[NotRun], n[NotCovered], n[NotTestable]),
			"A statement's verdict is the worst verdict of the checks that cover it. Fail: a MUST did not hold. Warn: a SHOULD did not hold. " +
				"Not supported: the broker lacks the optional feature the check needs. Not covered: testable, but no check covers it. " +
				"Not testable: the statement cannot be observed from the clients' side of the wire (the reason is given).",
		},
		Table: &report.Table{Columns: []string{"statement", "section", "level", "verdict", "checks", "reason"}},
	}
	for _, s := range r.Statements {
		if s.Version != version {
			continue
		}
		names := make([]string, len(s.Checks))
		for i, c := range s.Checks {
			names[i] = c.Name
		}
		checks := fmt.Sprintf("%d", len(s.Checks))
		sec.Table.Rows = append(sec.Table.Rows, []report.Cell{
			{Text: string(s.ID), Title: s.Summary},
			{Text: s.Section},
			{Text: s.Level},
			{Text: string(s.Verdict), Outcome: outcome(s.Verdict)},
			{Text: checks, Title: strings.Join(names, "\n")},
			{Text: firstLine(s.Reason)},
		})
	}
	return sec
}

func outcome(v Verdict) report.Outcome {
	switch v {
	case Pass:
		return report.Pass
	case Fail:
		return report.Fail
	case Warn:
		return report.Warn
	}
	return report.Skip
}

// ReportPaths lists the files WriteReports wrote.
type ReportPaths struct {
	report.Paths
	Statements string // statements.json
}

// WriteReports writes the run's reports into dir: report.html (with the coverage matrix),
// junit.xml, the JSON record of the run, and statements.json (a record per statement with its
// evidence).
func (r *Result) WriteReports(dir, title, gatehouseVersion string) (ReportPaths, error) {
	p, err := report.WriteDir(dir, title, r.Record(gatehouseVersion))
	out := ReportPaths{Paths: p}
	if err != nil {
		return out, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.StatementsFile()); err != nil {
		return out, fmt.Errorf("write statements.json: %w", err)
	}
	out.Statements = filepath.Join(dir, "statements.json")
	if err := os.WriteFile(out.Statements, b.Bytes(), 0o644); err != nil {
		return out, fmt.Errorf("write statements.json: %w", err)
	}
	return out, nil
}
