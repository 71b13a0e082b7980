package main

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The subcommands DESIGN.md promises; each must be registered with a one-line description.
var wantSubcommands = []string{"broker", "sim", "run", "conform", "certify", "hil", "bench", "version", "passwd"}

func TestHelpListsEverySubcommandWithOneLine(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatalf("gatehouse --help: %v", err)
	}
	help := out.String()
	for _, name := range wantSubcommands {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd == root {
			t.Errorf("subcommand %q is not registered", name)
			continue
		}
		if cmd.Short == "" || strings.Contains(cmd.Short, "\n") {
			t.Errorf("subcommand %q needs a one-line Short description, got %q", name, cmd.Short)
		}
		if !strings.Contains(help, "  "+name+" ") || !strings.Contains(help, cmd.Short) {
			t.Errorf("--help does not list %q with its description:\n%s", name, help)
		}
	}
}

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatalf("gatehouse version: %v", err)
	}
	for _, want := range []string{"gatehouse ", "commit ", runtime.Version()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version output %q lacks %q", out.String(), want)
		}
	}
}

func TestNotBuiltSubcommandFailsLoudly(t *testing.T) {
	subcommands = append(subcommands, func() *cobra.Command {
		return &cobra.Command{Use: "unbuilt", RunE: func(*cobra.Command, []string) error { return errNotBuilt("unbuilt") }}
	})
	defer func() { subcommands = subcommands[:len(subcommands)-1] }()
	if code := run([]string{"unbuilt"}); code != 3 {
		t.Fatalf("exit code of an unbuilt subcommand = %d, want 3", code)
	}
	var ee *exitError
	if err := errNotBuilt("x"); !errors.As(err, &ee) || !strings.Contains(err.Error(), "not built yet") {
		t.Fatalf("errNotBuilt = %v, want an exitError saying 'not built yet'", err)
	}
}

func TestUnknownFlagFails(t *testing.T) {
	if code := run([]string{"version", "--no-such-flag"}); code == 0 {
		t.Fatal("an unknown flag exited 0")
	}
}
