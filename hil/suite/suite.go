// Package suite is the HIL suite: Ginkgo specs, every one labelled "hil", that drive a gate
// controller through a bench's relays and read it through its sense inputs and its MQTT topics,
// timing each reaction against the bench's limits. The same code runs on a real bench and on the
// simulated one; `go test ./hil/suite` and `gatehouse hil` both run it.
//
// The specs are registered by Run rather than at package init, so that a binary that links the
// suite next to other Ginkgo suites registers only the one it runs.
package suite

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil"
	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// BenchEnv names the environment variable that chooses the bench file.
const BenchEnv = "GATEHOUSE_BENCH"

// DefaultBench is the bench file used when none is given: the simulated bench, so the suite runs
// anywhere.
const DefaultBench = "fixtures/benches/sim.yaml"

// Config is one run of the suite.
type Config struct {
	BenchPath string      // the bench file
	ReportDir string      // where the JSON record, JUnit XML and HTML report go; empty for none
	Faults    []sim.Fault // deliberate defects of a simulated bench
	Version   string      // gatehouse version, for the record
	// Record, when set, receives the run's record (for callers that report it themselves).
	Record func(*report.Record)
}

// BenchFromEnv returns the bench file named by GATEHOUSE_BENCH, or the default found from dir
// upwards (go test runs in the package directory).
func BenchFromEnv(dir string) string {
	if p := os.Getenv(BenchEnv); p != "" {
		return p
	}
	for d := dir; ; {
		p := d + "/" + DefaultBench
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := d[:max(0, strings.LastIndex(d, "/"))]
		if parent == "" || parent == d {
			return DefaultBench
		}
		d = parent
	}
}

// Run registers the HIL specs for cfg and runs them with Ginkgo. It returns whether every spec
// passed; t is told of a failure (a *testing.T, or any ginkgo.GinkgoTestingT).
func Run(t ginkgo.GinkgoTestingT, cfg Config) bool {
	gomega.RegisterFailHandler(ginkgo.Fail)
	rec := report.New("hil "+cfg.BenchPath, report.KindHIL, time.Now())
	rec.Versions.Gatehouse = cfg.Version
	rec.SetProperty("bench", cfg.BenchPath)
	register(cfg, rec)
	suiteCfg, repCfg := ginkgo.GinkgoConfiguration()
	if suiteCfg.LabelFilter == "" {
		suiteCfg.LabelFilter = "hil"
	}
	passed := ginkgo.RunSpecs(t, "HIL suite", suiteCfg, repCfg)
	rec.Finish(time.Now())
	if cfg.Record != nil {
		cfg.Record(rec)
	}
	if cfg.ReportDir != "" {
		paths, err := report.WriteDir(cfg.ReportDir, "Gatehouse HIL", rec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hil: write report:", err)
			t.Fail()
			return false
		}
		fmt.Printf("hil: report %s (JSON %s, JUnit %s)\n", paths.HTML, strings.Join(paths.JSON, ", "), paths.JUnit)
	}
	return passed
}

func register(cfg Config, rec *report.Record) {
	// Ordered: the bench is one piece of hardware; its checks take turns on it.
	ginkgo.Describe("gate controller on bench", ginkgo.Ordered, ginkgo.Label("hil"), func() {
		var s *hil.Session
		var seen int // safety events already accounted for

		ginkgo.BeforeAll(func(ctx ginkgo.SpecContext) {
			b, err := bench.Load(cfg.BenchPath)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "bench file")
			rec.Name = "hil " + b.Name
			if b.UsesDriver(bench.Sim) {
				rec.SetSeed(uint64(b.Sim.Seed))
			}
			s, err = hil.Start(ctx, b, hil.Options{Faults: cfg.Faults})
			if err != nil {
				rec.SetError(err.Error())
			}
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "open bench %s", cfg.BenchPath)
			rec.SetProperty("broker", s.BrokerURL)
			stop := s.Rig.HandleSignals(nil)
			ginkgo.DeferCleanup(func() {
				stop()
				gomega.Expect(s.Close()).To(gomega.Succeed(), "close bench")
			})
		}, ginkgo.NodeTimeout(60*time.Second))

		for _, c := range Checks {
			ginkgo.It(c.Name, ginkgo.Label("hil"), func(ctx ginkgo.SpecContext) {
				defer s.Rig.RestoreOnPanic()
				if missing := missingWiring(s.Bench, c); len(missing) > 0 {
					rec.AddCase(report.Case{Name: c.Name, Group: "hil", Outcome: report.Skip, Message: "bench lacks " + strings.Join(missing, ", ")})
					ginkgo.Skip("bench " + s.Bench.Name + " lacks " + strings.Join(missing, ", "))
				}
				start := time.Now()
				res := c.Run(ctx, s)
				events := s.Rig.Events()[seen:]
				seen += len(events)
				if err := s.Rig.SafeState(); err != nil {
					res.Err = fmt.Errorf("return relays to safe state: %w", err)
				}
				kase := report.Case{Name: c.Name, Group: "hil", Start: start, Duration: time.Since(start), Measurements: res.Measurements, Evidence: res.Evidence, Labels: []string{"hil"}}
				if len(events) > 0 {
					kase.Evidence = append(kase.Evidence, report.Text("safety events", eventLines(events)...))
				}
				if res.Failed() {
					kase.Outcome, kase.Message = report.Fail, res.Problem()
				}
				if len(events) > 0 && !res.Failed() {
					kase.Outcome, kase.Message = report.Fail, "safety event: "+events[0].String()
				}
				kase.Judge()
				rec.AddCase(kase)
				for _, m := range res.Measurements {
					ginkgo.AddReportEntry(m.Name, fmt.Sprintf("%.1f %s (limit %s): %s", m.Value, m.Unit, limitText(m), m.Outcome))
				}
				gomega.Expect(res.Err).NotTo(gomega.HaveOccurred())
				gomega.Expect(failed(res.Measurements)).To(gomega.BeEmpty(), "measurements outside their limits")
				gomega.Expect(events).To(gomega.BeEmpty(), "safety events during the check")
			}, ginkgo.NodeTimeout(c.Timeout))
		}
	})
}

func missingWiring(b *bench.Bench, c Check) []string {
	var missing []string
	for _, r := range c.Relays {
		if _, ok := b.Relay(r); !ok {
			missing = append(missing, "relay "+r)
		} else if _, wired := benchDrives(b, r); !wired {
			missing = append(missing, "wiring of relay "+r)
		}
	}
	for _, in := range c.Inputs {
		if _, ok := b.Input(in); !ok {
			missing = append(missing, "input "+in)
		}
	}
	return missing
}

func benchDrives(b *bench.Bench, relay string) (bench.DriveWire, bool) {
	i := slices.IndexFunc(b.Drive, func(w bench.DriveWire) bool { return w.Relay == relay })
	if i < 0 {
		return bench.DriveWire{}, false
	}
	return b.Drive[i], true
}

func failed(ms []report.Measurement) []string {
	var out []string
	for _, m := range ms {
		if m.Outcome.Failed() {
			out = append(out, fmt.Sprintf("%s = %.1f %s (limit %s)", m.Name, m.Value, m.Unit, limitText(m)))
		}
	}
	return out
}

func eventLines(ev []rig.SafetyEvent) []string {
	out := make([]string, len(ev))
	for i, e := range ev {
		out[i] = e.String()
	}
	return out
}

// runCheck runs one check on a session with the bench's safety accounting, for tests and the
// self-test; ctx bounds it.
func runCheck(ctx context.Context, s *hil.Session, c Check) Result {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	return c.Run(ctx, s)
}
