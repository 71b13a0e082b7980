package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Paths lists the files WriteDir wrote.
type Paths struct {
	Dir   string
	HTML  string   // the self-contained page for every record
	JUnit string   // one JUnit document for every record
	JSON  []string // one JSON record per run, in the order given
}

// WriteDir writes the records into dir (created if needed): report.html and junit.xml for all of
// them, and one <name>.json per record. Names are made safe for file systems; two records with the
// same name get numbered files rather than overwriting each other.
func WriteDir(dir, title string, recs ...*Record) (Paths, error) {
	p := Paths{Dir: dir, HTML: filepath.Join(dir, "report.html"), JUnit: filepath.Join(dir, "junit.xml")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, fmt.Errorf("report dir: %w", err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, title, recs...); err != nil {
		return p, err
	}
	if err := os.WriteFile(p.HTML, b.Bytes(), 0o644); err != nil {
		return p, fmt.Errorf("write html report: %w", err)
	}
	b.Reset()
	if err := WriteJUnit(&b, title, recs...); err != nil {
		return p, err
	}
	if err := os.WriteFile(p.JUnit, b.Bytes(), 0o644); err != nil {
		return p, fmt.Errorf("write junit: %w", err)
	}
	used := map[string]bool{"report": true, "junit": true}
	for _, r := range recs {
		base := Slug(r.Name)
		name := base
		for n := 2; used[name]; n++ {
			name = base + "-" + strconv.Itoa(n)
		}
		used[name] = true
		b.Reset()
		if err := WriteJSON(&b, r); err != nil {
			return p, err
		}
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return p, fmt.Errorf("write json record: %w", err)
		}
		p.JSON = append(p.JSON, path)
	}
	return p, nil
}

// WriteJUnitFile writes the records as JUnit XML to one file (gatehouse run --junit FILE).
func WriteJUnitFile(path, title string, recs ...*Record) error {
	var b bytes.Buffer
	if err := WriteJUnit(&b, title, recs...); err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write junit: %w", err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// Slug turns a name into a file- and anchor-safe word: lower case letters, digits, '-', '_' and '.'.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.'
		if ok {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-.")
	if s == "" {
		return "run"
	}
	return s
}
