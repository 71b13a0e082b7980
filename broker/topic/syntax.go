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

// SyntaxError is a topic name or topic filter that breaks a rule of the MQTT specification. The
// rule's statement ID differs between versions for some rules, so both are given: V311 for
// MQTT 3.1.1, V5 for MQTT 5.0 ("" where the version has no such rule, e.g. shared subscriptions
// in 3.1.1).
type SyntaxError struct {
	V311, V5 string
	Text     string // the topic name or filter as given
	Problem  string
}

// Statement returns the statement ID for MQTT 5.0 (v5) or 3.1.1, falling back to the other
// version's ID when the rule exists only there.
func (e *SyntaxError) Statement(v5 bool) string {
	if v5 && e.V5 != "" || e.V311 == "" {
		return e.V5
	}
	return e.V311
}

func (e *SyntaxError) Error() string {
	var ids string
	switch {
	case e.V311 == e.V5:
		ids = e.V5
	case e.V311 == "":
		ids = e.V5 + " in 5.0"
	case e.V5 == "":
		ids = e.V311 + " in 3.1.1"
	default:
		ids = e.V311 + " in 3.1.1, " + e.V5 + " in 5.0"
	}
	return fmt.Sprintf("topic %q: %s (%s)", e.Text, e.Problem, ids)
}

func syntaxError(v311, v5, text, problem string) *SyntaxError {
	return &SyntaxError{V311: v311, V5: v5, Text: text, Problem: problem}
}

// ValidateTopic checks a topic name as carried by PUBLISH or a will.
func ValidateTopic(name string) error {
	if err := checkCommon(name); err != nil {
		return err
	}
	if i := strings.IndexAny(name, "+#"); i >= 0 {
		// MQTT-3.3.2-2 (both versions; also MQTT-4.7.1-1 in 3.1.1, MQTT-4.7.0-1 in 5.0).
		return syntaxError("MQTT-3.3.2-2", "MQTT-3.3.2-2", name,
			fmt.Sprintf("wildcard %q at byte %d is not allowed in a topic name", name[i], i))
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
			// '#' stands alone in its level and is the last character of the filter.
			return syntaxError("MQTT-4.7.1-2", "MQTT-4.7.1-1", filter,
				fmt.Sprintf("'#' must be a whole level and the last one, found level %q", level))
		}
		if strings.IndexByte(level, '+') >= 0 && level != "+" {
			// '+' occupies an entire level.
			return syntaxError("MQTT-4.7.1-3", "MQTT-4.7.1-2", filter,
				fmt.Sprintf("'+' must occupy a whole level, found level %q", level))
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
		return "", "", syntaxError("", "MQTT-4.8.2-1", filter, "shared subscription without a share name")
	}
	if strings.ContainsAny(group, "+#") {
		// MQTT-4.8.2-2: ShareName must not contain '/', '+' or '#'.
		return "", "", syntaxError("", "MQTT-4.8.2-2", filter, fmt.Sprintf("share name %q contains a wildcard", group))
	}
	if !found || inner == "" {
		// MQTT-4.8.2-2: the ShareName is followed by '/' and a topic filter.
		return "", "", syntaxError("", "MQTT-4.8.2-2", filter, "shared subscription without a topic filter")
	}
	return group, inner, nil
}

func checkCommon(s string) error {
	switch {
	case s == "":
		// MQTT-4.7.3-1: topic names and filters are at least one character long.
		return syntaxError("MQTT-4.7.3-1", "MQTT-4.7.3-1", s, "empty")
	case len(s) > maxLen:
		return syntaxError("MQTT-4.7.3-3", "MQTT-4.7.3-3", s[:32]+"...", fmt.Sprintf("%d bytes, longer than %d", len(s), maxLen))
	case !utf8.ValidString(s):
		return syntaxError("MQTT-1.5.3-1", "MQTT-1.5.4-1", s, "not well-formed UTF-8")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		// MQTT-4.7.3-2: no null character.
		return syntaxError("MQTT-4.7.3-2", "MQTT-4.7.3-2", s, fmt.Sprintf("null character at byte %d", i))
	}
	return nil
}
