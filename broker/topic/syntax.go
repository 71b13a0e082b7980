package topic

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SharePrefix starts a 5.0 shared subscription filter: "$share/{ShareName}/{filter}".
const SharePrefix = "$share/"

// maxLen is the longest topic name or filter an UTF-8 encoded string can carry (MQTT-4.7.3-3).
const maxLen = 65535

// SyntaxError is a topic name or topic filter that breaks a rule of the MQTT specification.
// Statement is the normative statement it breaks (for example "MQTT-4.7.1-2").
type SyntaxError struct {
	Statement string
	Text      string // the topic name or filter as given
	Problem   string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("topic %q: %s (%s)", e.Text, e.Problem, e.Statement)
}

// ValidateTopic checks a topic name as carried by PUBLISH or a will.
func ValidateTopic(name string) error {
	if err := checkCommon(name); err != nil {
		return err
	}
	if i := strings.IndexAny(name, "+#"); i >= 0 {
		// MQTT-4.7.1-1 (3.1.1) / MQTT-4.7.0-1 (5.0): wildcards only in topic filters, MQTT-3.3.2-2.
		return &SyntaxError{Statement: "MQTT-3.3.2-2", Text: name,
			Problem: fmt.Sprintf("wildcard %q at byte %d is not allowed in a topic name", name[i], i)}
	}
	return nil
}

// ValidateFilter checks a topic filter as carried by SUBSCRIBE or UNSUBSCRIBE, including the shared
// subscription form "$share/{ShareName}/{filter}" of 5.0.
func ValidateFilter(filter string) error {
	if err := checkCommon(filter); err != nil {
		return err
	}
	inner := filter
	if strings.HasPrefix(filter, SharePrefix) {
		_, f, err := SplitShared(filter)
		if err != nil {
			return err
		}
		inner = f
	}
	for start, i := 0, 0; start <= len(inner); start = i + 1 {
		i = strings.IndexByte(inner[start:], '/')
		if i < 0 {
			i = len(inner)
		} else {
			i += start
		}
		level := inner[start:i]
		if strings.IndexByte(level, '#') >= 0 && (level != "#" || i != len(inner)) {
			// MQTT-4.7.1-2: '#' stands alone in its level and is the last character of the filter.
			return &SyntaxError{Statement: "MQTT-4.7.1-2", Text: filter,
				Problem: fmt.Sprintf("'#' must be a whole level and the last one, found level %q", level)}
		}
		if strings.IndexByte(level, '+') >= 0 && level != "+" {
			// MQTT-4.7.1-3: '+' occupies an entire level.
			return &SyntaxError{Statement: "MQTT-4.7.1-3", Text: filter,
				Problem: fmt.Sprintf("'+' must occupy a whole level, found level %q", level)}
		}
	}
	return nil
}

// SplitShared splits "$share/{ShareName}/{filter}" into the share name and the filter. A filter
// that does not start with "$share/" is returned unchanged with an empty group.
func SplitShared(filter string) (group, inner string, err error) {
	rest, ok := strings.CutPrefix(filter, SharePrefix)
	if !ok {
		return "", filter, nil
	}
	group, inner, found := strings.Cut(rest, "/")
	if group == "" {
		// MQTT-4.8.2-1: ShareName is at least one character long.
		return "", "", &SyntaxError{Statement: "MQTT-4.8.2-1", Text: filter, Problem: "shared subscription without a share name"}
	}
	if strings.ContainsAny(group, "+#") {
		// MQTT-4.8.2-2: ShareName must not contain '/', '+' or '#'.
		return "", "", &SyntaxError{Statement: "MQTT-4.8.2-2", Text: filter,
			Problem: fmt.Sprintf("share name %q contains a wildcard", group)}
	}
	if !found || inner == "" {
		// MQTT-4.8.2-2: the ShareName is followed by '/' and a topic filter.
		return "", "", &SyntaxError{Statement: "MQTT-4.8.2-2", Text: filter, Problem: "shared subscription without a topic filter"}
	}
	return group, inner, nil
}

func checkCommon(s string) error {
	switch {
	case s == "":
		// MQTT-4.7.3-1: topic names and filters are at least one character long.
		return &SyntaxError{Statement: "MQTT-4.7.3-1", Text: s, Problem: "empty"}
	case len(s) > maxLen:
		return &SyntaxError{Statement: "MQTT-4.7.3-3", Text: s[:32] + "...",
			Problem: fmt.Sprintf("%d bytes, longer than %d", len(s), maxLen)}
	case !utf8.ValidString(s):
		return &SyntaxError{Statement: "MQTT-1.5.3-1", Text: s, Problem: "not well-formed UTF-8"}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		// MQTT-4.7.3-2: no null character.
		return &SyntaxError{Statement: "MQTT-4.7.3-2", Text: s, Problem: fmt.Sprintf("null character at byte %d", i)}
	}
	return nil
}
