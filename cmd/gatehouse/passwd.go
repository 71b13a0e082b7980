package main

import "github.com/spf13/cobra"

func init() { register(newPasswdCmd) }

func newPasswdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "passwd",
		Short: "Manage a password file in mosquitto's format",
		RunE: func(*cobra.Command, []string) error {
			return errNotBuilt("passwd")
		},
	}
}
