// Command gatehouse is the one binary of Gatehouse: a reference MQTT broker, a simulated fleet of
// access-control devices driven by YAML scenarios, a spec-driven conformance suite, device
// certification and hardware-in-the-loop runs.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Build information, set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// subcommands holds the constructors registered by each subcommand's file in its init function,
// so that each subcommand lives in its own file and main.go does not change when one is added.
var subcommands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { subcommands = append(subcommands, newCmd) }

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errNotBuilt is returned by a subcommand that is registered but not implemented yet, so that a
// pipeline calling it fails loudly instead of reading a fake success.
func errNotBuilt(name string) error {
	return &exitError{code: 3, err: fmt.Errorf("%s: not built yet in this version of gatehouse", name)}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "MQTT device simulator, reference broker and conformance suite for access-control hardware",
		Long: `Gatehouse tests access-control hardware that speaks MQTT — vehicle gates and barriers,
turnstiles, cameras — and the platforms that drive it: a strict reference broker, a fleet of
simulated devices driven by YAML scenarios, a conformance suite traced to the MQTT 3.1.1 and 5.0
normative statements, device certification, and hardware-in-the-loop runs through periph.io.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmds := make([]*cobra.Command, 0, len(subcommands))
	for _, newCmd := range subcommands {
		cmds = append(cmds, newCmd())
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	root.AddCommand(cmds...)
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// testcontainers-go announces every Docker connection on stderr; the commands report what
	// matters about their containers themselves.
	tclog.SetDefault(tclog.NewNoopLogger())
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "gatehouse:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
