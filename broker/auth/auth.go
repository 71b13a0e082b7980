// Package auth decides who may connect and what each client may publish, subscribe to and
// receive, from files in mosquitto's formats so that a deployment can move between Gatehouse's
// reference broker and mosquitto without rewriting them:
//
//   - a password file as written by mosquitto_passwd 2.0 (PasswordFile, an Authenticator), with
//     its writer (HashPassword, WritePasswordEntry, CreatePasswordFile, DeleteUser);
//   - an acl_file as described in mosquitto.conf(5) (ACLFile, an ACL).
//
// Errors in either file name the file and the line ("acl.conf:7: ..."). Both types are immutable
// after loading and safe for concurrent use; a broker reloads by loading a new value.
package auth

import (
	"errors"
	"fmt"
)

// Identity is what the broker knows about a client when it asks for a decision.
type Identity struct {
	ClientID    string
	Username    string
	Password    []byte
	HasUsername bool // the CONNECT packet carried a user name (possibly empty)
	HasPassword bool
	CertCN      string // common name of a verified TLS client certificate, "" without one
	Remote      string // remote address, for logs
}

// Authenticator decides whether a client may connect. It returns nil when it may, or an error
// that is (errors.Is) ErrBadCredentials or ErrNotAuthorized.
type Authenticator interface {
	Authenticate(id Identity) error
}

// AuthenticatorFunc adapts a function to an Authenticator (tests, fault modes, custom schemes).
type AuthenticatorFunc func(id Identity) error

// Authenticate calls f(id).
func (f AuthenticatorFunc) Authenticate(id Identity) error { return f(id) }

// ACLFunc adapts a function to an ACL.
type ACLFunc func(id Identity, topic string, a Access) bool

// Allow calls f(id, topic, a).
func (f ACLFunc) Allow(id Identity, topic string, a Access) bool { return f(id, topic, a) }

var (
	_ Authenticator = AuthenticatorFunc(nil)
	_ ACL           = ACLFunc(nil)
)

// Errors an Authenticator returns, mapped by the broker onto CONNACK return / reason codes.
var (
	// ErrBadCredentials: unknown user name or wrong password (5.0 CONNACK 0x86; 3.1.1 0x05, since
	// 3.1.1 keeps 0x04 for malformed user name or password data).
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrNotAuthorized: the client may not connect this way, e.g. without a user name (3.1.1 0x05, 5.0 0x87).
	ErrNotAuthorized = errors.New("not authorized")
)

// FileError is a problem in a password or ACL file, at a line (1-based; 0 = the file as a whole).
type FileError struct {
	Path string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }
