package v5_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance"
	"github.com/gatehouse-iot/gatehouse/conformance/internal/mutant"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
)

// These tests show every MQTT 5.0 check failing against a broker that breaks its statement: the
// reference broker behind a mutant proxy (conformance/internal/mutant, MutationsV5) for the
// statements no broker fault mode breaks. The package conformance's own tests run the 5.0 checks
// against the reference broker, each fault mode and mosquitto. Ginkgo runs one suite per
// process, so every run here is a child process of this test binary.

// childEnv carries a child's job; a test binary started with it runs the job and exits.
const childEnv = "GATEHOUSE_V5_SELFPROOF_CHILD"

// notCovered are the server-testable MQTT 5.0 statements no check covers, and why. Every other
// server-testable statement has a check, and each is broken by a fault mode or a mutation.
var notCovered = map[spec.ID]string{
	spec.V5_3_15_2_1: "AUTH from the server needs a broker that supports an Authentication Method the suite knows",
	spec.V5_3_15_2_2: "as MQTT-3.15.2-1",
	spec.V5_3_15_2_3: "as MQTT-3.15.2-1",
	spec.V5_4_12_0_2: "as MQTT-3.15.2-1",
	spec.V5_4_12_0_5: "as MQTT-3.15.2-1",
	spec.V5_4_12_1_2: "as MQTT-3.15.2-1 (re-authentication)",
	spec.V5_4_7_3_3:  "a Topic Name or Filter over 65,535 bytes cannot be encoded, so the server can neither send nor be sent one",
}

// job is what a child runs: the 5.0 checks selected by Filter, against the reference broker,
// behind the mutation when there is one.
type job struct {
	Mutation mutant.Mutation `json:"mutation"`
	Filter   string          `json:"filter"`
	Out      string          `json:"out"`
}

func TestMain(m *testing.M) {
	if j := os.Getenv(childEnv); j != "" {
		os.Exit(child(j))
	}
	goleak.VerifyTestMain(m)
}

func child(jobJSON string) int {
	var j job
	if err := json.Unmarshal([]byte(jobJSON), &j); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	res, err := runJob(j)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(res); err == nil {
			err = os.WriteFile(j.Out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	return 0
}

func runJob(j job) (*suite.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tg, err := target.Parse("embedded")
	if err != nil {
		return nil, err
	}
	// A conforming broker answers in milliseconds; the checks a mutation breaks wait this long.
	cfg := suite.Config{Versions: []string{spec.Version5}, Timeout: time.Second, Window: 150 * time.Millisecond,
		LabelFilter: j.Filter, NoColor: true, Quiet: true}
	conformance.Prepare(&tg, &cfg)
	r, err := tg.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Stop(context.Background())
	cfg.Target = r
	if j.Mutation != "" {
		p, err := mutant.Start(r.Addr(), j.Mutation)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		front, err := target.Parse(p.URL())
		if err != nil {
			return nil, err
		}
		if cfg.Target, err = front.Start(ctx); err != nil {
			return nil, err
		}
		cfg.WebSocketURL = p.WSURL()
	}
	return conformance.Run(ctx, cfg)
}

// run is a child run under way.
type run struct {
	job  job
	done chan struct{}
	out  []byte
	err  error
}

// slots bounds the child processes running at once: they mostly wait on the broker, but each
// is this binary, with the race detector when the tests have it.
var slots = make(chan struct{}, 16)

func start(t *testing.T, j job) *run {
	t.Helper()
	j.Out = filepath.Join(t.TempDir(), "result.json")
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{job: j, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		slots <- struct{}{}
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(b))
		r.out, r.err = cmd.CombinedOutput()
	}()
	t.Cleanup(func() { <-r.done })
	return r
}

func (r *run) wait(t *testing.T) *suite.Result {
	t.Helper()
	<-r.done
	if r.err != nil {
		t.Fatalf("child run (%s, %s): %v\n%s", r.job.Mutation, r.job.Filter, r.err, r.out)
	}
	b, err := os.ReadFile(r.job.Out)
	if err != nil {
		t.Fatalf("child run (%s, %s) wrote no result: %v\n%s", r.job.Mutation, r.job.Filter, err, r.out)
	}
	var res suite.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// filter selects the 5.0 checks of ids.
func filter(ids []spec.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return spec.VersionLabel(spec.Version5) + " && (" + strings.Join(s, " || ") + ")"
}

// TestMutations runs, for every mutation of MutationsV5, the 5.0 checks of the statements it
// breaks against the reference broker behind the mutant proxy: each statement must be caught by
// a check that fails on it. Then every server-testable 5.0 statement a check covers must be
// broken by a fault mode (conformance.Faults) or a mutation, so that every check has been seen
// failing.
func TestMutations(t *testing.T) {
	names := make([]mutant.Mutation, 0, len(mutant.MutationsV5))
	for m := range mutant.MutationsV5 {
		names = append(names, m)
	}
	slices.Sort(names)
	// A run that selects no check at all tells which statements have checks.
	coverage := start(t, job{Filter: spec.VersionLabel(spec.Version5) + " && gatehouse-selects-nothing"})
	// One run per mutation and group of at most four statements, so that no run waits long for
	// many failing checks.
	const group = 4
	runs := map[mutant.Mutation][]*run{}
	for _, m := range names {
		ids := mutant.MutationsV5[m]
		for at := 0; at < len(ids); at += group {
			runs[m] = append(runs[m], start(t, job{Mutation: m, Filter: filter(ids[at:min(at+group, len(ids))])}))
		}
	}
	// Each mutation's claim is checked by its subtest below.
	broken := map[spec.ID]bool{}
	for _, ids := range mutant.MutationsV5 {
		for _, id := range ids {
			broken[id] = true
		}
	}
	for _, m := range names {
		t.Run(string(m), func(t *testing.T) {
			caught := map[spec.ID]int{}
			for _, r := range runs[m] {
				for _, c := range r.wait(t).Checks {
					if c.Verdict == suite.Fail && c.Version == spec.Version5 {
						for _, id := range c.Blamed {
							caught[id]++
						}
					}
				}
			}
			for _, id := range mutant.MutationsV5[m] {
				if caught[id] == 0 {
					t.Errorf("%s breaks MQTT 5.0 %s but no check failed on it", m, id)
				}
			}
		})
	}
	for _, b := range conformance.Faults {
		for _, id := range b.Statements[spec.Version5] {
			broken[id] = true
		}
	}
	covered := coverage.wait(t)
	var n int
	for _, s := range covered.Statements {
		if s.Version != spec.Version5 || !slices.Contains([]suite.Verdict{suite.NotRun, suite.NotCovered}, s.Verdict) {
			continue
		}
		_, excused := notCovered[s.ID]
		switch {
		case s.Verdict == suite.NotCovered && !excused:
			t.Errorf("MQTT 5.0 %s is testable from the server side but no check covers it: add one, or say why in notCovered", s.ID)
		case s.Verdict == suite.NotRun && excused:
			t.Errorf("MQTT 5.0 %s has a check now: remove it from notCovered", s.ID)
		case s.Verdict == suite.NotRun:
			n++
			if !broken[s.ID] {
				t.Errorf("MQTT 5.0 %s: no fault mode or mutation breaks it, so no check of it has been seen failing", s.ID)
			}
		}
	}
	t.Logf("MQTT 5.0: %d server-testable statements covered, each broken by a fault mode or a mutation; %d not covered", n, len(notCovered))
}
