package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/brokers"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/defaults"
)

func init() { register(newRunCmd) }

// Exit codes of gatehouse run.
const (
	exitFailed   = 1 // a scenario failed or errored
	exitBadInput = 2 // a scenario file or a flag is wrong; nothing ran
)

type runFlags struct {
	broker    string
	reportDir string
	seed      uint64
	junit     string
	logLevel  string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [SCENARIO.yaml...]",
		Short: "Run YAML scenarios against a broker and judge their expectations",
		Long: `Run each scenario — a fleet of simulated gates, turnstiles and cameras, the traffic and faults
applied to it, and the expectations that judge what happened — and write the results as an HTML
report, a JUnit XML file and one JSON record per scenario.

Without a scenario, the default scenario built into gatehouse runs against the embedded reference
broker. Each scenario gets a fresh broker: the one --broker names, else the one its file names
(embedded by default). The exit code is 0 when every scenario passed (or was skipped because the broker cannot do
what it needs), 1 when one failed, 2 when a scenario file or a flag is wrong.

A run is reproducible: the seed (from the file, or --seed) is printed and recorded in every report;
the same file and seed give the same actions and device data.`,
		Example: `  gatehouse run
  gatehouse run scenarios/*.yaml --report-dir out --junit out/junit.xml
  gatehouse run scenarios/gate-power-cut.yaml --broker mqtt://127.0.0.1:1883 --seed 7
  gatehouse run scenarios/network-flapping.yaml --broker mosquitto`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScenarios(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.broker, "broker", "embedded", "broker to run against, instead of the scenario's own: "+brokers.Usage)
	fl.StringVar(&f.reportDir, "report-dir", "gatehouse-report", "directory for report.html, junit.xml and one JSON record per scenario")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for every scenario instead of the one in its file")
	fl.StringVar(&f.junit, "junit", "", "also write the JUnit XML to this file")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	return cmd
}

// loaded is a scenario ready to run.
type loaded struct {
	s    *scenario.Scenario
	path string
}

func runScenarios(cmd *cobra.Command, args []string, f runFlags) error {
	out := cmd.OutOrStdout()
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	var list []loaded
	if len(args) == 0 {
		s, err := defaults.Scenario()
		if err != nil {
			return fmt.Errorf("default scenario: %w", err)
		}
		list = append(list, loaded{s: s, path: defaults.Name + " (built in)"})
	}
	var bad []string
	for _, path := range args {
		s, err := scenario.Load(path)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		list = append(list, loaded{s: s, path: path})
	}
	if len(bad) > 0 {
		return &exitError{code: exitBadInput, err: fmt.Errorf("%d scenario file(s) refused:\n%s", len(bad), strings.Join(bad, "\n"))}
	}
	brokerSet := cmd.Flags().Changed("broker")
	if _, err := target.Parse(f.broker); err != nil {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--broker: %w", err)}
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	version, _ := buildInfo()
	terminal := isTerminalOut(out)

	var recs []*report.Record
	for i, l := range list {
		if ctx.Err() != nil {
			break
		}
		opts := scenario.Options{Version: version, Logger: logger}
		if cmd.Flags().Changed("seed") {
			seed := f.seed
			opts.Seed = &seed
		}
		seed := l.s.Seed
		if opts.Seed != nil {
			seed = *opts.Seed
		}
		spec := brokers.Spec(l.s)
		if brokerSet {
			spec = f.broker
		}
		tgt, cleanup, err := brokers.Start(ctx, spec, l.s, logger)
		if err != nil {
			rec := report.New(l.s.Name, report.KindScenario, time.Now())
			rec.SetSeed(seed)
			rec.SetProperty("file", l.s.File)
			rec.SetError(err.Error())
			rec.Finish(time.Now())
			recs = append(recs, rec)
			fmt.Fprintf(out, "%s %s: %v\n", badge(report.Error), l.s.Name, err)
			continue
		}
		fmt.Fprintf(out, "[%d/%d] %s (%s, seed %d) against %s\n", i+1, len(list), l.s.Name, l.path, seed, tgt.Describe())
		opts.Target = tgt
		if terminal {
			opts.Progress = progressLine(out, i+1, len(list))
		}
		rec := scenario.Run(ctx, l.s, opts)
		cleanup()
		if terminal {
			fmt.Fprint(out, "\r\033[K")
		}
		recs = append(recs, rec)
		printSummary(out, rec)
	}

	paths, err := report.WriteDir(f.reportDir, "gatehouse run", recs...)
	if err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	if f.junit != "" {
		if err := report.WriteJUnitFile(f.junit, "gatehouse run", recs...); err != nil {
			return err
		}
	}
	var total report.Counts
	outcome := report.Outcome("")
	for _, r := range recs {
		n := r.Count()
		total.Total += n.Total
		total.Pass += n.Pass
		total.Fail += n.Fail
		total.Error += n.Error
		total.Skip += n.Skip
		outcome = report.Worst(outcome, r.Outcome)
	}
	fmt.Fprintf(out, "\n%d scenario(s), %d checks: %d passed, %d failed, %d errored, %d skipped — %s\n",
		len(recs), total.Total, total.Pass, total.Fail, total.Error, total.Skip, strings.ToUpper(string(outcome)))
	fmt.Fprintf(out, "report: %s\njunit:  %s\n", paths.HTML, paths.JUnit)
	if f.junit != "" {
		fmt.Fprintf(out, "junit:  %s\n", f.junit)
	}
	for _, p := range paths.JSON {
		fmt.Fprintf(out, "json:   %s\n", p)
	}
	if ctx.Err() != nil {
		return &exitError{code: exitFailed, err: errors.New("interrupted")}
	}
	if outcome.Failed() || len(recs) < len(list) {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d scenario(s) did not pass", countFailed(recs), len(recs))}
	}
	return nil
}

func countFailed(recs []*report.Record) int {
	n := 0
	for _, r := range recs {
		if r.Outcome.Failed() {
			n++
		}
	}
	return n
}

func printSummary(out io.Writer, rec *report.Record) {
	n := rec.Count()
	fmt.Fprintf(out, "%s %s in %s: %d checks, %d passed, %d failed, %d errored, %d skipped (seed %d)\n",
		badge(rec.Outcome), rec.Name, rec.Duration().Round(time.Millisecond), n.Total, n.Pass, n.Fail, n.Error, n.Skip, *rec.Seed)
	if rec.Message != "" {
		fmt.Fprintf(out, "    %s\n", rec.Message)
	}
	for _, c := range rec.Cases {
		if c.Outcome.Failed() || c.Outcome == report.Skip || c.Outcome == report.Warn {
			msg := c.Message
			if msg == "" {
				msg = c.Name
			}
			fmt.Fprintf(out, "    %s %s\n", badge(c.Outcome), msg)
		}
	}
}

func badge(o report.Outcome) string { return "[" + strings.ToUpper(string(o)) + "]" }

// isTerminalOut reports whether w is a terminal, where a live progress line makes sense.
func isTerminalOut(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine rewrites one line of the terminal as the run advances.
func progressLine(out io.Writer, i, n int) func(scenario.Progress) {
	return func(p scenario.Progress) {
		fmt.Fprintf(out, "\r\033[K[%d/%d] %s %5.1fs/%s  actions %d/%d  checks %d passed %d failed %d pending",
			i, n, p.Scenario, p.Elapsed.Seconds(), p.Total, p.Actions, p.Planned, p.Met, p.Failed, p.Pending)
	}
}
