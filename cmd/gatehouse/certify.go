package main

import "github.com/spf13/cobra"

func init() { register(newCertifyCmd) }

func newCertifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "certify",
		Short: "Certify a device's firmware over MQTT against a device profile",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("certify")
		},
	}
}
