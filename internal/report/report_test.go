package report

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)

// sample builds a record with every kind of content: passing, failing, errored, skipped and
// warning cases, measurements, evidence of each layout, labels, a timeline and an extra section.
func sample() *Record {
	r := New("gate-power-cut", KindScenario, t0)
	r.SetSeed(42)
	r.Versions.Gatehouse = "v0.1.0"
	r.Versions.Go = "go1.26.0"
	r.Versions.Broker = "gatehouse reference broker"
	r.Versions.Other = map[string]string{"fleet": "gate fw 1.4.2"}
	r.SetProperty("file", "scenarios/gate-power-cut.yaml")
	r.SetProperty("broker_url", "tcp://127.0.0.1:40000")
	r.AddCase(Case{
		Name: "step 1 (at 0s): retained acs/+/+/+/status {online:true} ×6", Group: "gate-power-cut",
		Outcome: Pass, Start: t0, Duration: 420 * time.Millisecond,
		Measurements: []Measurement{MeasureDuration("time to all online", 420*time.Millisecond, AtMost(5000))},
	})
	r.AddCase(Case{
		Name: "step 3 (at 5s): publish acs/+/gate/gate-02/status {online:false} within 4s", Group: "gate-power-cut",
		Outcome: Fail, Start: t0.Add(5 * time.Second), Duration: 4 * time.Second,
		Message: `no message on acs/+/gate/gate-02/status matched {"online":false} within 4s; observed instead: acs/site-1/gate/gate-02/status {"online":true} at +0.120s`,
		Evidence: []Evidence{
			Text("observed messages", `+0.120s acs/site-1/gate/gate-02/status q1 r {"online":true}`),
			Trace("packet trace", "+5.001s gate-02 -> PINGREQ", "+5.002s <- gate-02 PINGRESP"),
			KeyValues("fault", KV{"device", "gate-02"}, KV{"kind", "power_cut"}),
		},
		Labels: []string{"MQTT-3.1.2-8"},
	})
	r.AddCase(Case{Name: "broker restart", Group: "gate-power-cut", Outcome: Skip, Message: "the target cannot restart"})
	r.AddCase(Case{Name: "p99 latency", Group: "gate-power-cut", Outcome: Warn, Message: "only 12 samples"})
	r.AddCase(Case{Name: "controller", Group: "gate-power-cut", Outcome: Error, Message: "controller lost its connection: EOF <&>"})
	r.Log(t0.Add(time.Second), "step 2", "command open to gate-01 (corr s42-1)")
	r.Timeline = append(r.Timeline, Event{Time: t0.Add(9 * time.Second), Source: "step 3", Text: "expectation failed", Outcome: Fail})
	r.Sections = append(r.Sections, Section{
		ID: "coverage", Title: "Statement coverage", Text: []string{"Statements checked by this run."},
		Table: &Table{Columns: []string{"statement", "verdict"}, Rows: [][]Cell{
			{{Text: "MQTT-3.1.2-8"}, {Text: "fail", Outcome: Fail, Title: "will not published"}},
			{{Text: "MQTT-3.3.1-5"}, {Text: "pass", Outcome: Pass}},
		}},
	})
	r.Finish(t0.Add(12 * time.Second))
	return r
}

func TestWorst(t *testing.T) {
	cases := []struct {
		in   []Outcome
		want Outcome
	}{
		{nil, ""},
		{[]Outcome{Pass}, Pass},
		{[]Outcome{Skip, Pass}, Pass},
		{[]Outcome{Pass, Warn}, Warn},
		{[]Outcome{Warn, Fail, Pass}, Fail},
		{[]Outcome{Fail, Error}, Error},
		{[]Outcome{Skip, Skip}, Skip},
		{[]Outcome{"", Pass}, Pass},
	}
	for _, c := range cases {
		if got := Worst(c.in...); got != c.want {
			t.Errorf("Worst(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFinishDerivesOutcome(t *testing.T) {
	cases := []struct {
		name     string
		cases    []Outcome
		preError bool
		want     Outcome
	}{
		{"all pass", []Outcome{Pass, Pass}, false, Pass},
		{"one fail", []Outcome{Pass, Fail}, false, Fail},
		{"warn only", []Outcome{Pass, Warn}, false, Warn},
		{"skipped only", []Outcome{Skip}, false, Skip},
		{"no case is an error", nil, false, Error},
		{"run error survives passing cases", []Outcome{Pass}, true, Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := New("x", KindScenario, t0)
			if c.preError {
				r.SetError("broker did not start")
			}
			for _, o := range c.cases {
				r.AddCase(Case{Name: string(o), Outcome: o})
			}
			r.Finish(t0.Add(time.Second))
			if r.Outcome != c.want {
				t.Fatalf("outcome = %q, want %q", r.Outcome, c.want)
			}
			if r.Outcome == Error && r.Message == "" {
				t.Fatal("an errored run has no message")
			}
			if r.Duration() != time.Second {
				t.Fatalf("duration = %v", r.Duration())
			}
		})
	}
}

func TestMeasureJudgesLimits(t *testing.T) {
	cases := []struct {
		name  string
		value float64
		lim   Limits
		want  Outcome
	}{
		{"no limits", 5, Limits{}, Pass},
		{"at most, under", 49, AtMost(50), Pass},
		{"at most, on the limit", 50, AtMost(50), Pass},
		{"at most, over", 50.01, AtMost(50), Fail},
		{"at least, under", 0.99, AtLeast(1), Fail},
		{"at least, on", 1, AtLeast(1), Pass},
		{"between, inside", 3, Between(1, 5), Pass},
		{"between, below", 0, Between(1, 5), Fail},
		{"between, above", 6, Between(1, 5), Fail},
		{"NaN", math.NaN(), AtMost(1), Error},
		{"infinite", math.Inf(1), Limits{}, Error},
	}
	for _, c := range cases {
		m := Measure(c.name, c.value, "ms", c.lim)
		if m.Outcome != c.want {
			t.Errorf("%s: Measure(%v) outcome = %q, want %q", c.name, c.value, m.Outcome, c.want)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			t.Errorf("%s: a non-finite value was kept (%v); JSON cannot carry it", c.name, m.Value)
		}
	}
	if m := MeasureDuration("latency", 1500*time.Microsecond, AtMost(1)); m.Value != 1.5 || m.Unit != "ms" || m.Outcome != Fail {
		t.Errorf("MeasureDuration = %+v, want 1.5 ms failing a 1 ms limit", m)
	}
}

func TestCaseJudge(t *testing.T) {
	c := Case{Name: "x", Measurements: []Measurement{Measure("a", 1, "", AtMost(2)), Measure("b", 3, "", AtMost(2))}}
	c.Judge()
	if c.Outcome != Fail {
		t.Fatalf("a case with a failing measurement judged %q", c.Outcome)
	}
	c = Case{Name: "y", Measurements: []Measurement{Measure("a", 1, "", AtMost(2))}}
	c.Judge()
	if c.Outcome != Pass {
		t.Fatalf("a case whose measurements hold judged %q", c.Outcome)
	}
	c = Case{Name: "z"}
	c.Judge()
	if c.Outcome != Error || c.Message == "" {
		t.Fatalf("a case with nothing measured judged %q (%q), want error with a message", c.Outcome, c.Message)
	}
	c = Case{Name: "kept", Outcome: Skip}
	c.Judge()
	if c.Outcome != Skip {
		t.Fatalf("Judge overwrote an outcome already set: %q", c.Outcome)
	}
}

func TestSlug(t *testing.T) {
	cases := map[string]string{
		"gate-power-cut":           "gate-power-cut",
		"Morning Rush (turnstile)": "morning-rush-turnstile",
		"../../etc/passwd":         "etc-passwd",
		"":                         "run",
		"ÄÖ":                       "run",
		"a  b":                     "a-b",
	}
	for in, want := range cases {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}
