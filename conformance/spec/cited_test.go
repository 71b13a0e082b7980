package spec

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// citation is a string literal in Go source that names a statement.
type citation struct {
	where string // file:line
	id    ID
}

// idLike matches a whole statement ID: MQTT- and four numbers joined by dots or dashes, which
// takes in the misprints the standards print (MQTT-3.1.2.7, MQTT-3-8.3-4) and leaves out prefixes
// such as "MQTT-1.5" that code compares rules against.
var idLike = regexp.MustCompile(`^MQTT-[0-9]+([.-][0-9]+){3}$`)

// citedIDs returns every string literal in the .go files of dir (test files included, no
// subdirectories) that is shaped like a statement ID. The codec's errors carry such literals as
// Error.Rule, and its tests expect them.
func citedIDs(dir string) ([]citation, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []citation
	for _, p := range paths {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !idLike.MatchString(s) {
				return true
			}
			pos := fset.Position(lit.Pos())
			out = append(out, citation{fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line), ID(s)})
			return true
		})
	}
	return out, nil
}

// unknown returns the citations that name no statement of either version (a misprint the
// standard itself prints, such as MQTT-3-8.3-4, counts as known).
func unknown(cites []citation) []citation {
	var out []citation
	for _, c := range cites {
		_, in311 := Lookup(Version311, c.id)
		_, in5 := Lookup(Version5, c.id)
		if !in311 && !in5 {
			out = append(out, c)
		}
	}
	return out
}

// Every statement ID the packet codec names in its errors, and its tests expect, exists in the
// catalogue. A rule string is not tied to a version in the source, so it must exist in 3.1.1 or
// in 5.0.
func TestPacketCitesCataloguedStatements(t *testing.T) {
	dir := filepath.Join("..", "..", "packet")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		t.Skip("packet/ is not in this tree")
	}
	cites, err := citedIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cites) == 0 {
		t.Skip("packet/ cites no statement ID yet")
	}
	for _, c := range unknown(cites) {
		t.Errorf("packet/%s: %s is not a statement of MQTT 3.1.1 or 5.0", c.where, c.id)
	}
	t.Logf("%d statement IDs cited in packet/", len(cites))
}

// The scan finds ID literals, ignores other strings and comments, and flags exactly the IDs the
// catalogue does not know.
func TestCitedIDsScan(t *testing.T) {
	dir := t.TempDir()
	src := `package x

// [MQTT-9.9.9-1] in a comment is not a citation.
var rules = []string{
	"MQTT-3.3.2-2",
	"MQTT-3-8.3-4",
	"MQTT-3.1.2-30",
	"MQTT-9.9.9-9",
	"§2.2.3",
	"MQTT-",
	"MQTT-x",
	"MQTT-1.5",
	"MQTT-3.1.2.7",
}

func f() string { return ` + "`MQTT-3.3.5-1`" + ` }
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(`"MQTT-8.8.8-8"`), 0o600); err != nil {
		t.Fatal(err)
	}
	cites, err := citedIDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cites); got != "[{x.go:5 MQTT-3.3.2-2} {x.go:6 MQTT-3-8.3-4} {x.go:7 MQTT-3.1.2-30} {x.go:8 MQTT-9.9.9-9} {x.go:13 MQTT-3.1.2.7} {x.go:16 MQTT-3.3.5-1}]" {
		t.Errorf("citations %s", got)
	}
	if got := fmt.Sprint(unknown(cites)); got != "[{x.go:8 MQTT-9.9.9-9}]" {
		t.Errorf("unknown %s, want only MQTT-9.9.9-9", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte("package x\nvar = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := citedIDs(dir); err == nil {
		t.Errorf("no error for a file that does not parse")
	}
}
