package auth

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseACL: any input either parses or fails with a *FileError naming a line of the input.
func FuzzParseACL(f *testing.F) {
	f.Add([]byte("topic read a/#\nuser u\ntopic deny a/b\npattern readwrite x/%c/#\n"))
	f.Add([]byte("  # c\r\ntopic   write  with space\n\tuser  x y\n"))
	f.Add([]byte("topic read a/#/b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		acl, err := ParseACL("f.acl", data)
		checkFileError(t, data, err)
		if err == nil {
			// Decisions never panic, whatever the identity.
			for _, id := range []Identity{anon("c"), as("u", "c+"), as("x y", "%u")} {
				for _, a := range []Access{Read, Write, Subscribe} {
					acl.Allow(id, "a/b", a)
					acl.Allow(id, "$share/g/a/#", a)
				}
			}
		}
	})
}

// FuzzParsePasswordFile: same contract for password files; a parsed file authenticates without panicking.
func FuzzParsePasswordFile(f *testing.F) {
	f.Add([]byte("a:$7$101$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n"))
	f.Add([]byte("b:$6$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n# c\n"))
	f.Add([]byte("c:$7$x$y$z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParsePasswordFile("f.pw", data)
		checkFileError(t, data, err)
		if err == nil {
			for u, c := range pf.users {
				if c.kind == pbkdf2SHA512 && c.iterations > 10_000 {
					continue // valid but slow: not what this target is about
				}
				if pf.Authenticate(user(u, "x")) == nil {
					t.Fatalf("user %q accepted an arbitrary password", u)
				}
			}
		}
	})
}

func checkFileError(t *testing.T, data []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FileError", err)
	}
	lines := strings.Count(string(data), "\n") + 1
	if fe.Line < 1 || fe.Line > lines || !strings.HasPrefix(err.Error(), fe.Path+":") {
		t.Fatalf("error %q names line %d of a %d-line input", err, fe.Line, lines)
	}
}
