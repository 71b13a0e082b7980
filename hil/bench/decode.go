package bench

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The raw* types mirror the file. Every scalar is a positioned value so that a problem found after
// decoding (an unknown terminal, a duplicated pin) still points at its line and column.

type rawBench struct {
	Name       pstr           `yaml:"name"`
	Controller *rawController `yaml:"controller"`
	Relays     []rawRelay     `yaml:"relays"`
	Inputs     []rawInput     `yaml:"inputs"`
	Wiring     *rawWiring     `yaml:"wiring"`
	Interlocks []rawInterlock `yaml:"interlocks"`
	Loopback   []rawLoopback  `yaml:"loopback"`
	Limits     *rawLimits     `yaml:"limits"`
	Sim        *rawSim        `yaml:"sim"`
}

type rawController struct {
	Kind      pstr `yaml:"kind"`
	Site      pstr `yaml:"site"`
	ID        pstr `yaml:"id"`
	ClientID  pstr `yaml:"client_id"`
	Broker    pstr `yaml:"broker"`
	Keepalive pdur `yaml:"keepalive"`
}

type rawRelay struct {
	Name     pstr `yaml:"name"`
	Driver   pstr `yaml:"driver"`
	Pin      pstr `yaml:"pin"`
	Active   pstr `yaml:"active"`
	MaxPulse pdur `yaml:"max_pulse"`
}

type rawInput struct {
	Name     pstr `yaml:"name"`
	Driver   pstr `yaml:"driver"`
	Pin      pstr `yaml:"pin"`
	Active   pstr `yaml:"active"`
	Pull     pstr `yaml:"pull"`
	Debounce pdur `yaml:"debounce"`
	Edge     pstr `yaml:"edge"`
}

type rawWiring struct {
	ToController   []rawDrive `yaml:"to_controller"`
	FromController []rawSense `yaml:"from_controller"`
}

type rawDrive struct {
	Relay    pstr `yaml:"relay"`
	Terminal pstr `yaml:"terminal"`
	Contact  pstr `yaml:"contact"`
}

type rawSense struct {
	Terminal pstr `yaml:"terminal"`
	Input    pstr `yaml:"input"`
}

type rawInterlock struct {
	NeverTogether []pstr `yaml:"never_together"`
}

type rawLoopback struct {
	Relay pstr `yaml:"relay"`
	Input pstr `yaml:"input"`
}

type rawLimits struct {
	CommandToLock   pdur   `yaml:"command_to_lock"`
	ButtonToEvent   pdur   `yaml:"button_to_event"`
	PhotoEyeReverse pdur   `yaml:"photo_eye_reverse"`
	WillFactor      pfloat `yaml:"will_factor"`
	Pulse           pdur   `yaml:"pulse"`
}

type rawSim struct {
	Seed        pint `yaml:"seed"`
	Propagation pdur `yaml:"propagation"`
	Bounce      pint `yaml:"bounce"`
	BounceSpan  pdur `yaml:"bounce_span"`
	Travel      pdur `yaml:"travel"`
}

// pos is a place in the file.
type pos struct{ line, col int }

func tokenPos(tk *token.Token) pos {
	if tk == nil || tk.Position == nil {
		return pos{1, 1}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// scalarError is returned by the positioned scalars; decode turns it into an *Error.
type scalarError struct {
	at  pos
	msg string
}

func (e *scalarError) Error() string { return e.msg }

// scalar returns the text of a scalar node, or an error saying what was expected instead.
func scalar(n ast.Node, want string) (string, pos, error) {
	p := tokenPos(n.GetToken())
	switch v := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode, *ast.LiteralNode:
		return v.GetToken().Value, p, nil
	case *ast.NullNode:
		return "", p, &scalarError{p, "expected " + want + ", got nothing"}
	case *ast.TagNode:
		return scalar(v.Value, want)
	default:
		return "", p, &scalarError{p, fmt.Sprintf("expected %s, got a %s", want, nodeKind(n))}
	}
}

func nodeKind(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "mapping"
	case ast.SequenceType:
		return "list"
	default:
		return strings.ToLower(n.Type().String())
	}
}

// pstr is a string with its position.
type pstr struct {
	v   string
	at  pos
	set bool
}

func (s *pstr) UnmarshalYAML(n ast.Node) error {
	v, p, err := scalar(n, "a string")
	if err != nil {
		return err
	}
	*s = pstr{v: v, at: p, set: true}
	return nil
}

// pdur is a duration written as Go writes it (e.g. 50ms, 2s, 1m30s).
type pdur struct {
	v   time.Duration
	at  pos
	set bool
}

func (d *pdur) UnmarshalYAML(n ast.Node) error {
	const want = "a duration like 50ms or 2s"
	v, p, err := scalar(n, want)
	if err != nil {
		return err
	}
	if _, isInt := n.(*ast.IntegerNode); isInt && v != "0" {
		return &scalarError{p, fmt.Sprintf("expected %s, got the bare number %s (add a unit)", want, v)}
	}
	dv, perr := time.ParseDuration(v)
	if perr != nil {
		return &scalarError{p, fmt.Sprintf("expected %s, got %q", want, v)}
	}
	if dv < 0 {
		return &scalarError{p, fmt.Sprintf("expected a duration of zero or more, got %s", v)}
	}
	*d = pdur{v: dv, at: p, set: true}
	return nil
}

// pint is an integer with its position.
type pint struct {
	v   int64
	at  pos
	set bool
}

func (i *pint) UnmarshalYAML(n ast.Node) error {
	v, p, err := scalar(n, "an integer")
	if err != nil {
		return err
	}
	iv, perr := strconv.ParseInt(v, 0, 64)
	if perr != nil {
		return &scalarError{p, fmt.Sprintf("expected an integer, got %q", v)}
	}
	*i = pint{v: iv, at: p, set: true}
	return nil
}

// pfloat is a number with its position.
type pfloat struct {
	v   float64
	at  pos
	set bool
}

func (f *pfloat) UnmarshalYAML(n ast.Node) error {
	v, p, err := scalar(n, "a number")
	if err != nil {
		return err
	}
	fv, perr := strconv.ParseFloat(v, 64)
	if perr != nil {
		return &scalarError{p, fmt.Sprintf("expected a number, got %q", v)}
	}
	*f = pfloat{v: fv, at: p, set: true}
	return nil
}

// Parse decodes and validates a bench file's content; name is used in error messages.
func Parse(name string, data []byte) (*Bench, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, nil, err)
	}
	if len(file.Docs) != 1 || file.Docs[0].Body == nil {
		return nil, ErrorList{{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("expected one YAML document describing a bench, found %d", len(file.Docs))}}
	}
	body := file.Docs[0].Body
	if _, ok := body.(ast.MapNode); !ok {
		p := tokenPos(body.GetToken())
		return nil, ErrorList{{File: name, Line: p.line, Column: p.col, Msg: "expected a mapping with keys " + strings.Join(keysOf(reflect.TypeOf(rawBench{})), ", ") + ", got a " + nodeKind(body)}}
	}
	var raw rawBench
	if err := yaml.NodeToValue(body, &raw, yaml.Strict()); err != nil {
		return nil, yamlError(name, file, err)
	}
	v := &validator{file: name, ast: file}
	b := v.bench(&raw)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool {
			if v.errs[i].Line != v.errs[j].Line {
				return v.errs[i].Line < v.errs[j].Line
			}
			return v.errs[i].Column < v.errs[j].Column
		})
		return nil, v.errs
	}
	b.Path = name
	return b, nil
}

// yamlError turns a go-yaml error into an ErrorList with one positioned *Error.
func yamlError(name string, file *ast.File, err error) error {
	var se *scalarError
	if errors.As(err, &se) {
		return ErrorList{{File: name, Line: se.at.line, Column: se.at.col, Path: pathAt(file, se.at), Msg: se.msg}}
	}
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return ErrorList{{File: name, Line: 1, Column: 1, Msg: err.Error()}}
	}
	p := tokenPos(ye.GetToken())
	e := &Error{File: name, Line: p.line, Column: p.col, Path: pathAt(file, p), Msg: ye.GetMessage()}
	var unknown *yaml.UnknownFieldError
	var mismatch *yaml.TypeError
	var shape *yaml.UnexpectedNodeTypeError
	switch {
	case errors.As(err, &unknown):
		if keys := expectedKeys(e.Path); len(keys) > 0 {
			e.Msg += "; expected one of: " + strings.Join(keys, ", ")
		}
	case errors.As(err, &mismatch):
		e.Msg = fmt.Sprintf("expected %s, got a %s", describe(mismatch.DstType), describe(mismatch.SrcType))
	case errors.As(err, &shape):
		e.Msg = fmt.Sprintf("expected a %s, got a %s", strings.ToLower(shape.Expected.String()), strings.ToLower(shape.Actual.String()))
	}
	return ErrorList{e}
}

func describe(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Struct, reflect.Map:
		return "mapping"
	default:
		return t.Kind().String()
	}
}

// pathAt finds the key path (e.g. relays[2].driver) of the node that starts at p.
func pathAt(file *ast.File, p pos) string {
	if file == nil {
		return ""
	}
	var found string
	ast.Walk(visitFunc(func(n ast.Node) bool {
		if found != "" {
			return false
		}
		if mv, ok := n.(*ast.MappingValueNode); ok {
			kp := tokenPos(mv.Key.GetToken())
			vp := tokenPos(mv.Value.GetToken())
			if kp == p || vp == p {
				found = mv.Key.GetPath()
				return false
			}
		}
		if tk := n.GetToken(); tk != nil && tokenPos(tk) == p && n.GetPath() != "" && n.GetPath() != "$" {
			found = n.GetPath()
			return false
		}
		return true
	}), file.Docs[0])
	return strings.TrimPrefix(strings.TrimPrefix(found, "$"), ".")
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// expectedKeys lists the keys allowed beside the unknown key at path (e.g. relays[0].bogus).
func expectedKeys(path string) []string {
	parts := strings.Split(indexRE.ReplaceAllString(path, ""), ".")
	t := reflect.TypeOf(rawBench{})
	for _, part := range parts[:len(parts)-1] {
		f, ok := fieldByTag(t, part)
		if !ok {
			return nil
		}
		t = f.Type
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
	}
	return keysOf(t)
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func keysOf(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}
