package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/bench/loadgen"
)

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range cases {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func rate(c, b string, rep int, r float64, lost uint64) Run {
	return Run{Case: c, Mode: Shared, Broker: b, Rep: rep, Result: loadgen.Result{Rate: r, Lost: lost, Expected: 1000, Delivered: 1000 - lost}}
}

func TestSummariseTakesMediansAndTotalsLoss(t *testing.T) {
	runs := []Run{
		rate("fan-in q1", "gatehouse", 1, 300, 0),
		rate("fan-in q1", "mosquitto", 1, 100, 0),
		rate("fan-in q1", "gatehouse", 2, 100, 2),
		rate("fan-in q1", "mosquitto", 2, 110, 0),
		rate("fan-in q1", "gatehouse", 3, 200, 1),
		{Case: "fan-in q1", Mode: Shared, Broker: "mosquitto", Rep: 3, Error: "broker exited"},
	}
	cells := Summarise(runs)
	g, ok := Find(cells, "fan-in q1", Shared, "gatehouse")
	if !ok || g.Median != 200 || g.Lost != 3 || g.Runs != 3 || g.Failed != 0 {
		t.Fatalf("gatehouse cell = %+v, want median 200, 3 lost over 3 runs", g)
	}
	m, _ := Find(cells, "fan-in q1", Shared, "mosquitto")
	if m.Median != 105 || m.Failed != 1 || len(m.Errors) != 1 {
		t.Fatalf("mosquitto cell = %+v, want median 105 of the 2 good runs, 1 failed", m)
	}
	if r := Ratio(g, m); r < 1.904 || r > 1.905 {
		t.Fatalf("Ratio = %v, want 200/105", r)
	}
}

func TestRatioFavoursLowerLatencyAndMemory(t *testing.T) {
	lat := func(b string, p99 time.Duration) Run {
		return Run{Case: "latency q1", Mode: Shared, Broker: b, Result: loadgen.Result{P99: p99}}
	}
	cells := Summarise([]Run{lat("gatehouse", 2*time.Millisecond), lat("mosquitto", 4*time.Millisecond)})
	g, _ := Find(cells, "latency q1", Shared, "gatehouse")
	m, _ := Find(cells, "latency q1", Shared, "mosquitto")
	if r := Ratio(g, m); r != 2 {
		t.Fatalf("latency Ratio = %v, want 2 (half the p99 is twice as good)", r)
	}
}

func TestJudgeNeedsRatioAndZeroLoss(t *testing.T) {
	cells := Summarise([]Run{
		rate("fan-in q1", "gatehouse", 1, 200, 0),
		rate("fan-in q1", "mosquitto", 1, 100, 0),
		rate("fan-in q2", "gatehouse", 1, 200, 1), // fast but lost one
		rate("fan-in q2", "mosquitto", 1, 100, 0),
		rate("fan-in q0", "gatehouse", 1, 150, 0), // 1.5× < 2×
		rate("fan-in q0", "mosquitto", 1, 100, 0),
		{Case: "idle", Mode: Shared, Broker: "gatehouse", Result: loadgen.Result{BytesPerConn: 5 * 1024}},
	})
	got := map[string]Verdict{}
	for _, v := range Judge(cells, Shared) {
		got[v.Target.Case] = v
	}
	for c, want := range map[string]bool{"fan-in q1": true, "fan-in q2": false, "fan-in q0": false, "idle": false} {
		if got[c].Met != want || got[c].Missing {
			t.Errorf("%s: verdict %+v, want met=%v", c, got[c], want)
		}
	}
	if !got["fan-out q0"].Missing || !got["latency q1"].Missing {
		t.Errorf("unmeasured targets not reported missing: %+v %+v", got["fan-out q0"], got["latency q1"])
	}
}

func TestMarkdownHasARowPerCaseAndTheTargets(t *testing.T) {
	f := File{Command: "make bench-broker", Runs: []Run{rate("fan-in q1", "gatehouse", 1, 200, 0), rate("fan-in q1", "mosquitto", 1, 100, 0)}}
	f.Cells = Summarise(f.Runs)
	var b bytes.Buffer
	if err := Markdown(&b, f); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"`make bench-broker`", "| fan-in q1 | deliveries per second (msg/s) | 200 | 100 | – | 2.00× |", "0/1000 · 0/1000 · –", "| QoS 1 fan-in ≥ 1.5× mosquitto, zero loss | met: 2.00×, 0 lost | not measured |"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestSpliceReplacesOnlyBetweenTheMarkers(t *testing.T) {
	doc := []byte("intro\n" + BeginMarker + "\nold table\n" + EndMarker + "\nanalysis\n")
	out, err := Splice(doc, []byte("new table\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "intro\n" + BeginMarker + "\nnew table\n" + EndMarker + "\nanalysis\n"
	if string(out) != want {
		t.Fatalf("Splice = %q, want %q", out, want)
	}
	if _, err := Splice([]byte("no markers"), nil); !errors.Is(err, ErrNoMarkers) {
		t.Fatalf("Splice without markers: %v, want ErrNoMarkers", err)
	}
	if _, err := Splice([]byte(EndMarker+BeginMarker), nil); !errors.Is(err, ErrNoMarkers) {
		t.Fatalf("Splice with markers in the wrong order: %v, want ErrNoMarkers", err)
	}
}

func TestANoteAfterTheMeasurementIsNotAFailure(t *testing.T) {
	r := rate("idle", "mochi", 1, 0, 0)
	r.Result = loadgen.Result{BytesPerConn: 27 * 1024}
	r.Note = "broker mochi: still running 30s after SIGTERM; killed"
	f := File{Runs: []Run{r}}
	f.Cells = Summarise(f.Runs)
	c, _ := Find(f.Cells, "idle", Shared, "mochi")
	if c.Failed != 0 || c.Median != 27 || len(c.Notes) != 1 {
		t.Fatalf("cell = %+v, want the measurement kept and the note recorded", c)
	}
	var b bytes.Buffer
	if err := Markdown(&b, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "not counted as failures") || strings.Contains(b.String(), "Failed runs") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}
