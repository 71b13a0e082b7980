// Package report turns the broker benchmark's runs into medians, ratios and verdicts on the
// targets, and writes them as JSON and as the markdown table of BENCHMARKS.md.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/bench/loadgen"
)

// Modes: the broker shares both cores with the load generator, or is pinned to core 0 with the
// load generator on core 1.
const (
	Shared = "shared"
	Pinned = "pinned"
)

// Run is one workload against one fresh broker process.
type Run struct {
	Case   string         `json:"case"` // e.g. "fan-in q1"
	Mode   string         `json:"mode"`
	Broker string         `json:"broker"`
	Rep    int            `json:"rep"`
	Result loadgen.Result `json:"result"`
	// BrokerCPU is the CPU time (user + system) the broker used during the workload.
	BrokerCPU time.Duration `json:"broker_cpu_ns"`
	Error     string        `json:"error,omitempty"`
	// Note is something that went wrong after the measurement, which it does not invalidate
	// (e.g. a broker that had to be killed after the run).
	Note string `json:"note,omitempty"`
}

// Metric is what a case is judged by.
type Metric struct {
	Name         string
	Unit         string
	HigherBetter bool
	Value        func(loadgen.Result) float64
}

// MetricFor returns the headline metric of a case: delivery rate for throughput cases, p99
// latency for the latency case, resident bytes per connection for the idle case.
func MetricFor(c string) Metric {
	switch {
	case strings.HasPrefix(c, "latency"):
		return Metric{Name: "p99 latency", Unit: "ms", Value: func(r loadgen.Result) float64 { return ms(r.P99) }}
	case strings.HasPrefix(c, "idle"):
		return Metric{Name: "memory per idle connection", Unit: "KB", Value: func(r loadgen.Result) float64 { return r.BytesPerConn / 1024 }}
	default:
		return Metric{Name: "deliveries per second", Unit: "msg/s", HigherBetter: true, Value: func(r loadgen.Result) float64 { return r.Rate }}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Cell summarises the runs of one case, mode and broker.
type Cell struct {
	Case   string  `json:"case"`
	Mode   string  `json:"mode"`
	Broker string  `json:"broker"`
	Runs   int     `json:"runs"`
	Failed int     `json:"failed"`
	Median float64 `json:"median"` // of the case's metric, over the runs that did not fail
	Unit   string  `json:"unit"`
	// Totals over all runs.
	Lost       uint64 `json:"lost"`
	Expected   uint64 `json:"expected"`
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	// Medians of the secondary figures.
	P50Ms          float64  `json:"p50_ms,omitempty"`
	ConnectSeconds float64  `json:"connect_seconds,omitempty"`
	CPUPerMsgUs    float64  `json:"cpu_per_msg_us,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// Median returns the median of xs (the mean of the middle two for an even count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Summarise groups runs by case, mode and broker, in the order they first appear.
func Summarise(runs []Run) []Cell {
	type key struct{ c, m, b string }
	idx := map[key]int{}
	var cells []Cell
	vals := map[key][]float64{}
	p50 := map[key][]float64{}
	conn := map[key][]float64{}
	cpu := map[key][]float64{}
	for _, r := range runs {
		k := key{r.Case, r.Mode, r.Broker}
		i, ok := idx[k]
		if !ok {
			i = len(cells)
			idx[k] = i
			cells = append(cells, Cell{Case: r.Case, Mode: r.Mode, Broker: r.Broker, Unit: MetricFor(r.Case).Unit})
		}
		c := &cells[i]
		c.Runs++
		if r.Note != "" {
			c.Notes = append(c.Notes, r.Note)
		}
		if r.Error != "" {
			c.Failed++
			c.Errors = append(c.Errors, r.Error)
			continue
		}
		res := r.Result
		c.Lost += res.Lost
		c.Expected += res.Expected
		c.Duplicates += res.Duplicates
		c.OutOfOrder += res.OutOfOrder
		vals[k] = append(vals[k], MetricFor(r.Case).Value(res))
		if res.P50 > 0 {
			p50[k] = append(p50[k], ms(res.P50))
		}
		if res.ConnectTime > 0 {
			conn[k] = append(conn[k], res.ConnectTime.Seconds())
		}
		if res.Delivered > 0 && r.BrokerCPU > 0 {
			cpu[k] = append(cpu[k], float64(r.BrokerCPU.Microseconds())/float64(res.Delivered))
		}
	}
	for k, i := range idx {
		c := &cells[i]
		c.Median = Median(vals[k])
		c.P50Ms = Median(p50[k])
		c.ConnectSeconds = Median(conn[k])
		c.CPUPerMsgUs = Median(cpu[k])
	}
	return cells
}

// Find returns the cell of a case, mode and broker.
func Find(cells []Cell, c, mode, broker string) (Cell, bool) {
	for _, x := range cells {
		if x.Case == c && x.Mode == mode && x.Broker == broker {
			return x, true
		}
	}
	return Cell{}, false
}

// Ratio is how many times better a is than b on the case's metric (>1: a is better), or 0 when
// either is missing or zero.
func Ratio(a, b Cell) float64 {
	if a.Median == 0 || b.Median == 0 || a.Runs == a.Failed || b.Runs == b.Failed {
		return 0
	}
	if MetricFor(a.Case).HigherBetter {
		return a.Median / b.Median
	}
	return b.Median / a.Median
}

// Target is one goal the reference broker must meet.
type Target struct {
	Name string `json:"name"`
	Case string `json:"case"`
	// MinRatio over mosquitto (for memory: the absolute MaxKB instead).
	MinRatio float64 `json:"min_ratio,omitempty"`
	MaxKB    float64 `json:"max_kb,omitempty"`
	// ZeroLoss requires that the reference broker lost nothing in any run.
	ZeroLoss bool `json:"zero_loss,omitempty"`
}

// Targets are the goals of the reference broker against mosquitto on this machine.
var Targets = []Target{
	{Name: "QoS 0 fan-in ≥ 2× mosquitto", Case: "fan-in q0", MinRatio: 2},
	{Name: "QoS 1 fan-in ≥ 1.5× mosquitto, zero loss", Case: "fan-in q1", MinRatio: 1.5, ZeroLoss: true},
	{Name: "QoS 2 fan-in ≥ 1.5× mosquitto, zero loss", Case: "fan-in q2", MinRatio: 1.5, ZeroLoss: true},
	{Name: "fan-out ≥ 3× mosquitto", Case: "fan-out q0", MinRatio: 3},
	{Name: "≤ 4 KB per idle connection", Case: "idle", MaxKB: 4},
	{Name: "p99 latency at 5,000 QoS 1 msg/s ≤ mosquitto's", Case: "latency q1", MinRatio: 1, ZeroLoss: true},
}

// Verdict is a target judged in one mode.
type Verdict struct {
	Target   Target  `json:"target"`
	Mode     string  `json:"mode"`
	Measured string  `json:"measured"`
	Ratio    float64 `json:"ratio,omitempty"`
	Met      bool    `json:"met"`
	Missing  bool    `json:"missing,omitempty"` // not measured in this mode
}

// Judge checks every target against the cells of one mode.
func Judge(cells []Cell, mode string) []Verdict {
	var out []Verdict
	for _, t := range Targets {
		v := Verdict{Target: t, Mode: mode}
		g, okG := Find(cells, t.Case, mode, "gatehouse")
		if !okG || g.Runs == g.Failed {
			v.Missing = true
			v.Measured = "not measured"
			out = append(out, v)
			continue
		}
		lossOK := !t.ZeroLoss || (g.Lost == 0 && g.Failed == 0)
		if t.MaxKB > 0 {
			v.Measured = fmt.Sprintf("%.2f KB", g.Median)
			v.Met = g.Median <= t.MaxKB && g.Failed == 0
			out = append(out, v)
			continue
		}
		m, okM := Find(cells, t.Case, mode, "mosquitto")
		if !okM {
			v.Missing = true
			v.Measured = "mosquitto not measured"
			out = append(out, v)
			continue
		}
		v.Ratio = Ratio(g, m)
		v.Measured = fmt.Sprintf("%.2f×", v.Ratio)
		if t.ZeroLoss {
			v.Measured += fmt.Sprintf(", %d lost", g.Lost)
		}
		v.Met = v.Ratio >= t.MinRatio && lossOK
		out = append(out, v)
	}
	return out
}

// File is the JSON document the benchmark writes.
type File struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Runs     []Run     `json:"runs"`
	Cells    []Cell    `json:"cells"`
	Verdicts []Verdict `json:"verdicts"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs     int               `json:"cpus"`
	CPUModel string            `json:"cpu_model"`
	Kernel   string            `json:"kernel"`
	Go       string            `json:"go"`
	Brokers  map[string]string `json:"brokers"` // broker → version
}

// Settings are the workload parameters of the run.
type Settings struct {
	Reps        int     `json:"reps"`
	Duration    string  `json:"duration"`
	Drain       string  `json:"drain"`
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	Window      int     `json:"window"`
	Payload     int     `json:"payload"`
	Idle        int     `json:"idle_connections"`
	LatencyRate float64 `json:"latency_rate"`
	Inflight    int     `json:"inflight"`
}

// WriteJSON writes f to path.
func WriteJSON(path string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("results JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("results JSON: %w", err)
	}
	return nil
}

// brokerOrder is the column order of the tables.
var brokerOrder = []string{"gatehouse", "mosquitto", "mochi"}

// Markdown writes the results tables: one per mode, then the targets.
func Markdown(w io.Writer, f File) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Reproduce: `%s` (%s; %d CPUs, %s; %s).\n\n", f.Command, f.Started.UTC().Format("2006-01-02 15:04 UTC"),
		f.Machine.CPUs, f.Machine.CPUModel, f.Machine.Go)
	s := f.Settings
	fmt.Fprintf(&b, "Settings: %d repetitions, %s per throughput run, %d publishers (fan-in), %d subscribers (fan-out), "+
		"window %d per publisher, %d-byte payloads, %d idle connections, latency at %.0f msg/s; "+
		"each run against a fresh broker process, brokers alternating within each repetition. Figures are medians.\n",
		s.Reps, s.Duration, s.Publishers, s.Subscribers, s.Window, s.Payload, s.Idle, s.LatencyRate)
	for _, mode := range []string{Shared, Pinned} {
		var cases []string
		for _, c := range f.Cells {
			if c.Mode == mode && !slices.Contains(cases, c.Case) {
				cases = append(cases, c.Case)
			}
		}
		if len(cases) == 0 {
			continue
		}
		if mode == Shared {
			b.WriteString("\n#### Broker and load generator sharing both cores\n\n")
		} else {
			b.WriteString("\n#### Broker pinned to core 0, load generator to core 1 (`taskset`)\n\n")
		}
		b.WriteString("| workload | metric | gatehouse | mosquitto | mochi | gatehouse ÷ mosquitto | gatehouse ÷ mochi | lost / expected (gatehouse · mosquitto · mochi) | broker CPU µs/msg (g · mq · mc) |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|---|---|\n")
		for _, c := range cases {
			m := MetricFor(c)
			row := []string{c, m.Name + " (" + m.Unit + ")"}
			var got [3]Cell
			var has [3]bool
			for i, br := range brokerOrder {
				got[i], has[i] = Find(f.Cells, c, mode, br)
				row = append(row, cellValue(got[i], has[i]))
			}
			row = append(row, ratioText(got[0], got[1], has[0] && has[1]), ratioText(got[0], got[2], has[0] && has[2]))
			var loss, cpu []string
			for i := range brokerOrder {
				loss = append(loss, lossText(got[i], has[i]))
				cpu = append(cpu, cpuText(got[i], has[i]))
			}
			row = append(row, strings.Join(loss, " · "), strings.Join(cpu, " · "))
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
		extra := secondary(f.Cells, mode)
		if extra != "" {
			b.WriteString("\n" + extra)
		}
	}
	b.WriteString("\n#### Targets\n\n| target | shared cores | pinned |\n|---|---|---|\n")
	shared, pinned := Judge(f.Cells, Shared), Judge(f.Cells, Pinned)
	for i, t := range Targets {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, verdictText(shared[i]), verdictText(pinned[i]))
	}
	var errs []string
	for _, c := range f.Cells {
		for _, e := range c.Errors {
			errs = append(errs, fmt.Sprintf("- %s, %s, %s: %s", c.Case, c.Mode, c.Broker, e))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFailed runs:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	var notes []string
	for _, c := range f.Cells {
		for _, n := range c.Notes {
			notes = append(notes, fmt.Sprintf("- %s, %s, %s: %s", c.Case, c.Mode, c.Broker, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nAfter the measurement (not counted as failures):\n\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func secondary(cells []Cell, mode string) string {
	var b strings.Builder
	for _, c := range cells {
		if c.Mode != mode || c.Runs == c.Failed {
			continue
		}
		switch {
		case strings.HasPrefix(c.Case, "latency"):
			fmt.Fprintf(&b, "- %s, %s: p50 %.2f ms, p99 %.2f ms\n", c.Case, c.Broker, c.P50Ms, c.Median)
		case strings.HasPrefix(c.Case, "idle"):
			fmt.Fprintf(&b, "- %s, %s: connecting took %.2f s, %.2f KB per connection\n", c.Case, c.Broker, c.ConnectSeconds, c.Median)
		}
	}
	return b.String()
}

func cellValue(c Cell, ok bool) string {
	switch {
	case !ok:
		return "–"
	case c.Runs == c.Failed:
		return "failed"
	}
	s := formatValue(c.Median, c.Unit)
	if c.Failed > 0 {
		s += fmt.Sprintf(" (%d/%d runs failed)", c.Failed, c.Runs)
	}
	return s
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "msg/s":
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratioText(a, b Cell, ok bool) string {
	if !ok {
		return "–"
	}
	r := Ratio(a, b)
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

func lossText(c Cell, ok bool) string {
	if !ok || c.Expected == 0 {
		return "–"
	}
	s := fmt.Sprintf("%d/%d", c.Lost, c.Expected)
	if c.Duplicates > 0 {
		s += fmt.Sprintf(" +%d dup", c.Duplicates)
	}
	return s
}

func cpuText(c Cell, ok bool) string {
	if !ok || c.CPUPerMsgUs == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", c.CPUPerMsgUs)
}

func verdictText(v Verdict) string {
	switch {
	case v.Missing:
		return "not measured"
	case v.Met:
		return "met: " + v.Measured
	default:
		return "**not met**: " + v.Measured
	}
}

// Markers delimit the generated part of BENCHMARKS.md.
const (
	BeginMarker = "<!-- results:begin (written by bench/cmd/brokerbench) -->"
	EndMarker   = "<!-- results:end -->"
)

// ErrNoMarkers is returned by Splice when the document lacks the markers.
var ErrNoMarkers = errors.New("no results markers")

// Splice replaces what is between the markers of doc with results.
func Splice(doc, results []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(BeginMarker))
	j := bytes.Index(doc, []byte(EndMarker))
	if i < 0 || j < 0 || j < i {
		return nil, fmt.Errorf("%w: want %q then %q", ErrNoMarkers, BeginMarker, EndMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(BeginMarker)])
	out.WriteString("\n")
	out.Write(results)
	out.Write(doc[j:])
	return out.Bytes(), nil
}
