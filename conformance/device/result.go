package device

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/internal/report"
)

// Identity is what the certifier learnt about the device.
type Identity struct {
	ClientID     string
	DeviceID     string
	Base         string // the device's topic base, {prefix}/{kind}/{id}
	Protocol     string // "3.1.1" or "5.0"
	Keepalive    time.Duration
	CleanSession bool
	Firmware     string // from its online status
	Model        string
}

// Finding is one observation behind a requirement's verdict.
type Finding struct {
	Outcome      report.Outcome
	Text         string
	Evidence     []string // trace lines that show it
	Measurements []report.Measurement
}

// RequirementResult is the verdict on one requirement.
type RequirementResult struct {
	Requirement
	// First and Last are when the first and the last finding about it were made.
	First, Last time.Time
	Outcome     report.Outcome // pass, fail, warn, or skip when not exercised
	Message     string
	Findings    []Finding
}

// Result is a whole certification.
type Result struct {
	Profile      string
	Identity     Identity
	Listen       string
	Start, End   time.Time
	Outcome      report.Outcome
	Error        string // why the run could not be carried out, when it could not
	Requirements []RequirementResult
	// NotApplicable lists the requirements the profile or protocol version leaves out, with why.
	NotApplicable []string
	Timeline      []report.Event
	Trace         []string // every event of the run, one per line
	Version       string   // Gatehouse version
}

// Failed reports whether the certification failed: a MUST requirement failed, or the run could
// not be carried out.
func (r *Result) Failed() bool { return r.Outcome.Failed() }

// Requirement returns the verdict on the requirement with that ID.
func (r *Result) Requirement(id string) (RequirementResult, bool) {
	for _, q := range r.Requirements {
		if q.ID == id {
			return q, true
		}
	}
	return RequirementResult{}, false
}

// Failures returns the IDs of the requirements that failed.
func (r *Result) Failures() []string {
	var out []string
	for _, q := range r.Requirements {
		if q.Outcome.Failed() {
			out = append(out, q.ID)
		}
	}
	return out
}

// result turns the findings into verdicts.
func (r *run) result() *Result {
	res := &Result{
		Profile: r.prof.Name,
		Listen:  r.s.Addr().String(),
		Start:   r.start,
		End:     time.Now(),
		Error:   r.runErr,
		Identity: Identity{
			ClientID: r.cfg.ClientID, DeviceID: r.cfg.DeviceID, Base: r.base, Protocol: r.version,
			Keepalive: r.keepalive, CleanSession: r.clean, Firmware: r.identity.Firmware, Model: r.identity.Model,
		},
		Timeline: r.timeline,
		Trace:    r.tr.Lines(0, -1),
		Version:  r.cfg.Version,
	}
	if d := r.tr.Dropped(); d > 0 {
		res.Trace = append(res.Trace, fmt.Sprintf("… %d more events were not recorded (the trace is bounded)", d))
	}
	for _, q := range Requirements {
		switch {
		case !r.prof.Applies(q):
			res.NotApplicable = append(res.NotApplicable, q.ID+": device contract requirement; the "+r.prof.Name+" profile judges the protocol only")
			continue
		case q.Only5 && r.version != spec.Version5:
			res.NotApplicable = append(res.NotApplicable, q.ID+": an MQTT 5.0 feature; the device speaks "+orUnknown(r.version))
			continue
		}
		res.Requirements = append(res.Requirements, r.verdict(q))
	}
	var outcomes []report.Outcome
	for _, q := range res.Requirements {
		outcomes = append(outcomes, q.Outcome)
	}
	res.Outcome = report.Worst(outcomes...)
	if res.Error != "" || res.Outcome == "" {
		res.Outcome = report.Error
	}
	return res
}

func orUnknown(v string) string {
	if v == "" {
		return "an unknown version (it never connected)"
	}
	return "MQTT " + v
}

// verdict combines the findings of one requirement: the worst wins, a SHOULD requirement's
// failure is a warning, and a requirement without findings was not exercised.
func (r *run) verdict(q Requirement) RequirementResult {
	out := RequirementResult{Requirement: q}
	fs := r.findings[q.ID]
	for _, f := range fs {
		o := f.verdict
		if o == report.Fail && q.Level == Should {
			o = report.Warn
		}
		ff := Finding{Outcome: o, Text: f.text, Measurements: f.measurements}
		if len(f.evidence) > 0 {
			ff.Evidence = r.tr.Excerpt(f.evidence, 2, 2)
		}
		out.Findings = append(out.Findings, ff)
		out.Outcome = report.Worst(out.Outcome, o)
		if out.First.IsZero() || f.at.Before(out.First) {
			out.First = f.at
		}
		if f.at.After(out.Last) {
			out.Last = f.at
		}
	}
	if len(fs) == 0 {
		out.Outcome = report.Skip
		switch {
		case r.runErr != "" && r.version == "":
			out.Outcome = report.Error
			out.Message = "not judged: " + r.runErr
		case r.runErr != "" || r.cutShort != "":
			out.Message = "not exercised: the run ended early, before the phase " + r.cutShort
			if r.runErr != "" {
				out.Message += " (" + r.runErr + ")"
			} else {
				out.Message += " (the device did not come back)"
			}
		default:
			out.Message = "not exercised: nothing in this run gave occasion to judge it"
		}
		return out
	}
	var lines []string
	for _, f := range out.Findings {
		if f.Outcome == out.Outcome && (out.Outcome != report.Pass || len(lines) < 3) {
			lines = append(lines, f.Text)
		}
	}
	if out.Outcome != report.Pass {
		out.Message = strings.Join(lines, "\n")
	}
	return out
}

// Record turns the result into a report record: one case per requirement with its verdict,
// message, measurements and trace excerpts; the device's identity; the requirement and statement
// matrices.
func (r *Result) Record() *report.Record {
	rec := report.New("certify "+r.Profile+" "+r.Identity.ClientID, report.KindCertify, r.Start)
	rec.Versions.Gatehouse = r.Version
	rec.Versions.Broker = "gatehouse certifier (device conformance stage)"
	if r.Identity.Firmware != "" {
		rec.Versions.Other = map[string]string{"firmware": r.Identity.Firmware, "model": r.Identity.Model}
	}
	rec.SetProperty("profile", r.Profile)
	rec.SetProperty("client_id", r.Identity.ClientID)
	rec.SetProperty("listen", r.Listen)
	if r.Identity.Protocol != "" {
		rec.SetProperty("protocol", "MQTT "+r.Identity.Protocol)
		rec.SetProperty("keepalive", r.Identity.Keepalive.String())
		rec.SetProperty("clean_session", fmt.Sprint(r.Identity.CleanSession))
	}
	if r.Identity.Base != "" {
		rec.SetProperty("topic_base", r.Identity.Base)
	}
	if r.Error != "" {
		rec.SetError(r.Error)
	}
	for _, q := range r.Requirements {
		c := report.Case{
			Name:    fmt.Sprintf("[%s] %s: %s", strings.ToUpper(string(q.Level)), q.ID, q.Title),
			Group:   r.Profile,
			Outcome: q.Outcome,
			Start:   q.First,
			Message: q.Message,
			Labels:  q.Labels(r.Identity.Protocol),
		}
		if !q.First.IsZero() {
			c.Duration = q.Last.Sub(q.First)
		}
		var obs []string
		for _, f := range q.Findings {
			obs = append(obs, fmt.Sprintf("%s: %s", f.Outcome, f.Text))
			c.Measurements = append(c.Measurements, f.Measurements...)
		}
		if len(obs) > 0 {
			c.Evidence = append(c.Evidence, report.Text("observations", obs...))
		}
		for i, f := range q.Findings {
			if len(f.Evidence) > 0 && (f.Outcome == q.Outcome || q.Outcome == report.Pass) {
				c.Evidence = append(c.Evidence, report.Trace(fmt.Sprintf("packet trace %d: %s", i+1, f.Text), f.Evidence...))
			}
		}
		rec.AddCase(c)
	}
	for _, e := range r.Timeline {
		rec.Log(e.Time, e.Source, e.Text)
	}
	rec.Sections = append(rec.Sections, r.identitySection(), r.requirementSection(), r.statementSection())
	rec.Finish(r.End)
	return rec
}

func (r *Result) identitySection() report.Section {
	id := r.Identity
	rows := [][]report.Cell{
		{{Text: "client id"}, {Text: id.ClientID}},
		{{Text: "profile"}, {Text: r.Profile}},
		{{Text: "firmware"}, {Text: orDash(id.Firmware)}},
		{{Text: "model"}, {Text: orDash(id.Model)}},
		{{Text: "protocol"}, {Text: orDash(id.Protocol)}},
		{{Text: "keepalive"}, {Text: id.Keepalive.String()}},
		{{Text: "clean session"}, {Text: fmt.Sprint(id.CleanSession)}},
		{{Text: "topic base"}, {Text: orDash(id.Base)}},
		{{Text: "verdict"}, {Text: string(r.Outcome), Outcome: r.Outcome}},
	}
	return report.Section{ID: "device", Title: "Device", Table: &report.Table{Columns: []string{"", ""}, Rows: rows}}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *Result) requirementSection() report.Section {
	t := &report.Table{Columns: []string{"requirement", "level", "scope", "statements", "verdict"}}
	for _, q := range r.Requirements {
		refs := append(spec.Labels(q.Statements(r.Identity.Protocol)...), q.Sections...)
		t.Rows = append(t.Rows, []report.Cell{
			{Text: q.ID, Title: q.Title},
			{Text: strings.ToUpper(string(q.Level))},
			{Text: string(q.Scope)},
			{Text: strings.Join(refs, " ")},
			{Text: string(q.Outcome), Outcome: q.Outcome, Title: q.Message},
		})
	}
	text := []string{"MUST requirements fail the certification; SHOULD requirements warn. Skipped requirements were not exercised in this run (the message says why)."}
	if len(r.NotApplicable) > 0 {
		text = append(text, "Not applicable: "+strings.Join(r.NotApplicable, "; ")+".")
	}
	return report.Section{ID: "requirements", Title: "Requirements", Text: text, Table: t}
}

func (r *Result) statementSection() report.Section {
	verdicts := map[spec.ID]report.Outcome{}
	for _, q := range r.Requirements {
		for _, id := range q.Statements(r.Identity.Protocol) {
			verdicts[id] = report.Worst(verdicts[id], q.Outcome)
		}
	}
	ids := make([]spec.ID, 0, len(verdicts))
	for id := range verdicts {
		ids = append(ids, id)
	}
	spec.SortIDs(ids)
	t := &report.Table{Columns: []string{"statement", "level", "summary", "verdict"}}
	version := r.Identity.Protocol
	if version == "" {
		version = spec.Version311
	}
	for _, id := range ids {
		st, _ := spec.Lookup(version, id)
		t.Rows = append(t.Rows, []report.Cell{
			{Text: string(id)}, {Text: st.Level}, {Text: st.Summary},
			{Text: string(verdicts[id]), Outcome: verdicts[id]},
		})
	}
	return report.Section{ID: "statements", Title: "Normative statements (MQTT " + version + ")",
		Text:  []string{"Each client-side statement the requirements check, with the verdict of the requirements that check it."},
		Table: t}
}

// WriteReport writes the HTML page, JUnit XML and JSON record into dir, and the full packet trace
// as trace.txt beside them.
func (r *Result) WriteReport(dir string) (report.Paths, error) {
	p, err := report.WriteDir(dir, "Gatehouse device certification", r.Record())
	if err != nil {
		return p, err
	}
	trace := filepath.Join(dir, "trace.txt")
	if err := os.WriteFile(trace, []byte(strings.Join(r.Trace, "\n")+"\n"), 0o644); err != nil {
		return p, fmt.Errorf("write trace: %w", err)
	}
	return p, nil
}

// Summary is a few lines for a terminal: the verdict, then each requirement that did not pass.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "certify: %s %s: %s", r.Profile, r.Identity.ClientID, strings.ToUpper(string(r.Outcome)))
	if r.Identity.Firmware != "" {
		fmt.Fprintf(&b, " (firmware %s, model %s)", r.Identity.Firmware, r.Identity.Model)
	}
	b.WriteByte('\n')
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", r.Error)
	}
	counts := map[report.Outcome]int{}
	for _, q := range r.Requirements {
		counts[q.Outcome]++
	}
	fmt.Fprintf(&b, "  %d requirements: %d pass, %d fail, %d warn, %d not exercised\n", len(r.Requirements),
		counts[report.Pass], counts[report.Fail]+counts[report.Error], counts[report.Warn], counts[report.Skip])
	order := []report.Outcome{report.Error, report.Fail, report.Warn}
	for _, o := range order {
		for _, q := range r.Requirements {
			if q.Outcome != o {
				continue
			}
			msg := strings.ReplaceAll(q.Message, "\n", "\n      ")
			fmt.Fprintf(&b, "  %-5s %s: %s\n", strings.ToUpper(string(o)), q.ID, msg)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
