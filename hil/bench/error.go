package bench

import (
	"fmt"
	"strings"
)

// Error is one problem in a bench file, at a place a person can find: file:line:column, the path
// of the offending key (e.g. relays[2].driver) and what was expected there.
type Error struct {
	File   string
	Line   int
	Column int
	Path   string // e.g. "relays[2].driver"; empty for a problem with the whole document
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one bench file, in file order. Reporting all of them at once
// spares a bench engineer one edit-and-retry round per mistake.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
