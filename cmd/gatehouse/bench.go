package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
)

func init() { register(newBenchCmd) }

// The broker benchmark is a separate Go module (bench/) so that the peer brokers it embeds stay
// out of gatehouse's own dependencies; this subcommand finds it in the source tree and runs it.
func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [brokerbench flags]",
		Short: "Measure broker throughput, latency and memory side by side with peer brokers",
		Long: `Run the broker benchmark: identical workloads against the reference broker (gatehouse broker),
Debian's mosquitto and mochi-mqtt, each broker a fresh process per run, alternating brokers
within each repetition: QoS 0/1/2 fan-in (100 publishers into one subscriber on "#"), fan-out
(one publisher to 1,000 subscribers), 10,000 idle connections (connect time, broker memory per
connection) and latency at 5,000 QoS 1 msg/s, counting lost, duplicated and reordered messages in
every run, then again with the broker pinned to one core.

The benchmark lives in the source tree's bench/ module (it embeds mochi-mqtt, which gatehouse
itself does not depend on), so this subcommand needs the source tree and a Go toolchain: it runs
"go run ./cmd/brokerbench" in bench/, passing every argument through. "make bench-broker" does the
same. Results go to bench/results/broker-bench.json and into BENCHMARKS.md.

Useful flags (all of them: gatehouse bench -- -h): -quick, -reps N, -cases LIST, -brokers LIST.`,
		Example:            "  gatehouse bench\n  gatehouse bench -quick\n  gatehouse bench -reps 5 -cases 'fan-in q1,latency q1'",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-help") {
				return cmd.Help()
			}
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			dir, err := findBenchModule()
			if err != nil {
				return err
			}
			run := exec.CommandContext(cmd.Context(), "go", append([]string{"run", "./cmd/brokerbench"}, args...)...)
			run.Dir = dir
			run.Stdin, run.Stdout, run.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := run.Run(); err != nil {
				return fmt.Errorf("bench: go run ./cmd/brokerbench in %s: %w", dir, err)
			}
			return nil
		},
	}
}

// findBenchModule returns the bench/ directory of the gatehouse source tree that holds the
// working directory.
func findBenchModule() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "bench", "cmd", "brokerbench")); err == nil {
			return filepath.Join(d, "bench"), nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", &exitError{code: 2, err: errors.New("bench: the broker benchmark runs from the gatehouse source tree " +
		"(its bench/ module); run this command inside a checkout, or use \"make bench-broker\" there")}
}
