package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Access is what a client asks to do with a topic.
type Access byte

// The values match mosquitto's MOSQ_ACL_READ, MOSQ_ACL_WRITE and MOSQ_ACL_SUBSCRIBE.
const (
	Read      Access = 1 // receive a message published on the topic
	Write     Access = 2 // publish on the topic
	Subscribe Access = 4 // subscribe with the topic filter
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Subscribe:
		return "subscribe"
	}
	return fmt.Sprintf("access(%d)", byte(a))
}

// ACL decides whether a client may use a topic: Read and Write take a topic name, Subscribe a
// topic filter ("$share/{group}/" is ignored: the filter after it is checked).
type ACL interface {
	Allow(id Identity, topic string, a Access) bool
}

// ACLFile is a loaded mosquitto acl_file. It implements ACL.
//
// Syntax (mosquitto.conf(5), acl_file):
//
//	# comment
//	topic [read|write|readwrite|deny] <topic>     before any user line: anonymous clients
//	user <username>                               starts the block of one user
//	topic [read|write|readwrite|deny] <topic>     in a user block: that user
//	pattern [read|write|readwrite|deny] <topic>   every client; %c = client id, %u = user name
//
// A missing access keyword means readwrite. The topic is the rest of the line and may contain
// spaces. Decisions follow mosquitto 2.0: first the client's own list (its user block, or the
// anonymous lines for a client without a user name), then the patterns; in each list a matching
// deny line refuses, otherwise a matching line granting the access allows. With patterns present,
// a client whose id or user name contains '+' or '#' is refused rather than let it widen a
// pattern. A pattern using %u does not apply to a client without a user name.
//
// Read and Write match the topic name against the ACL topic as a filter. Subscribe is stricter
// than mosquitto 2.0 (which grants every subscription and filters on delivery): the ACL topic
// must cover the whole requested filter — ACL "acs/#" covers "acs/+/gate/#", but ACL
// "acs/site/+/status" does not cover "acs/#" — and a deny line covering the whole filter refuses
// it. Deliveries are still checked one by one with Read, so a deny line that covers part of a
// granted filter keeps those messages away.
type ACLFile struct {
	path      string
	anonymous []rule
	users     map[string][]rule
	patterns  []rule
}

var _ ACL = (*ACLFile)(nil)

type rule struct {
	topic   string
	access  Access // 0 = deny
	line    int
	pattern bool // contains %c or %u
	needsU  bool // contains %u: not for clients without a user name
}

// LoadACLFile reads an acl_file. Problems are reported as "path:line: problem".
func LoadACLFile(path string) (*ACLFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load acl file: %w", err)
	}
	return ParseACL(path, data)
}

// ParseACL parses the content of an acl_file; path only names the file in errors.
func ParseACL(path string, data []byte) (*ACLFile, error) {
	f := &ACLFile{path: path, users: map[string][]rule{}}
	var user *string
	for i, raw := range splitLines(data) {
		line := strings.TrimRight(raw, " \t")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		fail := func(format string, args ...any) error {
			return &FileError{Path: path, Line: i + 1, Err: fmt.Errorf(format, args...)}
		}
		keyword, rest := splitWord(trimmed)
		switch keyword {
		case "user":
			if rest == "" {
				return nil, fail("user line without a user name")
			}
			name := rest
			user = &name
			if _, ok := f.users[name]; !ok {
				f.users[name] = nil
			}
		case "topic", "pattern":
			if rest == "" {
				return nil, fail("%s line without a topic", keyword)
			}
			access := Read | Write
			word, after := splitWord(rest)
			explicit := true
			switch word {
			case "read":
				access = Read
			case "write":
				access = Write
			case "readwrite":
				access = Read | Write
			case "deny":
				access = 0
			default:
				explicit = false
			}
			topic := rest
			if explicit {
				topic = after
				if topic == "" {
					// mosquitto would read "topic read" as topic "read" with readwrite access; a
					// forgotten topic is far more likely, so refuse it.
					return nil, fail("%s %s without a topic", keyword, word)
				}
			}
			if err := validFilter(topic); err != nil {
				return nil, fail("invalid ACL topic %q: %w", topic, err)
			}
			r := rule{topic: topic, access: access, line: i + 1}
			if keyword == "pattern" {
				r.pattern = strings.Contains(topic, "%c") || strings.Contains(topic, "%u")
				r.needsU = strings.Contains(topic, "%u")
				f.patterns = append(f.patterns, r)
			} else if user == nil {
				f.anonymous = append(f.anonymous, r)
			} else {
				f.users[*user] = append(f.users[*user], r)
			}
		default:
			return nil, fail("unknown keyword %q (want topic, pattern or user)", keyword)
		}
	}
	return f, nil
}

// splitWord returns the first blank-separated word of s and the rest with its leading blanks
// removed (mosquitto ignores repeated spaces before the topic).
func splitWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// Allow reports whether the client may use topic with access a.
func (f *ACLFile) Allow(id Identity, topic string, a Access) bool {
	if a == Subscribe {
		topic = stripShare(topic)
	}
	// The client's own list: its user block, or the anonymous lines.
	var own []rule
	if id.HasUsername {
		own = f.users[id.Username]
	} else {
		own = f.anonymous
	}
	if d := decide(own, topic, a, id, false); d != undecided {
		return d == allow
	}
	if len(f.patterns) == 0 {
		return false
	}
	// A '+' or '#' in the client id or user name would turn a pattern into a wider filter.
	if strings.ContainsAny(id.ClientID, "+#") || (id.HasUsername && strings.ContainsAny(id.Username, "+#")) {
		return false
	}
	return decide(f.patterns, topic, a, id, true) == allow
}

type decision byte

const (
	undecided decision = iota
	allow
	deny
)

// decide applies one list: a matching deny refuses, otherwise a matching grant allows.
func decide(rules []rule, topic string, a Access, id Identity, patterns bool) decision {
	granted := false
	for i := range rules {
		r := &rules[i]
		if r.access != 0 && (granted || !grants(r.access, a)) {
			continue // cannot change the outcome
		}
		if patterns && r.needsU && !id.HasUsername {
			continue
		}
		if !r.matches(topic, a, id, patterns) {
			continue
		}
		if r.access == 0 {
			return deny
		}
		granted = true
	}
	if granted {
		return allow
	}
	return undecided
}

// grants reports whether an ACL line with access have permits want; subscribing needs read.
func grants(have, want Access) bool {
	if want == Subscribe {
		return have&Read != 0
	}
	return have&want != 0
}

func (r *rule) matches(topic string, a Access, id Identity, patterns bool) bool {
	acl := r.topic
	if patterns && r.pattern {
		var buf [256]byte
		b := expand(buf[:0], r.topic, id)
		return covers(b, topic)
	}
	return covers(acl, topic)
}

// expand substitutes %c and %u in a pattern, left to right like mosquitto.
func expand(dst []byte, pattern string, id Identity) []byte {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '%' && i+1 < len(pattern) {
			switch {
			case pattern[i+1] == 'c':
				dst = append(dst, id.ClientID...)
				i++
				continue
			case pattern[i+1] == 'u' && id.HasUsername:
				dst = append(dst, id.Username...)
				i++
				continue
			}
		}
		dst = append(dst, pattern[i])
	}
	return dst
}

// covers reports whether every topic matched by req (a topic name or a filter) is matched by the
// filter acl, with the wildcard rules of section 4.7: '+' is one level, '#' the parent level and
// everything below, and a wildcard at the first level does not match a '$' topic (MQTT-4.7.2-1).
// For a topic name this is plain matching.
func covers[S string | []byte](acl S, req string) bool {
	ai, ri := 0, 0
	for first := true; ; first = false {
		alvl, anext, alast := cutLevel(acl, ai)
		rlvl, rnext, rlast := cutLevel(req, ri)
		dollarReq := first && strings.HasPrefix(rlvl, "$")
		switch {
		case len(alvl) == 1 && alvl[0] == '#' && alast:
			// Covers this level and everything below, except '$' topics from the first level.
			return !dollarReq
		case len(alvl) == 1 && alvl[0] == '+':
			if rlvl == "#" || dollarReq {
				return false
			}
		case rlvl == "+" || rlvl == "#":
			return false // a literal ACL level cannot cover a wildcard
		case string(alvl) != rlvl:
			return false
		}
		switch {
		case alast && rlast:
			return true
		case rlast:
			// req ends here; acl goes on: only "x/#" also matches "x" itself.
			tail := acl[anext:]
			return len(tail) == 1 && tail[0] == '#'
		case alast:
			return false
		}
		ai, ri = anext, rnext
	}
}

// cutLevel is cut for strings and byte slices; string(alvl) != rlvl above does not allocate.
func cutLevel[S string | []byte](s S, start int) (level S, next int, last bool) {
	for i := start; i < len(s); i++ {
		if s[i] == '/' {
			return s[start:i], i + 1, false
		}
	}
	return s[start:], len(s), true
}

func stripShare(filter string) string {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return filter
	}
	if _, inner, found := strings.Cut(rest, "/"); found {
		return inner
	}
	return filter
}

// validFilter checks an ACL topic with the topic-filter rules of section 4.7.
func validFilter(f string) error {
	if f == "" {
		return errors.New("empty topic (MQTT-4.7.3-1)")
	}
	if strings.IndexByte(f, 0) >= 0 {
		return errors.New("null character (MQTT-4.7.3-2)")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New("'#' must be a whole level and the last one (MQTT-4.7.1-2 in 3.1.1, MQTT-4.7.1-1 in 5.0)")
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New("'+' must occupy a whole level (MQTT-4.7.1-3 in 3.1.1, MQTT-4.7.1-2 in 5.0)")
		}
	}
	return nil
}
