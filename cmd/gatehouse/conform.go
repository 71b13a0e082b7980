package main

import "github.com/spf13/cobra"

func init() { register(newConformCmd) }

func newConformCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "conform",
		Short: "Check a broker against the MQTT 3.1.1 and 5.0 normative statements",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("conform")
		},
	}
}
