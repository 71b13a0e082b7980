package library_test

import (
	"context"
	"fmt"
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

// files is the directory listing the specs are generated from, read before RunSpecs.
var files []string

func TestLibrary(t *testing.T) {
	var err error
	files, err = filepath.Glob("../../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario in scenarios/: %v", err)
	}
	sort.Strings(files)
	// Every run must have stopped all it started: observers, controllers, fleets, brokers.
	ignore := goleak.IgnoreCurrent()
	RegisterFailHandler(Fail)
	RunSpecs(t, "Scenario library")
	goleak.VerifyNone(t, ignore,
		// Ginkgo's own, started by RunSpecs.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

// parallel bounds how many scenarios run at once: enough to keep the suite short on a small
// machine, few enough that their timings stay honest (a run that was starved says so with a
// warning case, which the specs treat as a failure of the environment, not of the scenario).
const parallel = 2

var (
	mu      sync.Mutex // protects records and loadErr
	records = map[string]*report.Record{}
	loadErr = map[string]error{}
)

var _ = BeforeSuite(func() {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			loadErr[f] = err
			continue
		}
		s.File = "scenarios/" + filepath.Base(f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer GinkgoRecover()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rec := embedded.RunScenario(ctx, s, scenario.Options{Version: "test"})
			mu.Lock()
			records[f] = rec
			mu.Unlock()
		}()
	}
	wg.Wait()
	retryOverloaded()
})

// keep writes a record's report where it survives the test, for a failure message to point at.
func keep(rec *report.Record) string {
	dir, err := os.MkdirTemp("", "gatehouse-library-"+report.Slug(rec.Name)+"-")
	if err != nil {
		return err.Error()
	}
	p, err := report.WriteDir(dir, "scenario library", rec)
	if err != nil {
		return err.Error()
	}
	return p.HTML
}

// failures lists what went wrong in a record, for a readable spec failure.
func failures(rec *report.Record) string {
	var b strings.Builder
	if rec.Message != "" {
		b.WriteString(rec.Message + "\n")
	}
	for _, c := range rec.Cases {
		if c.Outcome != report.Pass {
			b.WriteString("  [" + string(c.Outcome) + "] " + c.Name + ": " + c.Message + "\n")
		}
	}
	return b.String()
}

var _ = Describe("scenarios/", func() {
	for _, f := range files {
		It(filepath.Base(f)+" has the outcome it states", func() {
			Expect(loadErr[f]).NotTo(HaveOccurred())
			s, _ := scenario.Load(f)
			mu.Lock()
			rec := records[f]
			mu.Unlock()
			Expect(rec).NotTo(BeNil())
			Expect(rec.Seed).NotTo(BeNil())
			Expect(*rec.Seed).To(Equal(s.Seed), "the record must carry the seed that replays it")
			Expect(rec.Cases).NotTo(BeEmpty())
			if rec.Outcome != s.Outcome {
				Fail(fmt.Sprintf("scenario %s ended %s, its file states %s:\n%s\nfull report: %s", s.Name, rec.Outcome, s.Outcome, failures(rec), keep(rec)))
			}
			for _, c := range rec.Cases {
				if c.Name == scenario.OverloadCase {
					// A busy machine, not the scenario: say so, do not fail.
					fmt.Fprintf(GinkgoWriter, "%s: %s\n", s.Name, c.Message)
					continue
				}
				Expect(c.Outcome).NotTo(Equal(report.Warn), "%s: %s", c.Name, c.Message)
			}
			// Every expectation of the file is judged: one case per expectation at least.
			n := 0
			for _, st := range s.Steps {
				n += len(st.Expect)
			}
			Expect(len(rec.Cases)).To(BeNumerically(">=", n))
		})
	}
})

// overloaded reports whether a run says the machine was too busy for its timings (or too busy to
// start its fleet in time).
func overloaded(rec *report.Record) bool {
	for _, c := range rec.Cases {
		if c.Name == scenario.OverloadCase && c.Outcome == report.Warn || c.Name == "fleet start" && c.Outcome == report.Error {
			return true
		}
	}
	return false
}

// retryOverloaded runs again, one at a time, the scenarios that did not end as their file states
// on a machine that was too busy (other suites share it): their verdict is taken from the quiet
// second run, and the first one is kept in the failure message if that one fails too.
func retryOverloaded() {
	for _, f := range files {
		mu.Lock()
		rec := records[f]
		mu.Unlock()
		if rec == nil || !overloaded(rec) {
			continue
		}
		s, err := scenario.Load(f)
		if err != nil || rec.Outcome == s.Outcome {
			continue
		}
		s.File = "scenarios/" + filepath.Base(f)
		fmt.Fprintf(GinkgoWriter, "%s: %s on an overloaded machine; running it again alone\n", s.Name, rec.Outcome)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		again := embedded.RunScenario(ctx, s, scenario.Options{Version: "test"})
		cancel()
		mu.Lock()
		records[f] = again
		mu.Unlock()
	}
}
