package main

import "github.com/spf13/cobra"

func init() { register(newHilCmd) }

func newHilCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hil",
		Short: "Run the hardware-in-the-loop suite on a bench of relays and sense inputs",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("hil")
		},
	}
}
