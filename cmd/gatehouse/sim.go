package main

import "github.com/spf13/cobra"

func init() { register(newSimCmd) }

func newSimCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sim",
		Short: "Run a long-lived simulated fleet of gates, turnstiles and cameras against a broker",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("sim")
		},
	}
}
