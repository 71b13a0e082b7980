package broken_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/embedded"
)

const (
	scenariosDir = "../../../../scenarios"
	brokenDir    = "../../../../fixtures/scenarios/broken"
	parallel     = 2
)

// names are the scenarios of scenarios/, listed before RunSpecs; every one must have a variant.
var names []string

func TestBrokenVariants(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scenariosDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario in scenarios/: %v", err)
	}
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	// Every run must have stopped all it started: observers, controllers, fleets, brokers.
	ignore := goleak.IgnoreCurrent()
	RegisterFailHandler(Fail)
	RunSpecs(t, "Broken scenario variants")
	goleak.VerifyNone(t, ignore,
		// Ginkgo's own, started by RunSpecs.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

type result struct {
	rec   *report.Record
	s     *scenario.Scenario
	fails []string
	err   error
}

var (
	mu      sync.Mutex // protects results
	results = map[string]*result{}
)

// wantFailures reads the "# fails:" lines of a variant.
func wantFailures(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if w, ok := strings.CutPrefix(line, "# fails: "); ok {
			out = append(out, w)
		}
	}
	return out
}

var _ = BeforeSuite(func() {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, name := range names {
		r := &result{}
		results[name] = r
		path := filepath.Join(brokenDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			r.err = err
			continue
		}
		r.fails = wantFailures(data)
		r.s, r.err = scenario.Parse("fixtures/scenarios/broken/"+name, data)
		if r.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer GinkgoRecover()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rec := embedded.RunScenario(ctx, r.s, scenario.Options{Version: "test"})
			mu.Lock()
			r.rec = rec
			mu.Unlock()
		}()
	}
	wg.Wait()
	retryOverloaded()
})

var _ = Describe("broken variants of scenarios/", func() {
	for _, name := range names {
		It(name+" fails, naming the step, the expectation and what was observed", func() {
			mu.Lock()
			r := results[name]
			mu.Unlock()
			Expect(r.err).NotTo(HaveOccurred(), "every scenario needs a broken variant in fixtures/scenarios/broken/ that parses")
			Expect(r.s.Outcome).To(Equal(report.Fail), "a broken variant states outcome: fail")
			Expect(r.fails).NotTo(BeEmpty(), "a broken variant states the failures it must cause in \"# fails:\" lines")
			Expect(r.rec).NotTo(BeNil())
			Expect(r.rec.Outcome.Failed()).To(BeTrue(), "the broken variant %s passed: the scenario does not catch the defect", name)

			var messages []string
			for _, c := range r.rec.Cases {
				if c.Outcome != report.Fail {
					continue
				}
				messages = append(messages, c.Message)
				Expect(c.Message).To(MatchRegexp(`^step \d+ .*\(at [^)]+\): expected .+; observed instead: .+`),
					"a failure message names the step, the expectation and what was observed instead")
			}
			Expect(messages).NotTo(BeEmpty(), "at least one expectation must fail (not only error)")
			all := strings.Join(messages, "\n")
			for _, want := range r.fails {
				Expect(all).To(ContainSubstring(want))
			}
		})
	}
})

// retryOverloaded runs again, one at a time, the variants that did not fail on a machine that was
// too busy for the timings of their run (other suites share it).
func retryOverloaded() {
	for _, name := range names {
		mu.Lock()
		r := results[name]
		mu.Unlock()
		if r.rec == nil || r.rec.Outcome.Failed() && len(failedMessages(r.rec)) > 0 {
			continue
		}
		busy := false
		for _, c := range r.rec.Cases {
			busy = busy || c.Name == scenario.OverloadCase || c.Name == "fleet start"
		}
		if !busy {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		again := embedded.RunScenario(ctx, r.s, scenario.Options{Version: "test"})
		cancel()
		mu.Lock()
		r.rec = again
		mu.Unlock()
	}
}

func failedMessages(rec *report.Record) []string {
	var out []string
	for _, c := range rec.Cases {
		if c.Outcome == report.Fail {
			out = append(out, c.Message)
		}
	}
	return out
}
