package fleet

import (
	"fmt"
	"strconv"
	"strings"
)

// ExpandID fills a device ID template: {kind}, {site}, {n} and {n:0W} (n zero-padded to W digits).
func ExpandID(tmpl, kind, site string, n int) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("id template %q: unclosed {", tmpl)
		}
		field := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		switch {
		case field == "kind":
			b.WriteString(kind)
		case field == "site":
			b.WriteString(site)
		case field == "n":
			b.WriteString(strconv.Itoa(n))
		case strings.HasPrefix(field, "n:0"):
			w, err := strconv.Atoi(field[3:])
			if err != nil || w < 1 || w > 12 {
				return "", fmt.Errorf("id template %q: {%s}: want {n:0W} with W from 1 to 12", tmpl, field)
			}
			fmt.Fprintf(&b, "%0*d", w, n)
		default:
			return "", fmt.Errorf("id template %q: unknown field {%s} (want {kind}, {site}, {n} or {n:0W})", tmpl, field)
		}
	}
	id := b.String()
	if id == "" || strings.ContainsAny(id, "/+#") {
		return "", fmt.Errorf("id template %q gives %q: an id must be non-empty without '/', '+' or '#'", tmpl, id)
	}
	return id, nil
}
