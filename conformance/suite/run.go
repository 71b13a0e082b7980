package suite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// Report entry names under which a check leaves its verdict and its trace for the runner.
const (
	entryVerdict = "gatehouse.verdict"
	entryTrace   = "gatehouse.trace"
	entryBlame   = "gatehouse.blame"
)

// blameEntry is the value of an entryBlame report entry: the statements a failure is attributed
// to.
type blameEntry []spec.ID

// verdictEntry is the value of an entryVerdict report entry.
type verdictEntry struct {
	Verdict Verdict
	Message string
}

// traceEntry is the value of an entryTrace report entry; Ginkgo prints it (one packet per line)
// under a failed check.
type traceEntry []string

func (t traceEntry) String() string { return "packet trace:\n" + strings.Join(t, "\n") }

// failHandler is where Must failures go: Ginkgo's Fail.
var failHandler = ginkgo.Fail

// run is the state of the one run a process makes (Ginkgo runs one suite per process).
var run struct {
	// mu protects env and report: the checks read env while the runner owns it.
	mu     sync.Mutex
	env    *Env
	report *types.Report

	// shard and shards select the checks of this process when a run is split over processes;
	// next counts the checks declared so far. Ginkgo builds the tree on one goroutine, in the
	// same order in every process of one binary, so the split is the same everywhere.
	shard, shards, next int
}

// inShard reports whether the check being declared belongs to this process's shard.
func inShard() bool {
	i := run.next
	run.next++
	return run.shards <= 1 || i%run.shards == run.shard
}

func currentEnv() *Env {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.env
}

// runCheck is the body of every check: it builds the check's context, turns the check's way of
// ending (a warning, "not supported", a failure) into a verdict, and leaves the packet trace as
// evidence.
func runCheck(ctx ginkgo.SpecContext, level Level, version string, ids []spec.ID, body func(*C)) {
	env := currentEnv()
	if env == nil {
		ginkgo.Fail("suite: checks run only through suite.Run or suite.RunSpecs, which set up the broker under test")
	}
	c := newC(ctx, env, level, version, ids)
	ginkgo.DeferCleanup(func() {
		c.cleanup()
		ginkgo.AddReportEntry(entryTrace, ginkgo.ReportEntryVisibilityFailureOrVerbose, traceEntry(c.trace.Lines()))
	})
	end := func(v Verdict, msg string) {
		ginkgo.AddReportEntry(entryVerdict, ginkgo.ReportEntryVisibilityNever, verdictEntry{v, msg})
		ginkgo.Skip(string(v) + ": " + msg)
	}
	if caps := env.Caps[version]; !caps.Spoken {
		end(NotSupported, fmt.Sprintf("the broker does not speak MQTT %s (%s)", version, caps.Why))
	}
	defer func() {
		switch r := recover().(type) {
		case nil:
		case warning:
			end(Warn, r.msg)
		case notSupported:
			end(NotSupported, r.msg)
		default:
			panic(r)
		}
	}()
	body(c)
}

// testingT is the GinkgoTestingT of a run outside go test: it only remembers a failure.
type testingT struct{ failed bool }

func (t *testingT) Fail() { t.failed = true }

// Run runs the selected checks in this process against cfg.Target and returns their result. It
// is what `gatehouse conform` calls. A process can run the suite once (a Ginkgo rule).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	return RunSpecs(ctx, &testingT{}, cfg, nil)
}

// RunSpecs is Run for a caller that brings its own GinkgoTestingT (a *testing.T under go test) and
// Ginkgo configuration (ginkgo.GinkgoConfiguration() there, so that -ginkgo.* flags still work;
// nil for the defaults). The label filter of cfg is combined with the one of the configuration.
func RunSpecs(ctx context.Context, t ginkgo.GinkgoTestingT, cfg Config, gcfg *GinkgoConfig) (*Result, error) {
	if len(cfg.Versions) == 0 {
		cfg.Versions = spec.Versions()
	}
	filter, err := labelFilter(cfg, gcfg)
	if err != nil {
		return nil, err
	}
	env, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	run.mu.Lock()
	if run.env != nil {
		run.mu.Unlock()
		return nil, fmt.Errorf("suite: the conformance suite already ran in this process (Ginkgo runs one suite per process)")
	}
	run.env = env
	if cfg.Shards > 1 {
		if cfg.Shard < 0 || cfg.Shard >= cfg.Shards {
			run.mu.Unlock()
			return nil, fmt.Errorf("suite: shard %d of %d does not exist", cfg.Shard, cfg.Shards)
		}
		run.shard, run.shards = cfg.Shard, cfg.Shards
	}
	run.mu.Unlock()

	sc, rc := types.NewDefaultSuiteConfig(), types.NewDefaultReporterConfig()
	if gcfg != nil {
		sc, rc = gcfg.Suite, gcfg.Reporter
	}
	sc.LabelFilter = filter
	sc.RandomizeAllSpecs = true
	if cfg.Seed != 0 {
		sc.RandomSeed = cfg.Seed
	}
	if gcfg == nil {
		rc.NoColor = cfg.NoColor
		rc.Verbose = cfg.Verbose
		rc.Succinct = !cfg.Verbose
	}
	if cfg.Quiet {
		rc.Succinct, rc.Verbose, rc.SilenceSkips = true, false, true
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.ReportAfterSuite("gatehouse conformance result", func(r types.Report) {
		run.mu.Lock()
		defer run.mu.Unlock()
		run.report = &r
	})
	start := time.Now()
	ginkgo.RunSpecs(t, "Gatehouse broker conformance", sc, rc)
	run.mu.Lock()
	rep := run.report
	run.mu.Unlock()
	if rep == nil {
		return nil, fmt.Errorf("suite: Ginkgo returned no report")
	}
	return newResult(env, cfg, sc, *rep, start), nil
}

// GinkgoConfig is a Ginkgo suite and reporter configuration, as ginkgo.GinkgoConfiguration
// returns them.
type GinkgoConfig struct {
	Suite    types.SuiteConfig
	Reporter types.ReporterConfig
}

// CheckLabelFilter checks a label expression as --label-filter takes it, without running
// anything, so that a mistake is reported before a broker is started.
func CheckLabelFilter(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	if _, err := types.ParseLabelFilter(expr); err != nil {
		return fmt.Errorf("label filter %q: %s", expr, plain(err.Error()))
	}
	return nil
}

// plain removes terminal colour sequences and folds the lines of Ginkgo's error messages.
func plain(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// labelFilter combines the version selection, the run's filter and Ginkgo's own, and checks the
// result before Ginkgo sees it (Ginkgo exits the process on a bad filter).
func labelFilter(cfg Config, gcfg *GinkgoConfig) (string, error) {
	versions := make([]string, len(cfg.Versions))
	for i, v := range cfg.Versions {
		if _, err := spec.IDs(v); err != nil {
			return "", fmt.Errorf("suite: %w", err)
		}
		versions[i] = spec.VersionLabel(v)
	}
	parts := []string{"(" + strings.Join(versions, " || ") + ")"}
	if f := strings.TrimSpace(cfg.LabelFilter); f != "" {
		if err := CheckLabelFilter(f); err != nil {
			return "", fmt.Errorf("suite: %w", err)
		}
		parts = append(parts, "("+f+")")
	}
	if gcfg != nil && strings.TrimSpace(gcfg.Suite.LabelFilter) != "" {
		parts = append(parts, "("+gcfg.Suite.LabelFilter+")")
	}
	filter := strings.Join(parts, " && ")
	if err := CheckLabelFilter(filter); err != nil {
		return "", fmt.Errorf("suite: %w", err)
	}
	return filter, nil
}
