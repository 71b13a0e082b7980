package packet

import (
	"strings"
	"unicode/utf8"
)

// ValidUTF8String checks the rules every MQTT string obeys: well-formed UTF-8 without surrogates
// ([MQTT-1.5.3-1] in 3.1.1, [MQTT-1.5.4-1] in 5.0) and no U+0000 ([MQTT-1.5.3-2], [MQTT-1.5.4-2]).
// Both are malformed packets. The error's Packet is 0; Validate fills in the packet and field.
func ValidUTF8String(v Version, s string) error {
	if e := utf8Error(v, s); e != nil {
		return e
	}
	return nil
}

func utf8Error(v Version, s string) *Error {
	if strings.IndexByte(s, 0) >= 0 {
		return &Error{Code: MalformedPacket, Rule: pick(v, "MQTT-1.5.3-2", "MQTT-1.5.4-2"), Offset: -1,
			Reason: "U+0000 in string"}
	}
	// utf8.ValidString rejects overlong forms and the surrogates U+D800..U+DFFF.
	if !utf8.ValidString(s) {
		return &Error{Code: MalformedPacket, Rule: pick(v, "MQTT-1.5.3-1", "MQTT-1.5.4-1"), Offset: -1,
			Reason: "ill-formed UTF-8"}
	}
	return nil
}

// ValidTopicName checks a topic name as a PUBLISH carries it: a valid string, at least one
// character ([MQTT-4.7.3-1]) and no wildcard ([MQTT-3.3.2-2]). A 5.0 PUBLISH may have an empty
// topic name when it carries a topic alias; Validate allows that, this function does not.
func ValidTopicName(v Version, s string) error {
	if e := topicNameError(v, s, "MQTT-3.3.2-2"); e != nil {
		return e
	}
	return nil
}

func topicNameError(v Version, s string, wildcardRule string) *Error {
	if s == "" {
		return &Error{Code: TopicNameInvalid, Rule: "MQTT-4.7.3-1", Offset: -1, Reason: "empty topic name"}
	}
	if len(s) > 65535 {
		return &Error{Code: TopicNameInvalid, Rule: "MQTT-4.7.3-3", Offset: -1, Reason: "topic name over 65535 bytes"}
	}
	if e := utf8Error(v, s); e != nil {
		return e
	}
	if i := strings.IndexAny(s, "+#"); i >= 0 {
		return &Error{Code: TopicNameInvalid, Rule: wildcardRule, Offset: -1,
			Reason: "wildcard '" + s[i:i+1] + "' in topic name"}
	}
	return nil
}

// ValidTopicFilter checks a topic filter as SUBSCRIBE and UNSUBSCRIBE carry it: a valid string of
// at least one character ([MQTT-4.7.3-1]), '#' only as the whole last level ([MQTT-4.7.1-2] in
// 3.1.1, [MQTT-4.7.1-1] in 5.0) and '+' only as a whole level ([MQTT-4.7.1-3] in 3.1.1,
// [MQTT-4.7.1-2] in 5.0). In 5.0 a filter starting "$share/" must have a
// non-empty share name without '/', '+' or '#', followed by '/' and a filter ([MQTT-4.8.2-1],
// [MQTT-4.8.2-2]).
func ValidTopicFilter(v Version, s string) error {
	if e := topicFilterError(v, s); e != nil {
		return e
	}
	return nil
}

func topicFilterError(v Version, s string) *Error {
	bad := func(rule, reason string) *Error {
		return &Error{Code: TopicFilterInvalid, Rule: rule, Offset: -1, Reason: reason}
	}
	if s == "" {
		return bad("MQTT-4.7.3-1", "empty topic filter")
	}
	if len(s) > 65535 {
		return bad("MQTT-4.7.3-3", "topic filter over 65535 bytes")
	}
	if e := utf8Error(v, s); e != nil {
		return e
	}
	if v == V5 {
		if rest, ok := strings.CutPrefix(s, "$share/"); ok {
			i := strings.IndexByte(rest, '/')
			switch {
			case i == 0 || rest == "":
				return bad("MQTT-4.8.2-1", "empty share name")
			case i < 0:
				return bad("MQTT-4.8.2-2", "share name not followed by '/' and a topic filter")
			case strings.ContainsAny(rest[:i], "+#"):
				return bad("MQTT-4.8.2-2", "share name contains a wildcard")
			case i == len(rest)-1:
				return bad("MQTT-4.8.2-2", "no topic filter after the share name")
			}
			s = rest[i+1:]
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '#':
			if i != len(s)-1 {
				return bad(pick(v, "MQTT-4.7.1-2", "MQTT-4.7.1-1"), "'#' is not the last character")
			}
			if i > 0 && s[i-1] != '/' {
				return bad(pick(v, "MQTT-4.7.1-2", "MQTT-4.7.1-1"), "'#' does not occupy a whole level")
			}
		case '+':
			if (i > 0 && s[i-1] != '/') || (i < len(s)-1 && s[i+1] != '/') {
				return bad(pick(v, "MQTT-4.7.1-3", "MQTT-4.7.1-2"), "'+' does not occupy a whole level")
			}
		}
	}
	return nil
}

// IsSharedFilter reports whether f is a 5.0 shared subscription filter ("$share/group/filter").
func IsSharedFilter(f string) bool { return strings.HasPrefix(f, "$share/") }
