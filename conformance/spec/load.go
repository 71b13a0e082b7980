package spec

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

//go:embed mqtt-3.1.1.yaml
var v311YAML []byte

//go:embed mqtt-5.0.yaml
var v5YAML []byte

// source is an embedded catalogue file and the name errors give it.
type source struct {
	name string
	data []byte
}

var files = map[string]source{
	Version311: {"conformance/spec/mqtt-3.1.1.yaml", v311YAML},
	Version5:   {"conformance/spec/mqtt-5.0.yaml", v5YAML},
}

// Error is a defect in a catalogue file: the file, the line and column (both from 1) where it was
// found, and what is wrong there.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error formats the defect as file:line:column: message.
func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg) }

// Limits that keep summaries summaries.
const maxSummary = 320

// pos is a place in a catalogue file; the zero pos means "absent from the file".
type pos struct{ line, col int }

func tokenPos(tk *token.Token) pos {
	if tk == nil || tk.Position == nil {
		return pos{1, 1}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// placed is an error that knows where it happened; UnmarshalYAML methods return it because the
// decoder passes their errors through without a position.
type placed struct {
	at  pos
	msg string
}

func (p *placed) Error() string { return p.msg }

// text is a scalar that must be a YAML string, with its place. Requiring a string node keeps an
// unquoted section such as 3.10 from being read as the number 3.1.
type text struct {
	s  string
	at pos
}

func (t *text) UnmarshalYAML(n ast.Node) error {
	t.at = tokenPos(n.GetToken())
	switch v := n.(type) {
	case *ast.StringNode:
		t.s = v.Value
		return nil
	case *ast.LiteralNode:
		t.s = v.Value.Value
		return nil
	}
	return &placed{t.at, fmt.Sprintf("want a string, found %s (quote the value)", kind(n))}
}

// texts is a sequence of strings, with the place of each.
type texts []text

func (ts *texts) UnmarshalYAML(n ast.Node) error {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return &placed{tokenPos(n.GetToken()), fmt.Sprintf("want a list of strings, found %s", kind(n))}
	}
	out := make(texts, len(seq.Values))
	for i, v := range seq.Values {
		if err := out[i].UnmarshalYAML(v); err != nil {
			return err
		}
	}
	*ts = out
	return nil
}

// startPos is where a node begins in the file: for a mapping, its first key (the decoder's token
// for a mapping is the first colon).
func startPos(n ast.Node) pos {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return tokenPos(m.Values[0].Key.GetToken())
		}
	case *ast.MappingValueNode:
		return tokenPos(m.Key.GetToken())
	}
	return tokenPos(n.GetToken())
}

func kind(n ast.Node) string {
	switch n.Type() {
	case ast.IntegerType, ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.NullType:
		return "nothing (null)"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	}
	return strings.ToLower(n.Type().String())
}

type rawFile struct {
	Version    text           `yaml:"version"`
	Source     text           `yaml:"source"`
	Statements []rawStatement `yaml:"statements"`
}

type rawStatement struct {
	at pos
	rawFields
}

type rawFields struct {
	ID        text  `yaml:"id"`
	Section   text  `yaml:"section"`
	Level     text  `yaml:"level"`
	Binds     text  `yaml:"binds"`
	Summary   text  `yaml:"summary"`
	Testable  text  `yaml:"testable"`
	WhyNot    text  `yaml:"why_not"`
	PrintedAs texts `yaml:"printed_as"`
}

func (s *rawStatement) UnmarshalYAML(n ast.Node) error {
	s.at = startPos(n)
	if n.Type() != ast.MappingType && n.Type() != ast.MappingValueType {
		return &placed{s.at, fmt.Sprintf("want a statement (a mapping with id, section, level, ...), found %s", kind(n))}
	}
	return yaml.NodeToValue(n, &s.rawFields, yaml.Strict())
}

// parseFile parses an embedded catalogue file of the given version.
func parseFile(f source, version string) ([]Statement, error) { return parse(f.name, f.data, version) }

// parse decodes and checks one catalogue file. Decoding is strict: an unknown key, a value of the
// wrong type or a YAML syntax error is an error naming file:line:column. The checks that follow
// report every defect they find, each with its place.
func parse(name string, data []byte, version string) ([]Statement, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	if len(file.Docs) != 1 || file.Docs[0].Body == nil {
		return nil, &Error{File: name, Line: 1, Column: 1,
			Msg: fmt.Sprintf("want one YAML document holding the catalogue, found %d", len(file.Docs))}
	}
	var raw rawFile
	if err := yaml.NodeToValue(file.Docs[0].Body, &raw, yaml.Strict()); err != nil {
		return nil, yamlError(name, err)
	}
	c := checker{file: name, version: version, ids: map[string]pos{}}
	list := c.check(&raw)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return list, nil
}

// yamlError places a decoder error at its file:line:column.
func yamlError(name string, err error) error {
	var p *placed
	if errors.As(err, &p) {
		return &Error{File: name, Line: p.at.line, Column: p.at.col, Msg: p.msg}
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		at := tokenPos(ye.GetToken())
		return &Error{File: name, Line: at.line, Column: at.col, Msg: ye.GetMessage()}
	}
	return &Error{File: name, Line: 1, Column: 1, Msg: err.Error()}
}

type checker struct {
	file    string
	version string
	ids     map[string]pos // every ID and printed spelling seen so far
	errs    []error
}

func (c *checker) errorf(at pos, format string, args ...any) {
	if at == (pos{}) {
		at = pos{1, 1}
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: at.line, Column: at.col, Msg: fmt.Sprintf(format, args...)})
}

var (
	levels   = []string{LevelMust, LevelMustNot, LevelShould, LevelShouldNot, LevelMay}
	binds    = []string{BindsServer, BindsClient, BindsBoth, BindsSender, BindsReceiver}
	testable = []string{SideServer, SideClient, SideBoth, SideNone}
)

func (c *checker) check(raw *rawFile) []Statement {
	switch {
	case raw.Version.at == (pos{}):
		c.errorf(pos{1, 1}, "missing version (want %q)", c.version)
	case raw.Version.s != c.version:
		c.errorf(raw.Version.at, "version %q, want %q", raw.Version.s, c.version)
	}
	if strings.TrimSpace(raw.Source.s) == "" {
		c.errorf(raw.Source.at, "missing source: say which document and appendix the IDs come from")
	}
	if len(raw.Statements) == 0 {
		c.errorf(pos{1, 1}, "no statements")
	}
	out := make([]Statement, 0, len(raw.Statements))
	var prev ID
	for i := range raw.Statements {
		s := c.statement(&raw.Statements[i])
		if prev != "" && s.ID != "" && !Less(prev, s.ID) {
			c.errorf(raw.Statements[i].ID.at, "%s comes after %s: keep statements in specification order", s.ID, prev)
		}
		if s.ID != "" {
			prev = s.ID
		}
		out = append(out, s)
	}
	return out
}

func (c *checker) statement(r *rawStatement) Statement {
	id := r.ID.s
	what := "statement"
	switch {
	case r.ID.at == (pos{}):
		c.errorf(r.at, "statement without an id")
	case !wellFormed(id):
		c.errorf(r.ID.at, "id %q is not of the form MQTT-a.b.c-n", id)
		id = ""
	default:
		what = id
		c.unique(id, r.ID.at)
	}
	c.required(r, r.Section, what, "section")
	if r.Section.s != "" && !sectionNumber(r.Section.s) {
		c.errorf(r.Section.at, "%s: section %q is not a section number such as \"3.3.2.1\"", what, r.Section.s)
	}
	c.oneOf(r, r.Level, what, "level", levels)
	c.oneOf(r, r.Binds, what, "binds", binds)
	c.oneOf(r, r.Testable, what, "testable", testable)
	c.required(r, r.Summary, what, "summary")
	switch sum := r.Summary.s; {
	case strings.ContainsAny(sum, "\n\r"):
		c.errorf(r.Summary.at, "%s: summary runs over several lines; keep it to one or two sentences on one line", what)
	case len(sum) > maxSummary:
		c.errorf(r.Summary.at, "%s: summary is %d bytes, more than %d; keep it to one or two sentences", what, len(sum), maxSummary)
	}
	c.whyNot(r, what)
	var printed []string
	for _, p := range r.PrintedAs {
		switch {
		case !strings.HasPrefix(p.s, "MQTT-"):
			c.errorf(p.at, "%s: printed_as %q does not start with MQTT-", what, p.s)
		case p.s == id:
			c.errorf(p.at, "%s: printed_as repeats the id", what)
		default:
			c.unique(p.s, p.at)
			printed = append(printed, p.s)
		}
	}
	return Statement{
		ID:        ID(id),
		Version:   c.version,
		Section:   r.Section.s,
		Level:     r.Level.s,
		Binds:     r.Binds.s,
		Summary:   r.Summary.s,
		Testable:  r.Testable.s,
		WhyNot:    r.WhyNot.s,
		PrintedAs: printed,
	}
}

func (c *checker) unique(id string, at pos) {
	if first, dup := c.ids[id]; dup {
		c.errorf(at, "%s is listed twice (first at line %d)", id, first.line)
		return
	}
	c.ids[id] = at
}

func (c *checker) required(r *rawStatement, t text, what, key string) bool {
	if strings.TrimSpace(t.s) == "" {
		at := t.at
		if at == (pos{}) {
			at = r.at
		}
		c.errorf(at, "%s: missing %s", what, key)
		return false
	}
	return true
}

func (c *checker) oneOf(r *rawStatement, t text, what, key string, allowed []string) {
	if !c.required(r, t, what, key) {
		return
	}
	for _, a := range allowed {
		if t.s == a {
			return
		}
	}
	c.errorf(t.at, "%s: %s %q is not one of %s", what, key, t.s, strings.Join(allowed, ", "))
}

// whyNot enforces that why_not is given exactly when a side the statement binds cannot observe it.
func (c *checker) whyNot(r *rawStatement, what string) {
	b, t := r.Binds.s, r.Testable.s
	if b == "" || t == "" {
		return
	}
	full := covered(b, t)
	switch given := strings.TrimSpace(r.WhyNot.s) != ""; {
	case !full && !given:
		c.errorf(r.Testable.at, "%s: binds %s but is testable from %s: say why in why_not", what, b, t)
	case full && given:
		c.errorf(r.WhyNot.at, "%s: why_not given, but every side it binds (%s) can observe it (testable: %s)", what, b, t)
	}
}

// covered reports whether testable side t can observe every party that binds b names.
func covered(b, t string) bool {
	switch t {
	case SideBoth:
		return true
	case SideNone:
		return false
	}
	return b == t
}

// sectionNumber reports whether s is a section number: numbers without leading zeros separated by
// dots, e.g. "6" or "3.1.2.11.4".
func sectionNumber(s string) bool {
	for _, p := range strings.Split(s, ".") {
		if !number(p) {
			return false
		}
	}
	return s != "0"
}
