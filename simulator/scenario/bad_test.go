package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is where fixtures/ and scenarios/ live, seen from this package.
const repoRoot = "../.."

// Every file in fixtures/scenarios/bad states, in "# want:" lines, the exact errors Parse must
// report for it — file:line:column and message, in file order, nothing more.
func TestBadScenarioFilesReportExactPositions(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "fixtures/scenarios/bad/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("want at least 10 bad scenario files, found %d", len(files))
	}
	for _, path := range files {
		name := "fixtures/scenarios/bad/" + filepath.Base(path)
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s has no \"# want:\" line", name)
			}
			_, err = Parse(name, data)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse(%s) = %v, want errors %q", name, err, want)
			}
			got := strings.Split(errs.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("errors differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
