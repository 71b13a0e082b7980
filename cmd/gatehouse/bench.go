package main

import "github.com/spf13/cobra"

func init() { register(newBenchCmd) }

func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench",
		Short: "Measure broker throughput, latency and memory side by side with peer brokers",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("bench")
		},
	}
}
