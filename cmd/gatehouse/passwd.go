package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
)

func init() { register(newPasswdCmd) }

func newPasswdCmd() *cobra.Command {
	var create, batch, del bool
	cmd := &cobra.Command{
		Use:   "passwd [-c] [-b] [-D] FILE USER [PASSWORD]",
		Short: "Manage a password file in mosquitto's format",
		Long: `Add, update or delete a user in a password file that both the Gatehouse broker and
mosquitto read (mosquitto_passwd 2.0 format: $7$ PBKDF2-HMAC-SHA512, 101 iterations, file mode 0600).

  gatehouse passwd -c -b FILE USER PASSWORD   create (or overwrite) FILE with one user
  gatehouse passwd -b FILE USER PASSWORD      add USER or change its password; other lines are kept
  gatehouse passwd -D FILE USER               delete USER
  gatehouse passwd FILE USER < pw.txt         read the password twice (two lines) from standard input

Without -b the password is read from standard input, which must not be a terminal: this build
cannot turn off terminal echo, so type-in use needs -b (mind the shell history) or a pipe.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPasswd(cmd, args, create, batch, del)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&create, "create", "c", false, "create a new password file, overwriting an existing one")
	f.BoolVarP(&batch, "batch", "b", false, "take the password from the command line")
	f.BoolVarP(&del, "delete", "D", false, "delete USER from FILE")
	return cmd
}

func runPasswd(cmd *cobra.Command, args []string, create, batch, del bool) error {
	file, username := args[0], args[1]
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf("passwd: "+format, a...)}
	}
	switch {
	case create && del:
		return usage("-c and -D cannot be used together")
	case del && batch:
		return usage("-D takes no password: drop -b")
	case del && len(args) != 2:
		return usage("-D takes FILE USER, got %d arguments", len(args))
	case batch && len(args) != 3:
		return usage("-b needs FILE USER PASSWORD, got %d arguments", len(args))
	case !batch && !del && len(args) != 2:
		return usage("a password on the command line needs -b")
	}
	if del {
		if err := auth.DeleteUser(file, username); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		return nil
	}
	if err := auth.ValidUsername(username); err != nil {
		return usage("%w", err)
	}
	if !create {
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("passwd: %s does not exist: use -c to create it", file)
		}
		// Refuse to rewrite a file that the broker could not load: fix it first.
		if _, err := auth.LoadPasswordFile(file); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
	}
	var password []byte
	if batch {
		password = []byte(args[2])
	} else {
		p, err := readPasswordTwice(cmd.InOrStdin())
		if err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		password = p
	}
	var err error
	if create {
		err = auth.CreatePasswordFile(file, username, password)
	} else {
		err = auth.WritePasswordEntry(file, username, password)
	}
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	return nil
}

// readPasswordTwice reads the password and its confirmation as two lines of in.
func readPasswordTwice(in io.Reader) ([]byte, error) {
	if isTerminal(in) {
		return nil, errors.New("standard input is a terminal and this build cannot hide what you type: " +
			"use -b FILE USER PASSWORD, or pipe the password twice: printf '%s\\n%s\\n' \"$PW\" \"$PW\" | gatehouse passwd FILE USER")
	}
	r := bufio.NewReader(in)
	var lines [2]string
	for i := range lines {
		line, err := r.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			if err == io.EOF {
				return nil, fmt.Errorf("expected the password twice on standard input (two lines), got %d", i)
			}
			return nil, fmt.Errorf("read password: %w", err)
		}
		lines[i] = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	}
	if lines[0] != lines[1] {
		return nil, errors.New("the two passwords do not match")
	}
	return []byte(lines[0]), nil
}

// isTerminal reports whether in is an interactive terminal: a character device other than
// /dev/null (which CI jobs and daemons get as standard input).
func isTerminal(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return true
}
