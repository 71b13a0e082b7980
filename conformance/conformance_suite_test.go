package conformance_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance"
	"github.com/gatehouse-iot/gatehouse/conformance/internal/mutant"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// Ginkgo runs one suite per process: the reference broker run is this process's; every other
// target (mosquitto, each fault mode) runs in a child process of this test binary, which writes
// its result as JSON for the parent to judge.
const childEnv = "GATEHOUSE_CONFORMANCE_CHILD"

// tested are the protocol versions whose checks these tests hold to their claims.
var tested = []string{spec.Version311, spec.Version5}

// shards is how many processes run the checks against one target. The checks mostly wait on the
// broker (a whole run uses about a second of CPU in some twenty seconds), so two processes halve
// the time of a run; more would add more CPU for starting processes than they save in waiting.
const shards = 2

// slots bounds the child processes running at once (each is this binary with the race
// detector, some 80 MB), so that the machine stays usable.
var slots = make(chan struct{}, 32)

// childJob is what a child runs.
type childJob struct {
	Target    string        `json:"target"`
	Out       string        `json:"out"`
	Timeout   time.Duration `json:"timeout"`
	Window    time.Duration `json:"window"`
	SlowDelay time.Duration `json:"slow_delay"`
	// Mutation puts a mutant proxy with this defect between the checks and the target.
	Mutation mutant.Mutation `json:"mutation"`
	// Filter selects the checks (a Ginkgo label expression).
	Filter string `json:"filter"`
	// Shard and Shards split the checks over processes (suite.Config.Shard).
	Shard, Shards int
}

func TestMain(m *testing.M) {
	if job := os.Getenv(childEnv); job != "" {
		os.Exit(child(job))
	}
	// The child runs start here, all at once, before the tests that judge them: go test runs
	// only GOMAXPROCS parallel tests at a time, and these tests spend their time waiting.
	flag.Parse()
	dir, err := os.MkdirTemp("", "gatehouse-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	startPlan(dir, flag.Lookup("test.run").Value.String())
	code := func() int {
		defer os.RemoveAll(dir)
		defer plan.wait()
		// Ginkgo's interrupt handler lives as long as the process, by design.
		goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
		return 0
	}()
	os.Exit(code)
}

// childPlan holds the child runs TestMain started for the tests to judge.
type childPlan struct {
	reference []*childResult                     // shards 1..n-1 against the reference broker
	faults    map[broker.Fault][]*childResult    // shards against each fault mode
	mosquitto []*childResult                     // shards against mosquitto; nil when it is not installed
	mutations map[mutant.Mutation][]*childResult // runs against each mutation
	all       []*childResult
}

var plan childPlan

// startPlan starts the child runs of the tests that the -test.run pattern selects.
func startPlan(dir, pattern string) {
	selected := func(test string) bool {
		if pattern == "" {
			return true
		}
		top, _, _ := strings.Cut(pattern, "/")
		re, err := regexp.Compile(top)
		return err != nil || re.MatchString(test)
	}
	n := 0
	start := func(job childJob) *childResult {
		n++
		job.Out = filepath.Join(dir, fmt.Sprintf("result-%d.json", n))
		r := startChild(job)
		plan.all = append(plan.all, r)
		return r
	}
	sharded := func(job childJob, first, count int) []*childResult {
		var rs []*childResult
		for i := first; i < count; i++ {
			j := job
			j.Shard, j.Shards = i, count
			rs = append(rs, start(j))
		}
		return rs
	}
	if selected("TestReferenceBroker") {
		// This process runs shard 0 itself, as the package's Ginkgo suite.
		plan.reference = sharded(childJob{Target: "embedded", Timeout: 5 * time.Second}, 1, shards)
	}
	if selected("TestFaultModes") {
		plan.faults = map[broker.Fault][]*childResult{}
		for _, f := range broker.Faults() {
			// The reference broker answers in milliseconds; the checks the fault breaks wait
			// this long, and a packet that must not arrive would arrive well within the window.
			job := childJob{Target: "embedded?fault=" + string(f), Timeout: time.Second, Window: 150 * time.Millisecond}
			if f == broker.FaultSlowConnack {
				// Late (a hundred times the usual), but well within the deadline of every
				// expectation; every check connects, so the delay adds up.
				job.SlowDelay = 30 * time.Millisecond
			}
			plan.faults[f] = sharded(job, 0, shards)
		}
	}
	if _, err := target.LookMosquitto(); err == nil && selected("TestMosquitto") {
		// mosquitto answers more slowly than the reference broker and fails a dozen checks, each
		// after its deadline: one more shard.
		plan.mosquitto = sharded(childJob{Target: "mosquitto", Timeout: 1500 * time.Millisecond, Window: 150 * time.Millisecond}, 0, shards+1)
	}
	if selected("TestMutations") {
		plan.mutations = map[mutant.Mutation][]*childResult{}
		// One run per mutation and group of at most twelve statements, so that no run waits
		// long for many failing checks.
		const group = 12
		for _, m := range mutationNames() {
			ids := mutant.Mutations[m]
			for from := 0; from < len(ids); from += group {
				part := ids[from:min(from+group, len(ids))]
				filter := make([]string, len(part))
				for j, id := range part {
					filter[j] = string(id)
				}
				plan.mutations[m] = append(plan.mutations[m], start(childJob{Target: "embedded", Mutation: m, Timeout: time.Second,
					Window: 150 * time.Millisecond, Filter: "mqtt-3.1.1 && (" + strings.Join(filter, " || ") + ")"}))
			}
		}
	}
}

// wait waits for every child run.
func (p *childPlan) wait() {
	for _, r := range p.all {
		<-r.done
	}
}

func mutationNames() []mutant.Mutation {
	names := make([]mutant.Mutation, 0, len(mutant.Mutations))
	for m := range mutant.Mutations {
		names = append(names, m)
	}
	slices.Sort(names)
	return names
}

// child runs the suite against one target and writes the result.
func child(jobJSON string) int {
	var job childJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg, err := target.Parse(job.Target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if job.SlowDelay > 0 {
		tg.Configure = func(c *broker.Config) { c.SlowConnackDelay = job.SlowDelay }
	}
	cfg := suite.Config{Versions: tested, Timeout: job.Timeout, Window: job.Window, NoColor: true, LabelFilter: job.Filter,
		Shard: job.Shard, Shards: job.Shards, Quiet: true}
	conformance.Prepare(&tg, &cfg)
	r, err := tg.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer r.Stop(context.Background())
	cfg.Target = r
	if job.Mutation != "" {
		p, err := mutant.Start(r.Addr(), job.Mutation)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		defer p.Close()
		front, _ := target.Parse(p.URL())
		if cfg.Target, err = front.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		cfg.WebSocketURL = p.WSURL()
	}
	res, err := conformance.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	b, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(job.Out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	return 0
}

// childResult is a child run under way.
type childResult struct {
	job  childJob
	done chan struct{}
	out  []byte
	err  error
}

// startChild starts the suite against a target in a child process of this test binary; the
// process waits for it before it exits (childPlan.wait).
func startChild(job childJob) *childResult {
	if job.Timeout == 0 {
		// Generous: a conforming broker meets every deadline at once, and the machine may be
		// busy with other tests (race detector on). Checks that fail wait this long.
		job.Timeout = 3 * time.Second
	}
	b, _ := json.Marshal(job)
	r := &childResult{job: job, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		slots <- struct{}{}
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(b))
		r.out, r.err = cmd.CombinedOutput()
	}()
	return r
}

// waitMerged waits for the shards of a run and merges their results.
func waitMerged(t *testing.T, rs []*childResult, more ...*suite.Result) *suite.Result {
	t.Helper()
	parts := append([]*suite.Result(nil), more...)
	for _, r := range rs {
		parts = append(parts, r.wait(t))
	}
	res, err := suite.Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wait returns the child's result, failing the test when the child did not produce one.
func (r *childResult) wait(t *testing.T) *suite.Result {
	t.Helper()
	<-r.done
	if r.err != nil {
		t.Fatalf("child run against %s: %v\n%s", r.job.Target, r.err, r.out)
	}
	rb, err := os.ReadFile(r.job.Out)
	if err != nil {
		t.Fatalf("child run against %s wrote no result: %v\n%s", r.job.Target, err, r.out)
	}
	var res suite.Result
	if err := json.Unmarshal(rb, &res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of the run against %s:\n%s", r.job.Target, r.out)
		}
	})
	return &res
}

// TestReferenceBroker runs every check in this process against the embedded reference broker:
// every check holds, and every server-testable statement of MQTT 3.1.1 is covered.
func TestReferenceBroker(t *testing.T) {
	// Not parallel: it runs first, its own shard in this process, while the children of every
	// test run in the background.
	tg, err := target.Parse("embedded")
	if err != nil {
		t.Fatal(err)
	}
	// This process runs one shard as the package's Ginkgo suite (its output is go test's);
	// child processes run the others.
	cfg := suite.Config{Versions: tested, Timeout: 5 * time.Second, Shard: 0, Shards: shards}
	conformance.Prepare(&tg, &cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := tg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	cfg.Target = r
	sc, rc := ginkgo.GinkgoConfiguration()
	own, err := suite.RunSpecs(ctx, t, cfg, &suite.GinkgoConfig{Suite: sc, Reporter: rc})
	if err != nil {
		t.Fatal(err)
	}
	res := waitMerged(t, plan.reference, own)
	for _, l := range res.Summary() {
		t.Log(l)
	}
	if sc.LabelFilter != "" || len(sc.FocusStrings) > 0 || len(sc.SkipStrings) > 0 {
		t.Skip("a subset of the checks ran (-ginkgo.label-filter / focus / skip): coverage not judged")
	}
	for _, c := range res.Checks {
		// Not supported is the reference broker's answer to a check of a condition it does not
		// have (a feature it does offer); anything else but a pass is a defect.
		if c.Verdict != suite.Pass && c.Verdict != suite.NotSupported && slices.Contains(tested, c.Version) {
			t.Errorf("%s: %s against the reference broker: %s", c.Name, c.Verdict, c.Message)
		}
	}
	for _, v := range tested {
		var testable []spec.ID
		for _, s := range spec.MustCatalogue(v) {
			if s.TestableFrom(spec.SideServer) {
				testable = append(testable, s.ID)
			}
		}
		covered := res.Covered(v)
		t.Logf("MQTT %s: %d of %d server-testable statements covered", v, len(covered), len(testable))
		if v != spec.Version311 {
			continue
		}
		// Every server-testable statement of MQTT 3.1.1 has a check.
		for _, id := range testable {
			if !slices.Contains(covered, id) {
				t.Errorf("%s is testable from the server side but no check covers it", id)
			}
		}
	}
}

// TestFaultModes runs the suite against the reference broker with each fault mode on, each in a
// child process, all at once (they mostly wait): every statement the fault breaks
// (conformance.Faults) is caught by a failing check attributed to it, every failure is attributed
// to a statement the fault breaks, and every other check holds or is not supported.
func TestFaultModes(t *testing.T) {
	t.Parallel()
	for _, f := range broker.Faults() {
		t.Run(string(f), func(t *testing.T) {
			breaks, ok := conformance.Faults[f]
			if !ok {
				t.Errorf("fault mode %s has no entry in conformance.Faults: say which statements it breaks", f)
			}
			judgeFault(t, f, breaks, waitMerged(t, plan.faults[f]))
		})
	}
}

func judgeFault(t *testing.T, f broker.Fault, breaks conformance.Breaks, res *suite.Result) {
	t.Helper()
	caught := map[spec.ID]int{}
	for _, c := range res.Checks {
		if !slices.Contains(tested, c.Version) {
			continue
		}
		broken := breaks.Statements[c.Version]
		switch c.Verdict {
		case suite.Fail:
			blamed := false
			for _, id := range c.Blamed {
				if slices.Contains(broken, id) {
					blamed = true
					caught[id]++
				}
			}
			if !blamed {
				t.Errorf("%s: failed on %v, which %s does not break (%s): %s", c.Name, c.Blamed, f, breaks.Why, c.Message)
			}
		case suite.Pass, suite.NotSupported:
		default:
			t.Errorf("%s: %s (%s)", c.Name, c.Verdict, c.Message)
		}
	}
	for v, ids := range breaks.Statements {
		if !slices.Contains(tested, v) {
			continue
		}
		for _, id := range ids {
			if caught[id] == 0 {
				t.Errorf("MQTT %s %s: %s breaks it (%s) but no check failed on it: a gap in the suite", v, id, f, breaks.Why)
			}
		}
	}
	t.Logf("%s: caught on %v", f, caught)
}

// TestMosquitto runs the suite against Debian's mosquitto, started on a free loopback port: the
// statements that fail are exactly those KNOWN-DEVIATIONS.md lists, and so are the warnings.
func TestMosquitto(t *testing.T) {
	t.Parallel()
	testenv.Mosquitto(t)
	res := waitMerged(t, plan.mosquitto)
	for _, l := range res.Summary() {
		t.Log(l)
	}
	known, err := knownDeviations("KNOWN-DEVIATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, s := range res.Statements {
		switch s.Verdict {
		case suite.Fail, suite.Warn:
			got[string(s.Verdict)] = append(got[string(s.Verdict)], s.Version+" "+string(s.ID))
		}
	}
	for _, v := range []string{string(suite.Fail), string(suite.Warn)} {
		sort.Strings(got[v])
		sort.Strings(known[v])
		if !slices.Equal(got[v], known[v]) {
			t.Errorf("statements with verdict %s against mosquitto: %v\nKNOWN-DEVIATIONS.md lists: %v\n(update the file, with evidence and the reading of the specification, or fix the check)",
				v, got[v], known[v])
		}
	}
}

// knownDeviations reads the machine-readable lines of KNOWN-DEVIATIONS.md:
// "| fail | 3.1.1 | MQTT-3.1.2-8 | ..." table rows give the verdict, version and statement.
func knownDeviations(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		verdict, version, id := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.Trim(strings.TrimSpace(cells[3]), "`")
		if (verdict == "fail" || verdict == "warn") && strings.HasPrefix(id, "MQTT-") {
			out[verdict] = append(out[verdict], version+" "+id)
		}
	}
	return out, nil
}

// TestMutations puts each mutant proxy (conformance/internal/mutant) between the checks and the
// reference broker and runs the checks of the statements the mutation breaks: each of them must
// be caught by a check that fails on it. Together with TestFaultModes this shows every check
// failing against a broker that breaks its statement: every server-testable statement of the
// tested versions is broken by a fault mode or a mutation.
func TestMutations(t *testing.T) {
	t.Parallel()
	names := mutationNames()
	broken := map[spec.ID]bool{}
	for _, m := range names {
		t.Run(string(m), func(t *testing.T) {
			caught := map[spec.ID]int{}
			for _, r := range plan.mutations[m] {
				for _, c := range r.wait(t).Checks {
					if c.Verdict == suite.Fail {
						for _, id := range c.Blamed {
							caught[id]++
						}
					}
				}
			}
			for _, id := range mutant.Mutations[m] {
				if caught[id] == 0 {
					t.Errorf("%s breaks %s but no check failed on it", m, id)
				}
				broken[id] = true
			}
			t.Logf("%s: caught on %v", m, caught)
		})
	}
	for _, b := range conformance.Faults {
		for _, id := range b.Statements[spec.Version311] {
			broken[id] = true
		}
	}
	for _, s := range spec.MustCatalogue(spec.Version311) {
		if s.TestableFrom(spec.SideServer) && !broken[s.ID] {
			t.Errorf("MQTT 3.1.1 %s: no fault mode or mutation breaks it, so no check of it has been seen failing", s.ID)
		}
	}
}
