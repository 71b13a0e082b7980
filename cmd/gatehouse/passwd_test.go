package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
)

// passwd runs "gatehouse passwd ARGS" with stdin and returns the error and the exit code run would use.
func passwd(t *testing.T, stdin string, args ...string) (int, error) {
	t.Helper()
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"passwd"}, args...))
	err := root.Execute()
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return code, err
}

func checkLogin(t *testing.T, file, user, password string, want bool) {
	t.Helper()
	pf, err := auth.LoadPasswordFile(file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	err = pf.Authenticate(auth.Identity{Username: user, HasUsername: true, Password: []byte(password), HasPassword: true})
	if (err == nil) != want {
		t.Fatalf("login %s/%q: %v, want success=%v", user, password, err, want)
	}
}

func TestPasswdCreateUpdateDelete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if _, err := passwd(t, "", "-b", file, "gate-01", "pw1"); err == nil || !strings.Contains(err.Error(), "use -c to create it") {
		t.Fatalf("update of a missing file: %v, want advice to use -c", err)
	}
	if _, err := passwd(t, "", "-c", "-b", file, "gate-01", "pw1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	checkLogin(t, file, "gate-01", "pw1", true)
	if _, err := passwd(t, "", "-cb", file, "gate-02", "pw2"); err != nil {
		t.Fatal(err)
	}
	checkLogin(t, file, "gate-02", "pw2", true)
	checkLogin(t, file, "gate-01", "pw1", false) // -c overwrote the file
	if _, err := passwd(t, "", "-b", file, "gate-01", "pw1"); err != nil {
		t.Fatal(err)
	}
	if _, err := passwd(t, "new pass\nnew pass\n", file, "gate-02"); err != nil {
		t.Fatalf("password from stdin: %v", err)
	}
	checkLogin(t, file, "gate-01", "pw1", true)
	checkLogin(t, file, "gate-02", "new pass", true)
	if _, err := passwd(t, "", "-D", file, "gate-01"); err != nil {
		t.Fatal(err)
	}
	checkLogin(t, file, "gate-01", "pw1", false)
	checkLogin(t, file, "gate-02", "new pass", true)
	code, err := passwd(t, "", "-D", file, "gate-01")
	if !errors.Is(err, auth.ErrUnknownUser) || code != 1 {
		t.Fatalf("deleting a missing user: %v (exit %d), want ErrUnknownUser and exit 1", err, code)
	}
}

func TestPasswdRefusesBadUse(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if _, err := passwd(t, "", "-c", "-b", file, "u", "p"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"-c", "-D", file, "u"}, 2, "-c and -D"},
		{"", []string{"-D", "-b", file, "u"}, 2, "drop -b"},
		{"", []string{"-b", file, "u"}, 2, "-b needs FILE USER PASSWORD"},
		{"", []string{file, "u", "p"}, 2, "needs -b"},
		{"", []string{"-b", file, "a:b", "p"}, 2, "must not contain ':'"},
		{"", []string{file}, 1, "accepts between 2 and 3 arg"},
		{"one\ntwo\n", []string{file, "u"}, 1, "do not match"},
		{"once\n", []string{file, "u"}, 1, "twice on standard input (two lines), got 1"},
		{"", []string{file, "u"}, 1, "got 0"},
	}
	for _, c := range cases {
		code, err := passwd(t, c.stdin, c.args...)
		if err == nil || code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("passwd %q: %v (exit %d), want exit %d and %q", c.args, err, code, c.code, c.want)
		}
	}
	checkLogin(t, file, "u", "p", true) // nothing above changed the file
}

func TestPasswdRefusesToRewriteABrokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(file, []byte("good:$7$101$AAAAAAAAAAAAAAAA$"+strings.Repeat("A", 86)+"==\nbroken line\n"), 0o600)
	_, err := passwd(t, "", "-b", file, "new", "pw")
	if err == nil || !strings.Contains(err.Error(), file+":2:") {
		t.Fatalf("update of a broken file: %v, want an error naming %s:2", err, file)
	}
}

func TestPasswdTerminalDetection(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Fatal("/dev/null taken for a terminal")
	}
	if isTerminal(strings.NewReader("x")) {
		t.Fatal("a reader taken for a terminal")
	}
	// /dev/tty needs a controlling terminal; CI has none, but /dev/ptmx (a terminal multiplexer
	// device) is a character device that is not /dev/null as well.
	tty, err := os.Open("/dev/tty")
	if err != nil {
		tty, err = os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	}
	if err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Fatalf("%s not taken for a terminal", tty.Name())
		}
		// Were the terminal read instead of refused, nothing would ever arrive: bound the wait.
		_ = tty.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readPasswordTwice(tty); err == nil || !strings.Contains(err.Error(), "use -b") {
			t.Fatalf("reading a password from a terminal: %v, want advice to use -b", err)
		}
	}
}
