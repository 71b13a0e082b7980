package scenario

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Parse reads files people write: whatever the input, it returns a scenario or errors that each
// start with file:line:column, and never panics.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../../scenarios/*.yaml", "../../fixtures/scenarios/bad/*.yaml", "../../fixtures/scenarios/broken/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(sample))
	f.Add([]byte("name: a\nfleet: [{kind: gate, id: \"{n:099}\", count: 3}]\nsteps: [{at: 1s, expect: {order: [a, *x]}}]\n"))
	pos := regexp.MustCompile(`^f\.yaml:\d+:\d+: .`)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err == nil {
			if s.Name == "" || len(s.Steps) == 0 || len(s.Devices()) == 0 {
				t.Fatalf("an accepted scenario lacks a name, steps or devices: %+v", s)
			}
			Plan(s, 1)
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !pos.MatchString(line) {
				t.Fatalf("error line without file:line:column: %q", line)
			}
		}
	})
}
