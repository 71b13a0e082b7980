package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// ValidFilter checks an MQTT topic filter: not empty, valid UTF-8 without NUL, '#' only as the
// whole last level and '+' only as a whole level (MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.7.3-1,
// MQTT-4.7.3-2).
func ValidFilter(f string) error {
	switch {
	case f == "":
		return errors.New("empty (MQTT-4.7.3-1)")
	case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
		return errors.New("not valid UTF-8 or contains NUL (MQTT-4.7.3-2)")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New("'#' must be a whole level and the last one (MQTT-4.7.1-2)")
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New("'+' must occupy a whole level (MQTT-4.7.1-3)")
		}
	}
	return nil
}

// MatchTopic reports whether a topic name matches a filter. Topics starting with '$' are not
// matched by a filter starting with a wildcard (MQTT-4.7.2-1).
func MatchTopic(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		tl, trest, tmore := strings.Cut(topic, "/")
		switch {
		case fl == "#":
			return true
		case fl != "+" && fl != tl:
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" (the parent level).
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// SubsetMatch reports whether got (decoded JSON) contains want (decoded YAML): every key of a
// wanted object must be present with a matching value, a wanted list must equal the got list
// element by element (each element matched as a subset), and scalars must be equal (numbers by
// value). The second result explains the first difference, for failure messages.
func SubsetMatch(want, got any) (bool, string) {
	return subset(want, got, "")
}

func subset(want, got any, path string) (bool, string) {
	at := func() string {
		if path == "" {
			return "payload"
		}
		return path
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false, fmt.Sprintf("%s is %s, want an object", at(), compactJSON(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, present := g[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			if !present {
				return false, fmt.Sprintf("%s is missing", p)
			}
			if ok, why := subset(w[k], gv, p); !ok {
				return false, why
			}
		}
		return true, ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false, fmt.Sprintf("%s is %s, want %s", at(), compactJSON(got), compactJSON(want))
		}
		for i := range w {
			if ok, why := subset(w[i], g[i], fmt.Sprintf("%s[%d]", at(), i)); !ok {
				return false, why
			}
		}
		return true, ""
	case float64:
		if g, ok := got.(float64); ok && (g == w || math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))) {
			return true, ""
		}
	default:
		if want == got {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%s is %s, want %s", at(), compactJSON(got), compactJSON(want))
}

// DecodePayload decodes a message payload as JSON; ok is false when it is not JSON, in which case
// only a string want can match it (compared with the raw text).
func DecodePayload(p []byte) (any, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(p))
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}

// PayloadMatches applies a Match's payload constraint to raw payload bytes.
func (m Match) PayloadMatches(p []byte) (bool, string) {
	if !m.HasPayload {
		return true, ""
	}
	got, ok := DecodePayload(p)
	if !ok {
		if s, isStr := m.Payload.(string); isStr && s == string(p) {
			return true, ""
		}
		return false, fmt.Sprintf("payload %s is not JSON", quoteShort(p))
	}
	return SubsetMatch(m.Payload, got)
}

// compactJSON renders a decoded value in one line for messages.
func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}

// quoteShort renders a payload for a message: JSON and text as they are, binary as a size, long
// payloads cut.
func quoteShort(p []byte) string {
	const max = 160
	if !utf8.Valid(p) {
		return fmt.Sprintf("<%d bytes of binary>", len(p))
	}
	s := string(p)
	if len(s) > max {
		s = s[:max] + fmt.Sprintf("…(%d bytes)", len(p))
	}
	return s
}
