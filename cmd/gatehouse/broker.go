package main

import "github.com/spf13/cobra"

func init() { register(newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "broker",
		Short: "Run the reference MQTT broker (3.1, 3.1.1, 5.0) with optional fault modes",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("broker")
		},
	}
}
