package auth

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func user(name, password string) Identity {
	return Identity{ClientID: "c-" + name, Username: name, HasUsername: true, Password: []byte(password), HasPassword: true}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword([]byte("gate-01 secret"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[1] != "7" || parts[2] != "101" || len(parts[3]) != 16 || len(parts[4]) != 88 {
		t.Fatalf("hash %q is not $7$101$<16 chars>$<88 chars>", h)
	}
	h2, _ := HashPassword([]byte("gate-01 secret"))
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	pf := loadPW(t, "# devices\n\ngate-01:"+h+"\r\nother:"+h2+"\n")
	if err := pf.Authenticate(user("gate-01", "gate-01 secret")); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if pf.Users() != 2 {
		t.Fatalf("Users = %d, want 2", pf.Users())
	}
}

func loadPW(t *testing.T, content string) *PasswordFile {
	t.Helper()
	pf, err := LoadPasswordFile(writeFile(t, "passwd", content))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return pf
}

func TestAuthenticateDecisions(t *testing.T) {
	h, _ := HashPassword([]byte("pw"))
	empty, _ := HashPassword(nil)
	pf := loadPW(t, "alice:"+h+"\nnopass:"+empty+"\n")
	noUser := Identity{ClientID: "anon"}
	noPassword := Identity{ClientID: "x", Username: "alice", HasUsername: true}
	cases := []struct {
		name string
		id   Identity
		want error
	}{
		{"right password", user("alice", "pw"), nil},
		{"wrong password", user("alice", "pW"), ErrBadCredentials},
		{"password with a suffix", user("alice", "pw "), ErrBadCredentials},
		{"unknown user", user("mallory", "pw"), ErrBadCredentials},
		{"user name case matters", user("Alice", "pw"), ErrBadCredentials},
		{"no password", noPassword, ErrBadCredentials},
		{"no user name", noUser, ErrNotAuthorized},
		{"empty password stored, empty given", user("nopass", ""), nil},
		{"empty password stored, no password field", Identity{Username: "nopass", HasUsername: true}, ErrBadCredentials},
	}
	for _, c := range cases {
		err := pf.Authenticate(c.id)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Authenticate = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestPasswordFileErrorsNameFileAndLine(t *testing.T) {
	good, _ := HashPassword([]byte("x"))
	cases := []struct {
		content string
		line    int
		want    string
	}{
		{"a:" + good + "\nno colon here\n", 2, "no ':'"},
		{"\n\nbob:$5$abc$def\n", 3, "unknown hash type $5$"},
		{"bob:plaintext\n", 1, "does not start with $6$ or $7$"},
		{"bob:$7$0$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n", 1, "iterations"},
		{"bob:$7$101$AAAA$" + strings.Repeat("A", 86) + "==\n", 1, "salt"},
		{"bob:$7$101$AAAAAAAAAAAAAAAA$AAAA\n", 1, "hash"},
		{"bob:$7$101$AAAAAAAAAAAAAAAA\n", 1, "$7$iterations$salt$hash"},
		{"bob:$6$AAAAAAAAAAAAAAAA\n", 1, "$6$salt$hash"},
		{"bob:\n", 1, "no password hash"},
		{":" + good + "\n", 1, "empty user name"},
		{"a:" + good + "\n# c\na:" + good + "\n", 3, "already defined on line 1"},
	}
	for _, c := range cases {
		p := writeFile(t, "pw.txt", c.content)
		_, err := LoadPasswordFile(p)
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("%q: error %v, want a *FileError", c.content, err)
			continue
		}
		prefix := p + ":" + strconv.Itoa(c.line) + ": "
		if fe.Line != c.line || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want prefix %q and %q", c.content, err, prefix, c.want)
		}
	}
	if _, err := LoadPasswordFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestWritePasswordEntryKeepsOtherLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "passwd")
	if err := WritePasswordEntry(p, "gate-01", []byte("one")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	os.WriteFile(p, append([]byte("# site 1 devices\n"), data...), 0o644)
	if err := WritePasswordEntry(p, "gate-02", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := WritePasswordEntry(p, "gate-01", []byte("uno")); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(p)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "# site 1 devices" || !strings.HasPrefix(lines[1], "gate-01:$7$") || !strings.HasPrefix(lines[2], "gate-02:$7$") {
		t.Fatalf("file after updates:\n%s", data)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("updated file mode %v, want 0600", st.Mode().Perm())
	}
	pf, err := LoadPasswordFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if pf.Authenticate(user("gate-01", "one")) == nil || pf.Authenticate(user("gate-01", "uno")) != nil || pf.Authenticate(user("gate-02", "two")) != nil {
		t.Fatal("updated passwords not in effect")
	}

	if err := DeleteUser(p, "gate-01"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteUser(p, "gate-01"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("deleting a missing user: %v, want ErrUnknownUser", err)
	}
	pf, _ = LoadPasswordFile(p)
	if pf.Users() != 1 || pf.Authenticate(user("gate-02", "two")) != nil {
		t.Fatal("delete removed the wrong user")
	}
	data, _ = os.ReadFile(p)
	if !strings.HasPrefix(string(data), "# site 1 devices\n") {
		t.Fatalf("comment lost on delete:\n%s", data)
	}

	if err := CreatePasswordFile(p, "solo", []byte("s")); err != nil {
		t.Fatal(err)
	}
	pf, _ = LoadPasswordFile(p)
	if pf.Users() != 1 || pf.Authenticate(user("solo", "s")) != nil {
		t.Fatal("CreatePasswordFile did not overwrite the file with one user")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestUsernameRules(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	for _, bad := range []string{"", "a:b", "a\nb", " lead", "trail ", "\xff"} {
		if err := WritePasswordEntry(p, bad, []byte("x")); err == nil {
			t.Errorf("user name %q accepted", bad)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused user name still created the file")
	}
}

// TestReadsFilesWrittenByMosquittoPasswd checks byte compatibility with Debian's mosquitto_passwd
// for both the 2.0 default ($7$, PBKDF2) and the 1.x format ($6$, -H sha512).
func TestReadsFilesWrittenByMosquittoPasswd(t *testing.T) {
	tool := testenv.Tool(t, "mosquitto_passwd", testenv.MosquittoInstall)
	p := filepath.Join(t.TempDir(), "passwd")
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %q: %v: %s", args, err, out)
		}
	}
	run("-b", "-c", p, "alice", "wonder land")
	run("-b", p, "bob", "pässwörd:with:colons")
	run("-H", "sha512", "-b", p, "legacy", "old-style")
	data, _ := os.ReadFile(p)
	if !strings.Contains(string(data), "legacy:$6$") || !strings.Contains(string(data), "alice:$7$101$") {
		t.Fatalf("mosquitto_passwd wrote an unexpected file:\n%s", data)
	}
	pf, err := LoadPasswordFile(p)
	if err != nil {
		t.Fatalf("load file written by mosquitto_passwd: %v", err)
	}
	for _, c := range []struct{ user, right, wrong string }{
		{"alice", "wonder land", "wonderland"},
		{"bob", "pässwörd:with:colons", "passwort"},
		{"legacy", "old-style", "old-style!"},
	} {
		if err := pf.Authenticate(user(c.user, c.right)); err != nil {
			t.Errorf("%s: password set by mosquitto_passwd refused: %v", c.user, err)
		}
		if err := pf.Authenticate(user(c.user, c.wrong)); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s: wrong password: %v, want ErrBadCredentials", c.user, err)
		}
	}
}

// TestMosquittoAcceptsOurPasswordFile runs Debian's mosquitto with a password file written by
// WritePasswordEntry and connects with mosquitto_pub.
func TestMosquittoAcceptsOurPasswordFile(t *testing.T) {
	pub := testenv.MosquittoPub(t)
	p := filepath.Join(t.TempDir(), "passwd")
	if err := WritePasswordEntry(p, "gate-01", []byte("s3cret pass")); err != nil {
		t.Fatal(err)
	}
	if err := WritePasswordEntry(p, "gate-02", []byte("other")); err != nil {
		t.Fatal(err)
	}
	// mosquitto 2.0 refuses to read a password file that other users can read only with a warning;
	// 0600 and owned by us is what it wants.
	m := testenv.StartMosquitto(t, "allow_anonymous false", "password_file "+p, runAs())
	connect := func(user, password string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-V", "mqttv311",
			"-i", "gh-"+user, "-u", user, "-P", password, "-t", "acs/test", "-m", "x", "-q", "1").CombinedOutput()
		return string(out), err
	}
	if out, err := connect("gate-01", "s3cret pass"); err != nil {
		t.Fatalf("mosquitto refused the right password from our file: %v: %s\nbroker log:\n%s", err, out, m.Log())
	}
	if out, err := connect("gate-02", "other"); err != nil {
		t.Fatalf("mosquitto refused the second user: %v: %s", err, out)
	}
	for _, c := range [][2]string{{"gate-01", "s3cret"}, {"gate-02", "s3cret pass"}, {"nobody", "x"}} {
		out, err := connect(c[0], c[1])
		if err == nil {
			t.Fatalf("mosquitto accepted user %q with a wrong password", c[0])
		}
		if !strings.Contains(strings.ToLower(out), "not authori") && !strings.Contains(strings.ToLower(out), "bad user name or password") {
			t.Fatalf("user %q: mosquitto_pub failed for another reason than authentication: %s", c[0], out)
		}
	}
}

// runAs keeps mosquitto as the user running the tests: started as root, mosquitto would switch
// to the "mosquitto" user, which cannot read files in the test's private temporary directory.
func runAs() string {
	if os.Geteuid() == 0 {
		return "user root"
	}
	return "# not root: mosquitto keeps the current user"
}

// TestFixturePasswordFile keeps fixtures/auth/passwd usable: every user logs in with its name
// followed by "-pw", in both hash formats.
func TestFixturePasswordFile(t *testing.T) {
	pf, err := LoadPasswordFile("../../fixtures/auth/passwd")
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"backoffice", "billing", "installer", "gate-01", "legacy"}
	if pf.Users() != len(users) {
		t.Fatalf("fixture has %d users, want %d", pf.Users(), len(users))
	}
	for _, u := range users {
		if err := pf.Authenticate(user(u, u+"-pw")); err != nil {
			t.Errorf("fixture user %s: %v", u, err)
		}
		if err := pf.Authenticate(user(u, u)); err == nil {
			t.Errorf("fixture user %s accepted a wrong password", u)
		}
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	h, _ := HashPassword([]byte("pw"))
	p := filepath.Join(b.TempDir(), "passwd")
	os.WriteFile(p, []byte("gate-01:"+h+"\n"), 0o600)
	pf, err := LoadPasswordFile(p)
	if err != nil {
		b.Fatal(err)
	}
	id := user("gate-01", "pw")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if pf.Authenticate(id) != nil {
			b.Fatal("refused")
		}
	}
}

func TestLongLinesAreNotDropped(t *testing.T) {
	h, _ := HashPassword([]byte("pw"))
	long := "# " + strings.Repeat("x", 2<<20) + "\n"
	pf := loadPW(t, long+"after:"+h+"\n")
	if err := pf.Authenticate(user("after", "pw")); err != nil {
		t.Fatalf("user after a 2 MiB comment line: %v", err)
	}
	acl := loadACL(t, long+"topic read a/b\n")
	if !acl.Allow(anon("c"), "a/b", Read) {
		t.Fatal("ACL line after a 2 MiB comment line ignored")
	}
}
