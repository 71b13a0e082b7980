package auth

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The hash formats of mosquitto_passwd:
//
//	$7$<iterations>$<salt base64>$<hash base64>  PBKDF2-HMAC-SHA512 (mosquitto 2.0 default)
//	$6$<salt base64>$<hash base64>               SHA-512 of password then salt (mosquitto 1.x)
//
// Both use a 12-byte salt and a 64-byte hash, in standard padded base64.
const (
	saltLen           = 12
	hashLen           = 64
	DefaultIterations = 101 // mosquitto_passwd's default for $7$
)

// ErrUnknownUser is returned by DeleteUser for a user that is not in the file.
var ErrUnknownUser = errors.New("user not found in password file")

type hashKind byte

const (
	sha512Salted hashKind = 6
	pbkdf2SHA512 hashKind = 7
)

type credential struct {
	kind       hashKind
	iterations int
	salt       []byte
	hash       []byte
}

// digest computes the hash of password with c's method and salt.
func (c *credential) digest(password []byte) []byte {
	if c.kind == sha512Salted {
		h := sha512.New()
		h.Write(password)
		h.Write(c.salt)
		return h.Sum(nil)
	}
	// Cannot fail: the key length is fixed and within PBKDF2's bounds.
	key, _ := pbkdf2.Key(sha512.New, string(password), c.salt, c.iterations, hashLen)
	return key
}

// PasswordFile is a loaded mosquitto password file. It implements Authenticator.
type PasswordFile struct {
	path  string
	users map[string]*credential
	dummy *credential // hashed against for unknown users, so that timing does not tell which users exist
}

var _ Authenticator = (*PasswordFile)(nil)

// LoadPasswordFile reads a password file in mosquitto_passwd's format. Blank lines and lines
// starting with '#' are skipped; any other line must be "username:$7$..." or "username:$6$...",
// and a bad one is reported as "path:line: problem".
func LoadPasswordFile(path string) (*PasswordFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load password file: %w", err)
	}
	return ParsePasswordFile(path, data)
}

// ParsePasswordFile parses the content of a password file; path only names the file in errors.
func ParsePasswordFile(path string, data []byte) (*PasswordFile, error) {
	pf := &PasswordFile{path: path, users: map[string]*credential{}}
	seen := map[string]int{}
	for i, raw := range splitLines(data) {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, args ...any) error {
			return &FileError{Path: path, Line: i + 1, Err: fmt.Errorf(format, args...)}
		}
		user, encoded, ok := strings.Cut(line, ":")
		user, encoded = strings.TrimSpace(user), strings.TrimSpace(encoded)
		switch {
		case !ok:
			return nil, fail("expected username:hash, found no ':'")
		case user == "":
			return nil, fail("empty user name")
		case encoded == "":
			return nil, fail("user %q has no password hash", user)
		}
		if prev, dup := seen[user]; dup {
			return nil, fail("user %q already defined on line %d", user, prev)
		}
		c, err := parseHash(encoded)
		if err != nil {
			return nil, fail("user %q: %w", user, err)
		}
		seen[user] = i + 1
		pf.users[user] = c
	}
	pf.dummy = &credential{kind: pbkdf2SHA512, iterations: DefaultIterations, salt: make([]byte, saltLen), hash: make([]byte, hashLen)}
	return pf, nil
}

// splitLines splits on '\n' and drops a '\r' before it, so CRLF files read the same.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	out := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

func parseHash(s string) (*credential, error) {
	parts := strings.Split(s, "$")
	if len(parts) < 2 || parts[0] != "" {
		return nil, fmt.Errorf("password hash %q does not start with $6$ or $7$", short(s))
	}
	c := &credential{}
	switch parts[1] {
	case "7":
		if len(parts) != 5 {
			return nil, fmt.Errorf("$7$ hash needs the form $7$iterations$salt$hash, found %d fields", len(parts)-1)
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("$7$ hash: iterations %q is not a positive number", parts[2])
		}
		c.kind, c.iterations = pbkdf2SHA512, n
		parts = parts[3:]
	case "6":
		if len(parts) != 4 {
			return nil, fmt.Errorf("$6$ hash needs the form $6$salt$hash, found %d fields", len(parts)-1)
		}
		c.kind = sha512Salted
		parts = parts[2:]
	default:
		return nil, fmt.Errorf("unknown hash type $%s$ (supported: $7$ PBKDF2-SHA512, $6$ SHA-512)", parts[1])
	}
	var err error
	if c.salt, err = decode64(parts[0]); err != nil || len(c.salt) != saltLen {
		return nil, fmt.Errorf("salt %q is not %d bytes of base64", parts[0], saltLen)
	}
	if c.hash, err = decode64(parts[1]); err != nil || len(c.hash) != hashLen {
		return nil, fmt.Errorf("hash %q is not %d bytes of base64", short(parts[1]), hashLen)
	}
	return c, nil
}

func decode64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// Authenticate accepts a client whose user name is in the file and whose password hashes to the
// stored value. A client without a user name gets ErrNotAuthorized (whether anonymous clients are
// let in is the broker's decision, made before asking); an unknown user, a missing or a wrong
// password get ErrBadCredentials.
func (pf *PasswordFile) Authenticate(id Identity) error {
	if !id.HasUsername {
		return fmt.Errorf("%w: no user name", ErrNotAuthorized)
	}
	c, known := pf.users[id.Username]
	if !known {
		c = pf.dummy
	}
	ok := subtle.ConstantTimeCompare(c.digest(id.Password), c.hash) == 1
	if !known || !id.HasPassword || !ok {
		return ErrBadCredentials
	}
	return nil
}

// Users returns the number of users in the file.
func (pf *PasswordFile) Users() int { return len(pf.users) }

// HashPassword returns password hashed the way mosquitto_passwd 2.0 does by default:
// "$7$101$<salt>$<hash>", PBKDF2-HMAC-SHA512 with a random 12-byte salt.
func HashPassword(password []byte) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	c := credential{kind: pbkdf2SHA512, iterations: DefaultIterations, salt: salt}
	return encodeHash(&c, c.digest(password)), nil
}

func encodeHash(c *credential, hash []byte) string {
	enc := base64.StdEncoding
	if c.kind == sha512Salted {
		return "$6$" + enc.EncodeToString(c.salt) + "$" + enc.EncodeToString(hash)
	}
	return "$7$" + strconv.Itoa(c.iterations) + "$" + enc.EncodeToString(c.salt) + "$" + enc.EncodeToString(hash)
}

// ValidUsername checks a user name for a password file: not empty, no ':' (the field separator),
// no line break, well-formed UTF-8 (MQTT-1.5.3-1) and at most 65535 bytes.
func ValidUsername(username string) error {
	switch {
	case username == "":
		return errors.New("user name is empty")
	case strings.Contains(username, ":"):
		return fmt.Errorf("user name %q must not contain ':'", username)
	case strings.ContainsAny(username, "\r\n"):
		return fmt.Errorf("user name %q must not contain a line break", username)
	case strings.TrimSpace(username) != username:
		return fmt.Errorf("user name %q must not start or end with blanks (mosquitto trims them)", username)
	case !utf8.ValidString(username):
		return fmt.Errorf("user name %q is not well-formed UTF-8", username)
	case len(username) > 65535:
		return fmt.Errorf("user name is %d bytes, longer than 65535", len(username))
	}
	return nil
}

// WritePasswordEntry sets the password of username in the file at path: it replaces the user's
// line in place or appends one, keeps every other line as it was, and creates the file when it
// does not exist. The file is replaced atomically and left with mode 0600.
func WritePasswordEntry(path, username string, password []byte) error {
	if err := ValidUsername(username); err != nil {
		return fmt.Errorf("write password entry: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	lines, err := readLines(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write password entry: %w", err)
	}
	entry := username + ":" + hash
	replaced := false
	out := lines[:0:0]
	for _, l := range lines {
		if lineUser(l) == username {
			if !replaced {
				out = append(out, entry)
				replaced = true
			}
			continue // a duplicate of the user would make the file ambiguous: drop it
		}
		out = append(out, l)
	}
	if !replaced {
		out = append(out, entry)
	}
	return writeLines(path, out)
}

// CreatePasswordFile creates or overwrites the file at path with the single entry of username
// (mosquitto_passwd -c), mode 0600.
func CreatePasswordFile(path, username string, password []byte) error {
	if err := ValidUsername(username); err != nil {
		return fmt.Errorf("create password file: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return writeLines(path, []string{username + ":" + hash})
}

// DeleteUser removes username from the file at path, keeping every other line. It returns an
// error wrapping ErrUnknownUser when the user is not there.
func DeleteUser(path, username string) error {
	lines, err := readLines(path)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	out := lines[:0:0]
	for _, l := range lines {
		if lineUser(l) != username {
			out = append(out, l)
		}
	}
	if len(out) == len(lines) {
		return fmt.Errorf("delete user %q from %s: %w", username, path, ErrUnknownUser)
	}
	return writeLines(path, out)
}

// lineUser returns the user name of a password-file line, or "" for blanks and comments.
func lineUser(line string) string {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return ""
	}
	u, _, _ := strings.Cut(t, ":")
	return strings.TrimSpace(u)
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return splitLines(data), nil
}

// writeLines replaces path atomically: a temporary file in the same directory, synced, renamed.
func writeLines(path string, lines []string) error {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	return nil
}
