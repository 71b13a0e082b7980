package main

import "github.com/spf13/cobra"

func init() { register(newRunCmd) }

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run YAML scenarios against a broker and judge their expectations",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("run")
		},
	}
}
