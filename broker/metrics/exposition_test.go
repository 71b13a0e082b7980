package metrics_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// scrape is one parsed exposition: series ("name" or `name{label="v"}`) to value.
type scrape map[string]float64

var (
	metricName = regexp.MustCompile(`^gatehouse_broker_[a-z0-9_]+$`)
	// standardName: the families of client_golang's Go runtime and process collectors.
	standardName = regexp.MustCompile(`^(go|process)_[a-z0-9_]+$`)
	sampleLine   = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+)$`)
)

// parseExposition reads the Prometheus text format strictly, as a scraper would reject it: every
// series belongs to a family announced by HELP then TYPE, once; counters end in _total and gauges
// do not; names carry the gatehouse_broker_ prefix, except the go_ and process_ families of the
// standard collectors, which may also be summaries (name{quantile=...}, name_sum, name_count); no
// series appears twice; values are numbers.
func parseExposition(body string) (scrape, error) {
	out := scrape{}
	types := map[string]string{}
	helped := map[string]bool{}
	if !strings.HasSuffix(body, "\n") {
		return nil, fmt.Errorf("exposition does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		at := fmt.Sprintf("line %d %q", i+1, line)
		switch {
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || f[3] == "" {
				return nil, fmt.Errorf("%s: HELP without text", at)
			}
			if helped[f[2]] {
				return nil, fmt.Errorf("%s: second HELP for %s", at, f[2])
			}
			helped[f[2]] = true
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 {
				return nil, fmt.Errorf("%s: malformed TYPE", at)
			}
			name, typ := f[2], f[3]
			if !helped[name] {
				return nil, fmt.Errorf("%s: TYPE before HELP", at)
			}
			if _, dup := types[name]; dup {
				return nil, fmt.Errorf("%s: second TYPE for %s", at, name)
			}
			standard := standardName.MatchString(name)
			if !metricName.MatchString(name) && !standard {
				return nil, fmt.Errorf("%s: name without the gatehouse_broker_ prefix", at)
			}
			switch {
			case typ == "counter" && !strings.HasSuffix(name, "_total"):
				return nil, fmt.Errorf("%s: a counter's name ends in _total", at)
			case typ == "gauge" && strings.HasSuffix(name, "_total"):
				return nil, fmt.Errorf("%s: a gauge named like a counter", at)
			case typ == "summary" && standard:
			case typ != "counter" && typ != "gauge":
				return nil, fmt.Errorf("%s: type %q (only counters and gauges are expected)", at, typ)
			}
			types[name] = typ
		case strings.HasPrefix(line, "#") || line == "":
			return nil, fmt.Errorf("%s: unexpected line", at)
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s: not a sample line", at)
			}
			if _, ok := types[familyOf(m[1], types)]; !ok {
				return nil, fmt.Errorf("%s: sample before its TYPE", at)
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value: %w", at, err)
			}
			if types[familyOf(m[1], types)] == "counter" && v < 0 {
				return nil, fmt.Errorf("%s: negative counter", at)
			}
			key := m[1] + m[2]
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("%s: series %s twice", at, key)
			}
			out[key] = v
		}
	}
	for name := range types {
		found := false
		for key := range out {
			if familyOf(strings.SplitN(key, "{", 2)[0], types) == name {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("family %s has no sample", name)
		}
	}
	return out, nil
}

// familyOf returns the family a sample name belongs to: itself, or the summary it is the _sum or
// _count of.
func familyOf(sample string, types map[string]string) string {
	for _, suffix := range []string{"_sum", "_count"} {
		if base, ok := strings.CutSuffix(sample, suffix); ok && types[base] == "summary" {
			return base
		}
	}
	return sample
}
