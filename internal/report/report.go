// Package report is the one result model of Gatehouse and its writers. Scenario runs, conformance
// runs, hardware-in-the-loop runs and device certification all fill the same Record — a run with
// its seed and versions, a list of cases with measurements, evidence and labels, a timeline of
// events, and optional extra sections — and write it as JUnit XML (for CI systems), a JSON record
// (stable field names, documented in README.md) and a self-contained HTML page.
//
// The model follows the shape of an OpenHTF test record: a case is judged by its measurements
// against their limits and carries the evidence a reader needs to believe the verdict.
package report

import (
	"math"
	"runtime"
	"time"
)

// SchemaVersion names the JSON layout written by WriteJSON. It changes only when a field changes
// meaning or disappears; new optional fields keep it.
const SchemaVersion = "gatehouse.report/v1"

// Kind says which part of Gatehouse produced a record.
type Kind string

// The kinds of run.
const (
	KindScenario    Kind = "scenario"
	KindConformance Kind = "conformance"
	KindHIL         Kind = "hil"
	KindCertify     Kind = "certify"
)

// Outcome is the verdict of a run, a case or a measurement.
type Outcome string

// The outcomes, from the JSON and HTML point of view. Error means the check could not be carried
// out (setup failed, a broker did not start); Fail means it was carried out and did not hold.
const (
	Pass  Outcome = "pass"
	Fail  Outcome = "fail"
	Error Outcome = "error"
	Skip  Outcome = "skip"
	Warn  Outcome = "warn"
)

// severity orders outcomes so that the worst one wins when they are combined.
func (o Outcome) severity() int {
	switch o {
	case Error:
		return 5
	case Fail:
		return 4
	case Warn:
		return 3
	case Pass:
		return 2
	case Skip:
		return 1
	}
	return 0
}

// Worst returns the most severe of the outcomes: error > fail > warn > pass > skip. An empty
// outcome counts for nothing; Worst of nothing is "".
func Worst(outcomes ...Outcome) Outcome {
	var w Outcome
	for _, o := range outcomes {
		if o.severity() > w.severity() {
			w = o
		}
	}
	return w
}

// Failed reports whether the outcome should make a pipeline fail.
func (o Outcome) Failed() bool { return o == Fail || o == Error }

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool { return o.severity() > 0 }

// Record is one run: a scenario, a conformance suite against one target, a bench session, a
// certification. Its JSON form is documented in README.md.
type Record struct {
	Schema     string            `json:"schema"`
	Name       string            `json:"name"`
	Kind       Kind              `json:"kind"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Outcome    Outcome           `json:"outcome"`
	Message    string            `json:"message,omitempty"` // why the run as a whole errored, if it did
	Seed       *uint64           `json:"seed,omitempty"`    // the seed that replays the run, when it has one
	Versions   Versions          `json:"versions"`
	Properties map[string]string `json:"properties,omitempty"` // free facts: scenario file, target URL, bench file
	Cases      []Case            `json:"cases"`
	Timeline   []Event           `json:"timeline,omitempty"`
	Sections   []Section         `json:"sections,omitempty"`
}

// New starts a record of the given kind, stamped with the start time and the Go version.
func New(name string, kind Kind, start time.Time) *Record {
	return &Record{
		Schema:   SchemaVersion,
		Name:     name,
		Kind:     kind,
		Start:    start,
		Versions: Versions{Go: runtime.Version()},
	}
}

// SetSeed records the seed that replays the run.
func (r *Record) SetSeed(seed uint64) { r.Seed = &seed }

// SetProperty records a free fact about the run.
func (r *Record) SetProperty(key, value string) {
	if r.Properties == nil {
		r.Properties = map[string]string{}
	}
	r.Properties[key] = value
}

// AddCase appends a case and returns a pointer to it, valid until the next AddCase.
func (r *Record) AddCase(c Case) *Case {
	r.Cases = append(r.Cases, c)
	return &r.Cases[len(r.Cases)-1]
}

// Log appends an event to the timeline.
func (r *Record) Log(at time.Time, source, text string) {
	r.Timeline = append(r.Timeline, Event{Time: at, Source: source, Text: text})
}

// SetError marks the whole run as errored with a message (a broker that did not start, a file that
// did not parse). Cases already recorded keep their own outcomes.
func (r *Record) SetError(msg string) {
	r.Message = msg
	r.Outcome = Error
}

// Finish stamps the end time and derives the run's outcome from its cases: the worst case wins,
// a run that already errored stays errored, and a run without any case is an error (nothing was
// checked, which must never read as a pass).
func (r *Record) Finish(end time.Time) {
	r.End = end
	if r.Schema == "" {
		r.Schema = SchemaVersion
	}
	o := r.Outcome
	if o != Error {
		o = ""
	}
	for _, c := range r.Cases {
		o = Worst(o, c.Outcome)
	}
	if o == "" {
		o = Error
		if r.Message == "" {
			r.Message = "no case was recorded"
		}
	}
	r.Outcome = o
}

// Duration is the run's wall-clock duration.
func (r *Record) Duration() time.Duration {
	if r.End.IsZero() || r.End.Before(r.Start) {
		return 0
	}
	return r.End.Sub(r.Start)
}

// Counts tallies the cases by outcome.
type Counts struct {
	Total, Pass, Fail, Error, Skip, Warn int
}

// Count tallies the cases of the record.
func (r *Record) Count() Counts {
	var n Counts
	for _, c := range r.Cases {
		n.Total++
		switch c.Outcome {
		case Pass:
			n.Pass++
		case Fail:
			n.Fail++
		case Error:
			n.Error++
		case Skip:
			n.Skip++
		case Warn:
			n.Warn++
		}
	}
	return n
}

// Versions names what ran: Gatehouse itself, the Go toolchain and the broker under test.
type Versions struct {
	Gatehouse string            `json:"gatehouse,omitempty"`
	Go        string            `json:"go,omitempty"`
	Broker    string            `json:"broker,omitempty"`
	Other     map[string]string `json:"other,omitempty"` // device firmware, bench drivers, …
}

// Case is one judged check: a scenario step's expectation, a conformance spec, a HIL check.
type Case struct {
	Name         string        `json:"name"`
	Group        string        `json:"group,omitempty"` // JUnit classname: the scenario, suite or bench
	Outcome      Outcome       `json:"outcome"`
	Start        time.Time     `json:"start,omitzero"`
	Duration     time.Duration `json:"duration_ns"`
	Message      string        `json:"message,omitempty"` // for fail/error/skip/warn: what happened instead
	Measurements []Measurement `json:"measurements,omitempty"`
	Evidence     []Evidence    `json:"evidence,omitempty"`
	Labels       []string      `json:"labels,omitempty"` // e.g. spec statement IDs such as MQTT-3.3.2-2
}

// Judge sets the case's outcome from its measurements when it has none yet: the worst measurement
// outcome, or pass when every measurement holds. A case with neither outcome nor measurements is
// an error, because nothing was checked.
func (c *Case) Judge() {
	if c.Outcome != "" {
		return
	}
	o := Outcome("")
	for _, m := range c.Measurements {
		o = Worst(o, m.Outcome)
	}
	if o == "" {
		o = Error
		if c.Message == "" {
			c.Message = "nothing was measured"
		}
	}
	c.Outcome = o
}

// Measurement is a value with its unit, its limits and its verdict against them.
type Measurement struct {
	Name    string   `json:"name"`
	Value   float64  `json:"value"`
	Unit    string   `json:"unit,omitempty"`
	Low     *float64 `json:"low,omitempty"`  // inclusive lower limit
	High    *float64 `json:"high,omitempty"` // inclusive upper limit
	Outcome Outcome  `json:"outcome"`
	Note    string   `json:"note,omitempty"`
}

// Limits bounds a measurement; a nil bound is open.
type Limits struct {
	Low, High *float64
}

// AtMost limits a value from above (inclusive).
func AtMost(high float64) Limits { return Limits{High: &high} }

// AtLeast limits a value from below (inclusive).
func AtLeast(low float64) Limits { return Limits{Low: &low} }

// Between limits a value on both sides (inclusive).
func Between(low, high float64) Limits { return Limits{Low: &low, High: &high} }

// Measure judges a value against its limits. A value that is not a finite number is an error —
// JSON cannot carry it and no limit can judge it — and is recorded as 0 with a note.
func Measure(name string, value float64, unit string, lim Limits) Measurement {
	m := Measurement{Name: name, Value: value, Unit: unit, Low: lim.Low, High: lim.High, Outcome: Pass}
	switch {
	case math.IsNaN(value) || math.IsInf(value, 0):
		m.Value, m.Outcome, m.Note = 0, Error, "value is not a finite number"
	case lim.Low != nil && value < *lim.Low:
		m.Outcome = Fail
	case lim.High != nil && value > *lim.High:
		m.Outcome = Fail
	}
	return m
}

// MeasureDuration records a duration in milliseconds, judged against limits in the same unit.
func MeasureDuration(name string, d time.Duration, lim Limits) Measurement {
	return Measure(name, float64(d)/float64(time.Millisecond), "ms", lim)
}

// EvidenceKind says how a piece of evidence is laid out.
type EvidenceKind string

// The evidence layouts.
const (
	EvidenceText  EvidenceKind = "text"  // free lines (logs, observed messages)
	EvidenceTrace EvidenceKind = "trace" // packet trace lines, one packet per line
	EvidenceKV    EvidenceKind = "kv"    // key/value pairs
)

// Evidence is what a reader needs to believe a verdict: observed messages, a packet trace, facts.
type Evidence struct {
	Title string       `json:"title"`
	Kind  EvidenceKind `json:"kind"`
	Lines []string     `json:"lines,omitempty"`
	Pairs []KV         `json:"pairs,omitempty"`
}

// KV is one key/value fact of key/value evidence.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Text builds text evidence.
func Text(title string, lines ...string) Evidence {
	return Evidence{Title: title, Kind: EvidenceText, Lines: lines}
}

// Trace builds packet-trace evidence.
func Trace(title string, lines ...string) Evidence {
	return Evidence{Title: title, Kind: EvidenceTrace, Lines: lines}
}

// KeyValues builds key/value evidence.
func KeyValues(title string, pairs ...KV) Evidence {
	return Evidence{Title: title, Kind: EvidenceKV, Pairs: pairs}
}

// Event is one entry of the run's timeline: an action taken, a message observed, a fault injected.
type Event struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`            // who acted or what was seen: "step 3", "observer", "fleet"
	Text    string    `json:"text"`              // what happened
	Outcome Outcome   `json:"outcome,omitempty"` // set when the event is a verdict
}

// Section is an extra part of a report that the fixed layout does not cover — a conformance
// coverage matrix (statements × verdict), a bench wiring table. It is data, so that JSON carries it
// as well as HTML; the HTML writer renders its text and table after the cases.
type Section struct {
	ID    string   `json:"id"` // anchor in the HTML page; unique within the record
	Title string   `json:"title"`
	Text  []string `json:"text,omitempty"` // paragraphs
	Table *Table   `json:"table,omitempty"`
}

// Table is a section's grid. A cell may carry an outcome, which colours it.
type Table struct {
	Columns []string `json:"columns"`
	Rows    [][]Cell `json:"rows"`
}

// Cell is one table cell.
type Cell struct {
	Text    string  `json:"text"`
	Outcome Outcome `json:"outcome,omitempty"`
	Title   string  `json:"title,omitempty"` // longer explanation, shown on hover
}
