package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gatehouse-iot/gatehouse/hil"
	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/hil/selftest"
	"github.com/gatehouse-iot/gatehouse/hil/suite"
	"github.com/spf13/cobra"
)

func init() { register(newHilCmd) }

func newHilCmd() *cobra.Command {
	var benchPath, reportDir string
	var selftestOnly bool
	cmd := &cobra.Command{
		Use:   "hil",
		Short: "Run the hardware-in-the-loop suite on a bench of relays and sense inputs",
		Long: `Run the hardware-in-the-loop suite on a bench: relays driving a gate controller's inputs,
sense inputs reading its outputs, both through periph.io GPIO drivers named in the bench file
(gpiochip, rpi, sysfs), and the controller's MQTT topics. A preflight self-test comes first: which
periph drivers loaded, which pins answer, and a pulse through each loopback pair.

The simulated bench (fixtures/benches/sim.yaml, driver: sim) runs the same suite against a
simulated gate controller speaking MQTT to a broker started for the run.

Relays return to their safe level on exit, on SIGINT/SIGTERM and on panic.`,
		Example: "  gatehouse hil --bench fixtures/benches/sim.yaml --report-dir gatehouse-report/hil\n  gatehouse hil --bench bench.yaml --selftest",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHil(cmd.Context(), cmd.OutOrStdout(), benchPath, reportDir, selftestOnly)
		},
	}
	cmd.Flags().StringVar(&benchPath, "bench", suite.DefaultBench, "bench file (YAML)")
	cmd.Flags().StringVar(&reportDir, "report-dir", "", "write the JSON record, JUnit XML and HTML report here")
	cmd.Flags().BoolVar(&selftestOnly, "selftest", false, "run only the preflight self-test")
	return cmd
}

// failT receives the suite's verdict when it runs outside go test.
type failT struct{ failed bool }

func (t *failT) Fail() { t.failed = true }

func runHil(ctx context.Context, out io.Writer, benchPath, reportDir string, selftestOnly bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	b, err := bench.Load(benchPath)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("hil: %w", err)}
	}
	fmt.Fprintf(out, "hil: bench %q (%s)\n", b.Name, benchPath)
	if err := preflight(ctx, out, b); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("hil: bench %s: %w", benchPath, err)}
	}
	if selftestOnly {
		return nil
	}
	t := &failT{}
	passed := suite.Run(t, suite.Config{BenchPath: benchPath, ReportDir: reportDir, Version: version})
	if !passed || t.failed {
		return &exitError{code: 1, err: fmt.Errorf("hil: the suite failed on bench %s", benchPath)}
	}
	return nil
}

// preflight checks every pin, then pulses each loopback pair, and prints what it found.
func preflight(ctx context.Context, out io.Writer, b *bench.Bench) error {
	var rep *selftest.Report
	if b.UsesDriver(bench.Sim) {
		s, err := hil.Start(ctx, b, hil.Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		defer s.Rig.RestoreOnPanic()
		rep = selftest.CheckPins(b, &pins.Opener{Sim: s.Board})
		rep.Loops = selftest.CheckLoopbacks(ctx, s.Rig)
	} else {
		rep = selftest.CheckPins(b, &pins.Opener{})
		if rep.OK() {
			r, err := rig.Open(b, &pins.Opener{})
			if err != nil {
				return err
			}
			defer r.Close()
			defer r.RestoreOnPanic()
			stop := r.HandleSignals(nil)
			defer stop()
			rep.Loops = selftest.CheckLoopbacks(ctx, r)
		}
	}
	fmt.Fprintln(out, "hil: self-test")
	rep.Write(out)
	return rep.Err()
}
