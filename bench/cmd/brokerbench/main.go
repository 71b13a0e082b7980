// Command brokerbench runs identical workloads against the reference broker (`gatehouse broker`),
// Debian's mosquitto and mochi-mqtt, each broker a fresh process per run, alternating brokers
// within each repetition, and writes the medians and ratios as JSON and into BENCHMARKS.md.
//
// Workloads: QoS 0/1/2 fan-in (publishers → one subscriber on "#"), QoS 0 fan-out (one publisher
// → many subscribers), idle connections (connect time, broker memory per connection) and latency
// at a fixed QoS 1 rate. Every run counts lost, duplicated and reordered messages. The throughput
// workloads are repeated with the broker pinned to core 0 and the load generator to core 1.
//
// `make bench-broker` runs it with the defaults; -quick runs a small version for a smoke test.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-iot/gatehouse/bench/brokers"
	"github.com/gatehouse-iot/gatehouse/bench/loadgen"
	"github.com/gatehouse-iot/gatehouse/bench/report"
	"github.com/gatehouse-iot/gatehouse/packet"
)

type config struct {
	root, gatehouseBin, mochiBin, mosquittoBin string
	brokers, cases, pinnedCases                []string
	reps                                       int
	duration, latencyDuration, warmup, drain   time.Duration
	publishers, subscribers, window, payload   int
	idle, inflight                             int
	latencyRate                                float64
	jsonOut, markdown                          string
	command                                    string
	addr                                       string
}

func main() {
	var c config
	var brokersFlag, casesFlag, pinnedFlag string
	var quick bool
	flag.StringVar(&c.root, "root", "..", "the gatehouse repository `DIR` (to build the gatehouse binary)")
	flag.StringVar(&c.gatehouseBin, "gatehouse", "", "gatehouse `BINARY` (built from -root when empty)")
	flag.StringVar(&c.mochiBin, "mochi", "", "mochibroker `BINARY` (built from ./cmd/mochibroker when empty)")
	flag.StringVar(&c.mosquittoBin, "mosquitto", "/usr/sbin/mosquitto", "mosquitto `BINARY`")
	flag.StringVar(&brokersFlag, "brokers", "gatehouse,mosquitto,mochi", "brokers to compare, comma-separated")
	flag.StringVar(&casesFlag, "cases", "fan-in q0,fan-in q1,fan-in q2,fan-out q0,idle,latency q1", "workloads with the broker sharing both cores, comma-separated")
	flag.StringVar(&pinnedFlag, "pinned-cases", "fan-in q0,fan-in q1,fan-in q2,fan-out q0,latency q1", "workloads repeated with the broker pinned to core 0 (empty: none)")
	flag.IntVar(&c.reps, "reps", 3, "repetitions of every workload against every broker")
	flag.DurationVar(&c.duration, "duration", 2*time.Second, "publishing time of each throughput run")
	flag.DurationVar(&c.drain, "drain", 5*time.Second, "how long subscribers may receive nothing before missing messages count as lost")
	flag.IntVar(&c.publishers, "publishers", 100, "fan-in publishers")
	flag.IntVar(&c.subscribers, "subscribers", 1000, "fan-out subscribers")
	flag.IntVar(&c.window, "window", 10, "messages each publisher keeps in flight")
	flag.IntVar(&c.payload, "payload", loadgen.DefaultPayload, "payload bytes")
	flag.IntVar(&c.idle, "idle", 10000, "idle connections")
	flag.IntVar(&c.inflight, "inflight", 100, "outgoing QoS 1/2 window per client for gatehouse and mosquitto (mochi keeps its default)")
	flag.Float64Var(&c.latencyRate, "latency-rate", 5000, "QoS 1 messages per second of the latency workload")
	flag.DurationVar(&c.latencyDuration, "latency-duration", 4*time.Second, "measured time of the latency workload")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured start of the latency workload")
	flag.StringVar(&c.jsonOut, "json", "bench/results/broker-bench.json", "results JSON `FILE` (relative to -root)")
	flag.StringVar(&c.markdown, "markdown", "BENCHMARKS.md", "markdown `FILE` whose results section is replaced (relative to -root; empty: none)")
	flag.StringVar(&c.addr, "addr", "", "run the workloads against the broker already listening at `HOST:PORT` (e.g. under strace) instead of starting brokers; no memory or CPU figures")
	flag.BoolVar(&quick, "quick", false, "a small run for a smoke test: 1 repetition, short runs, few connections, no markdown, JSON in the temporary directory")
	flag.Parse()
	c.brokers = split(brokersFlag)
	if c.addr != "" {
		c.brokers, pinnedFlag, c.markdown = []string{"external"}, "", ""
	}
	c.cases = split(casesFlag)
	c.pinnedCases = split(pinnedFlag)
	if quick {
		c.reps, c.duration, c.drain, c.latencyDuration, c.warmup = 1, 500*time.Millisecond, time.Second, time.Second, 200*time.Millisecond
		c.subscribers, c.idle, c.publishers = 50, 500, 10
		c.markdown = ""
		jsonSet := false
		flag.Visit(func(f *flag.Flag) { jsonSet = jsonSet || f.Name == "json" })
		if !jsonSet {
			// A smoke run must not replace the results of the last full run.
			c.jsonOut = filepath.Join(os.TempDir(), "brokerbench-quick.json")
		}
	}
	c.command = "make bench-broker"
	if len(os.Args) > 1 {
		c.command = "cd bench && go run ./cmd/brokerbench " + strings.Join(os.Args[1:], " ")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "brokerbench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, c config) error {
	for _, cs := range append(append([]string{}, c.cases...), c.pinnedCases...) {
		if _, err := parseCase(cs); err != nil {
			return err
		}
	}
	if len(c.pinnedCases) > 0 && runtime.NumCPU() < 2 {
		return errors.New("-pinned-cases needs at least 2 CPUs (broker on core 0, load generator on core 1)")
	}
	tmp, err := os.MkdirTemp("", "brokerbench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if c.gatehouseBin == "" && c.addr == "" {
		c.gatehouseBin = filepath.Join(tmp, "gatehouse")
		if err := goBuild(ctx, c.root, c.gatehouseBin, "./cmd/gatehouse"); err != nil {
			return err
		}
	}
	if c.mochiBin == "" && c.addr == "" {
		c.mochiBin = filepath.Join(tmp, "mochibroker")
		if err := goBuild(ctx, ".", c.mochiBin, "./cmd/mochibroker"); err != nil {
			return err
		}
	}
	f := report.File{
		Command: c.command,
		Started: time.Now(),
		Machine: machine(c),
		Settings: report.Settings{
			Reps: c.reps, Duration: c.duration.String(), Drain: c.drain.String(), Publishers: c.publishers, Subscribers: c.subscribers,
			Window: c.window, Payload: c.payload, Idle: c.idle, LatencyRate: c.latencyRate, Inflight: c.inflight,
		},
	}
	phases := []struct {
		mode  string
		cases []string
	}{{report.Shared, c.cases}, {report.Pinned, c.pinnedCases}}
	runNo := 0
	for _, ph := range phases {
		if len(ph.cases) == 0 {
			continue
		}
		brokerCPUs := ""
		if ph.mode == report.Pinned {
			brokerCPUs = "0"
			if err := pinSelf("1"); err != nil {
				return err
			}
		}
		for rep := 1; rep <= c.reps; rep++ {
			for ci, cs := range ph.cases {
				for bi := range c.brokers {
					// Rotate the order so that no broker always runs first or last.
					br := c.brokers[(bi+rep+ci)%len(c.brokers)]
					runNo++
					r := runOne(ctx, c, cs, ph.mode, br, brokerCPUs, rep, runNo)
					f.Runs = append(f.Runs, r)
					logRun(r)
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
		}
		if ph.mode == report.Pinned {
			if err := pinSelf(fmt.Sprintf("0-%d", runtime.NumCPU()-1)); err != nil {
				return err
			}
		}
	}
	f.Cells = report.Summarise(f.Runs)
	f.Verdicts = append(report.Judge(f.Cells, report.Shared), report.Judge(f.Cells, report.Pinned)...)
	var md bytes.Buffer
	if err := report.Markdown(&md, f); err != nil {
		return err
	}
	fmt.Println(md.String())
	jsonPath := c.jsonOut
	if !filepath.IsAbs(jsonPath) {
		jsonPath = filepath.Join(c.root, jsonPath)
	}
	if err := os.MkdirAll(filepath.Dir(jsonPath), 0o755); err != nil {
		return err
	}
	if err := report.WriteJSON(jsonPath, f); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "brokerbench: results in", jsonPath)
	if c.markdown != "" {
		p := filepath.Join(c.root, c.markdown)
		doc, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("markdown: %w", err)
		}
		out, err := report.Splice(doc, md.Bytes())
		if err != nil {
			return fmt.Errorf("markdown %s: %w", p, err)
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return fmt.Errorf("markdown: %w", err)
		}
		fmt.Fprintln(os.Stderr, "brokerbench: tables written into", p)
	}
	return nil
}

type benchCase struct {
	kind string // fan-in, fan-out, idle, latency
	qos  packet.QoS
}

func parseCase(s string) (benchCase, error) {
	if s == "idle" {
		return benchCase{kind: "idle"}, nil
	}
	kind, q, ok := strings.Cut(s, " q")
	n, err := strconv.Atoi(q)
	if !ok || err != nil || n < 0 || n > 2 || (kind != "fan-in" && kind != "fan-out" && kind != "latency") {
		return benchCase{}, fmt.Errorf("workload %q: want \"fan-in qN\", \"fan-out qN\", \"latency qN\" (N = 0, 1, 2) or \"idle\"", s)
	}
	return benchCase{kind: kind, qos: packet.QoS(n)}, nil
}

// sources are the loopback addresses connections come from: each has its own ephemeral port
// range, so that runs of 10,000 connections do not exhaust one while earlier sockets sit in
// TIME_WAIT.
func sources(runNo int) []net.IP {
	out := make([]net.IP, 8)
	for i := range out {
		out[i] = net.IPv4(127, 0, byte(1+runNo%16), byte(2+i))
	}
	return out
}

func runOne(ctx context.Context, c config, cs, mode, broker, cpus string, rep, runNo int) report.Run {
	r := report.Run{Case: cs, Mode: mode, Broker: broker, Rep: rep}
	bc, _ := parseCase(cs)
	if broker == "external" {
		return runAgainst(ctx, c, r, bc, external{addr: c.addr}, runNo)
	}
	spec := brokers.Spec{Kind: brokers.Kind(broker), CPUs: cpus, Inflight: c.inflight}
	switch spec.Kind {
	case brokers.Gatehouse:
		spec.Bin = c.gatehouseBin
	case brokers.Mosquitto:
		spec.Bin = c.mosquittoBin
	case brokers.Mochi:
		spec.Bin = c.mochiBin
	}
	p, err := brokers.Start(ctx, spec)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	return runAgainst(ctx, c, r, bc, process{p}, runNo)
}

// target is a running broker: a process started here, or one found at -addr.
type target interface {
	Address() string
	RSS() (int64, error)
	CPUTime() (user, sys time.Duration, err error)
	Stop() error
}

type external struct{ addr string }

func (e external) Address() string { return e.addr }
func (e external) RSS() (int64, error) {
	return 0, errors.New("the memory of a broker given with -addr is not measured")
}
func (e external) CPUTime() (user, sys time.Duration, err error) {
	return 0, 0, errors.New("not measured")
}
func (e external) Stop() error { return nil }

type process struct{ *brokers.Process }

func (p process) Address() string { return p.Addr }

func runAgainst(ctx context.Context, c config, r report.Run, bc benchCase, p target, runNo int) report.Run {
	var err error
	u0, s0, _ := p.CPUTime()
	src := sources(runNo)
	var res loadgen.Result
	switch bc.kind {
	case "fan-in", "fan-out":
		o := loadgen.Options{QoS: bc.qos, Publishers: c.publishers, Subscribers: c.subscribers, Window: c.window,
			Duration: c.duration, Payload: c.payload, Drain: c.drain, Sources: src}
		if bc.kind == "fan-in" {
			res, err = loadgen.FanIn(ctx, p.Address(), o)
		} else {
			res, err = loadgen.FanOut(ctx, p.Address(), o)
		}
	case "latency":
		res, err = loadgen.Latency(ctx, p.Address(), loadgen.LatencyOptions{Rate: c.latencyRate, QoS: bc.qos,
			Warmup: c.warmup, Duration: c.latencyDuration, Payload: c.payload, Drain: c.drain, Sources: src})
	case "idle":
		res, err = loadgen.Idle(ctx, p.Address(), loadgen.IdleOptions{Connections: c.idle, KeepAlive: 300,
			Settle: time.Second, Sources: src, RSS: p.RSS})
	}
	u1, s1, cerr := p.CPUTime()
	if cerr == nil {
		r.BrokerCPU = (u1 - u0) + (s1 - s0)
	}
	stopErr := p.Stop()
	r.Result = res
	switch {
	case err != nil:
		r.Error = errors.Join(err, stopErr).Error()
	case stopErr != nil:
		// The broker was measured; how it stopped does not change the figures.
		r.Note = stopErr.Error()
	}
	return r
}

func logRun(r report.Run) {
	res := r.Result
	var what string
	switch {
	case r.Error != "":
		what = "FAILED: " + r.Error
	case res.Workload == "idle":
		what = fmt.Sprintf("%d connections in %.2fs, %.2f KB/conn, %d alive", res.Connections, res.ConnectTime.Seconds(), res.BytesPerConn/1024, res.Alive)
	case res.Workload == "latency":
		what = fmt.Sprintf("p50 %.2fms p99 %.2fms max %.2fms over %d samples, lost %d", ms(res.P50), ms(res.P99), ms(res.Max), res.Samples, res.Lost)
	default:
		what = fmt.Sprintf("%.0f msg/s, %d/%d delivered, lost %d, dup %d, reordered %d", res.Rate, res.Delivered, res.Expected, res.Lost, res.Duplicates, res.OutOfOrder)
	}
	cpu := ""
	if res.Delivered > 0 && r.BrokerCPU > 0 {
		cpu = fmt.Sprintf(", broker CPU %.2f µs/msg", float64(r.BrokerCPU.Microseconds())/float64(res.Delivered))
	}
	fmt.Fprintf(os.Stderr, "[%s rep %d] %-10s %-9s %s%s\n", r.Mode, r.Rep, r.Case, r.Broker, what, cpu)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

// pinSelf moves every thread of this process to cpus.
func pinSelf(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s: %w: %s", cpus, err, bytes.TrimSpace(out))
	}
	return nil
}

func machine(c config) report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Brokers: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(c.mosquittoBin, "-h").CombinedOutput(); len(out) > 0 {
		_ = err // mosquitto -h exits 3 after printing its version
		m.Brokers["mosquitto"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if out, err := exec.Command(c.gatehouseBin, "version").Output(); err == nil {
		m.Brokers["gatehouse"] = strings.TrimSpace(string(out))
	}
	m.Brokers["mochi"] = "mochi-mqtt/server v2.7.9 (default options)"
	return m
}
