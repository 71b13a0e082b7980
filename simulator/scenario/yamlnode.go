package scenario

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is one problem in a scenario file, at the place it was written.
type Error struct {
	File string
	Pos
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg) }

// Errors is every problem found in one file, in file order. Parse returns it as its error so that
// a user fixes a file in one pass rather than one error per run.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// maxErrors bounds the list: past it, the file is probably not a scenario at all.
const maxErrors = 30

// decoder walks a goccy/go-yaml syntax tree, so that every value keeps the line and column where
// it was written and every message can name them. It never panics on odd input: a node of an
// unexpected shape is an error naming what was expected.
type decoder struct {
	file    string
	errs    Errors
	anchors map[string]ast.Node
	// fleetBroken is set when a fleet group did not decode: its device ids are unknown, so
	// "unknown device" messages about them would only repeat the fleet's own error.
	fleetBroken bool
	// actionBroken is set while the expectations of a step whose action did not decode are read.
	actionBroken bool
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	d.errorAt(posOf(n), format, args...)
}

func (d *decoder) errorAt(p Pos, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// result returns the errors in file order, or nil.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return d.errs
}

// parseYAML parses one YAML document and records its anchors. Syntax errors keep the position
// the parser reports.
func (d *decoder) parseYAML(data []byte) ast.Node {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			d.errorAt(Pos{p.Line, p.Column}, "YAML syntax: %s", ye.GetMessage())
		} else {
			d.errorAt(Pos{1, 1}, "YAML syntax: %s", err.Error())
		}
		return nil
	}
	if len(f.Docs) == 0 || f.Docs[0] == nil || f.Docs[0].Body == nil {
		d.errorAt(Pos{1, 1}, "the file is empty: want a scenario (name, fleet, steps)")
		return nil
	}
	if len(f.Docs) > 1 {
		second := f.Docs[1]
		p := Pos{1, 1}
		if second.Start != nil {
			p = Pos{second.Start.Position.Line, second.Start.Position.Column}
		}
		d.errorAt(p, "a scenario file holds one YAML document; this is a second one")
	}
	d.anchors = map[string]ast.Node{}
	ast.Walk(anchorCollector(d.anchors), f.Docs[0].Body)
	return f.Docs[0].Body
}

type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a[an.Name.GetToken().Value] = an.Value
	}
	return a
}

// resolve looks through anchors, aliases and tags to the node that holds the value.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for i := 0; i < 16 && n != nil; i++ {
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil {
				name = x.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.errorf(n, "alias *%s refers to no anchor", name)
				return nil
			}
			n = target
		case *ast.TagNode:
			n = x.Value
		default:
			return n
		}
	}
	return n
}

// posOf is where a node was written. Block mappings report the position of their first key
// rather than of the first ':' the parser remembers.
func posOf(n ast.Node) Pos {
	switch x := n.(type) {
	case nil:
		return Pos{1, 1}
	case *ast.MappingNode:
		if !x.IsFlowStyle && len(x.Values) > 0 && x.Values[0].Key != nil {
			return posOf(x.Values[0].Key)
		}
	case *ast.MappingValueNode:
		if x.Key != nil {
			return posOf(x.Key)
		}
	case *ast.AnchorNode:
		if x.Start != nil {
			return Pos{x.Start.Position.Line, x.Start.Position.Column}
		}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{1, 1}
	}
	return Pos{tk.Position.Line, tk.Position.Column}
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n ast.Node) string {
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("string %q", x.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode:
		return "integer " + x.GetToken().Value
	case *ast.FloatNode:
		return "number " + x.GetToken().Value
	case *ast.BoolNode:
		return "boolean " + x.GetToken().Value
	case *ast.InfinityNode, *ast.NanNode:
		return "number " + x.GetToken().Value
	}
	return n.Type().String()
}

// field is one key: value pair of a mapping.
type field struct {
	key  string
	pos  Pos      // of the key
	node ast.Node // the key node, for positions
	val  ast.Node // resolved value; nil for an explicit null
}

// fields is a decoded mapping: its pairs by key, in file order.
type fields struct {
	node  ast.Node
	byKey map[string]field
	order []string
	bad   bool // a key was unknown or duplicated: later "missing" or "does nothing" messages would mislead
}

func (f *fields) has(k string) bool { _, ok := f.byKey[k]; return ok }

func (f *fields) get(k string) (field, bool) { v, ok := f.byKey[k]; return v, ok }

// mapping decodes a mapping whose keys must be among known, reporting unknown and duplicated
// keys. what names the mapping in messages ("step", "fleet group").
func (d *decoder) mapping(n ast.Node, what string, known []string) *fields {
	n = d.resolve(n)
	var pairs []*ast.MappingValueNode
	switch x := n.(type) {
	case *ast.MappingNode:
		pairs = x.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{x}
	default:
		d.errorf(n, "%s: want a mapping (key: value), got %s", what, describe(n))
		return nil
	}
	f := &fields{node: n, byKey: map[string]field{}}
	for _, p := range pairs {
		if p.Key == nil {
			continue
		}
		if _, ok := p.Key.(*ast.MergeKeyNode); ok {
			d.errorf(p.Key, "merge keys (<<) are not supported in %s; write the keys out", what)
			continue
		}
		keyNode := d.resolve(p.Key)
		key, ok := scalarText(keyNode)
		if !ok {
			d.errorf(p.Key, "%s: a key must be a plain word, got %s", what, describe(keyNode))
			continue
		}
		if prev, dup := f.byKey[key]; dup {
			d.errorf(p.Key, "duplicate key %q in %s (first at line %d)", key, what, prev.pos.Line)
			f.bad = true
			continue
		}
		if !contains(known, key) {
			d.errorf(p.Key, "unknown key %q in %s (known: %s)", key, what, strings.Join(known, ", "))
			f.bad = true
			continue
		}
		val := d.resolve(p.Value)
		if _, isNull := val.(*ast.NullNode); isNull {
			val = nil
		}
		f.byKey[key] = field{key: key, pos: posOf(p.Key), node: p.Key, val: val}
		f.order = append(f.order, key)
	}
	return f
}

// valueNode returns the node to point at for a field's value, falling back to its key when the
// value is null.
func (f field) at() ast.Node {
	if f.val != nil {
		return f.val
	}
	return f.node
}

func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return x.GetToken().Value, true
	}
	return "", false
}

// str decodes a string. Numbers and booleans are refused rather than converted, so that an id
// such as 0012 or a payload such as yes is never silently changed; the message says to quote it.
func (d *decoder) str(f field, what string) (string, bool) {
	switch x := f.val.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value, true
		}
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		d.errorf(f.at(), "%s: want a string, got %s (quote it: \"%s\")", what, describe(x), x.GetToken().Value)
		return "", false
	}
	d.errorf(f.at(), "%s: want a string, got %s", what, describe(f.val))
	return "", false
}

// nonEmpty decodes a string that must not be empty.
func (d *decoder) nonEmpty(f field, what string) (string, bool) {
	s, ok := d.str(f, what)
	if ok && strings.TrimSpace(s) == "" {
		d.errorf(f.at(), "%s: want a non-empty string", what)
		return "", false
	}
	return s, ok
}

// integer decodes a whole number within [lo, hi].
func (d *decoder) integer(f field, what string, lo, hi int64) (int64, bool) {
	x, ok := f.val.(*ast.IntegerNode)
	if !ok {
		d.errorf(f.at(), "%s: want a whole number, got %s", what, describe(f.val))
		return 0, false
	}
	var v int64
	switch n := x.Value.(type) {
	case int64:
		v = n
	case uint64:
		if n > math.MaxInt64 {
			d.errorf(f.val, "%s: %d is too large (at most %d)", what, n, hi)
			return 0, false
		}
		v = int64(n)
	default:
		d.errorf(f.val, "%s: want a whole number, got %s", what, describe(f.val))
		return 0, false
	}
	if v < lo || v > hi {
		d.errorf(f.val, "%s: %d is out of range (want %d to %d)", what, v, lo, hi)
		return 0, false
	}
	return v, true
}

// uinteger decodes an unsigned 64-bit number (seeds).
func (d *decoder) uinteger(f field, what string) (uint64, bool) {
	x, ok := f.val.(*ast.IntegerNode)
	if !ok {
		d.errorf(f.at(), "%s: want a non-negative whole number, got %s", what, describe(f.val))
		return 0, false
	}
	switch n := x.Value.(type) {
	case int64:
		if n < 0 {
			d.errorf(f.val, "%s: want a non-negative whole number, got %d", what, n)
			return 0, false
		}
		return uint64(n), true
	case uint64:
		return n, true
	}
	d.errorf(f.val, "%s: want a non-negative whole number, got %s", what, describe(f.val))
	return 0, false
}

// duration decodes a Go duration with a unit ("5s", "250ms", "1m30s"). A bare 0 is accepted; any
// other bare number is refused, because nobody can tell whether 5 means seconds or milliseconds.
func (d *decoder) duration(f field, what string) (time.Duration, bool) {
	switch x := f.val.(type) {
	case *ast.StringNode:
		v, err := time.ParseDuration(strings.TrimSpace(x.Value))
		if err != nil {
			d.errorf(x, "%s: %q is not a duration: want a number with a unit, such as 5s, 250ms or 1m30s", what, x.Value)
			return 0, false
		}
		return v, true
	case *ast.IntegerNode:
		if x.GetToken().Value == "0" {
			return 0, true
		}
		d.errorf(x, "%s: %s has no unit: want a duration such as %ss or %sms", what, x.GetToken().Value, x.GetToken().Value, x.GetToken().Value)
		return 0, false
	case *ast.FloatNode:
		d.errorf(x, "%s: %s has no unit: want a duration such as %ss", what, x.GetToken().Value, x.GetToken().Value)
		return 0, false
	}
	d.errorf(f.at(), "%s: want a duration such as 5s or 250ms, got %s", what, describe(f.val))
	return 0, false
}

// positiveDuration decodes a duration that must be greater than zero.
func (d *decoder) positiveDuration(f field, what string) (time.Duration, bool) {
	v, ok := d.duration(f, what)
	if ok && v <= 0 {
		d.errorf(f.at(), "%s: %s is not a positive duration", what, fmtDur(v))
		return 0, false
	}
	return v, ok
}

// boolean decodes true or false.
func (d *decoder) boolean(f field, what string) (bool, bool) {
	if x, ok := f.val.(*ast.BoolNode); ok {
		return x.Value, true
	}
	d.errorf(f.at(), "%s: want true or false, got %s", what, describe(f.val))
	return false, false
}

// rate decodes "20/s", "1200/min", "3/h" or a plain number of actions per second.
func (d *decoder) rate(f field, what string) (float64, bool) {
	var v float64
	switch x := f.val.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		p, err := strconv.ParseFloat(x.GetToken().Value, 64)
		if err != nil {
			d.errorf(x, "%s: %s is not a number", what, x.GetToken().Value)
			return 0, false
		}
		v = p
	case *ast.StringNode:
		s := strings.ReplaceAll(x.Value, " ", "")
		num, unit, ok := strings.Cut(s, "/")
		if !ok {
			unit = "s"
		}
		p, err := strconv.ParseFloat(num, 64)
		per := map[string]float64{"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
		if err != nil || per == 0 {
			d.errorf(x, "%s: %q is not a rate: want a number per unit, such as 20/s, 90/min or 5/h", what, x.Value)
			return 0, false
		}
		v = p / per
	default:
		d.errorf(f.at(), "%s: want a rate such as 20/s, got %s", what, describe(f.val))
		return 0, false
	}
	if !(v > 0) || math.IsInf(v, 0) {
		d.errorf(f.at(), "%s: the rate must be greater than zero", what)
		return 0, false
	}
	return v, true
}

// value decodes any YAML value into plain Go values as encoding/json would produce them from the
// equivalent JSON: map[string]any, []any, string, float64, bool and nil. Payload subsets are
// compared with decoded JSON, so both sides must use the same representation.
func (d *decoder) value(n ast.Node, what string) (any, bool) {
	n = d.resolve(n)
	switch x := n.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value != nil {
			return x.Value.Value, true
		}
		return "", true
	case *ast.BoolNode:
		return x.Value, true
	case *ast.IntegerNode:
		switch v := x.Value.(type) {
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		}
	case *ast.FloatNode:
		return x.Value, true
	case *ast.SequenceNode:
		out := make([]any, 0, len(x.Values))
		for _, e := range x.Values {
			v, ok := d.value(e, what)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case *ast.MappingNode, *ast.MappingValueNode:
		var pairs []*ast.MappingValueNode
		if m, ok := x.(*ast.MappingNode); ok {
			pairs = m.Values
		} else {
			pairs = []*ast.MappingValueNode{x.(*ast.MappingValueNode)}
		}
		out := make(map[string]any, len(pairs))
		for _, p := range pairs {
			k, ok := scalarText(d.resolve(p.Key))
			if !ok {
				d.errorf(p.Key, "%s: keys must be plain words, got %s", what, describe(p.Key))
				return nil, false
			}
			if _, dup := out[k]; dup {
				d.errorf(p.Key, "%s: duplicate key %q", what, k)
				return nil, false
			}
			v, ok := d.value(p.Value, what)
			if !ok {
				return nil, false
			}
			out[k] = v
		}
		return out, true
	}
	d.errorf(n, "%s: %s cannot be expressed in JSON", what, describe(n))
	return nil, false
}

// object decodes a mapping of free keys (command arguments, stimulus parameters).
func (d *decoder) object(f field, what string) (map[string]any, bool) {
	if f.val == nil {
		return nil, true
	}
	switch f.val.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		d.errorf(f.at(), "%s: want a mapping, got %s", what, describe(f.val))
		return nil, false
	}
	v, ok := d.value(f.val, what)
	if !ok {
		return nil, false
	}
	return v.(map[string]any), true
}

// list returns the entries of a sequence.
func (d *decoder) list(f field, what string) ([]ast.Node, bool) {
	s, ok := f.val.(*ast.SequenceNode)
	if !ok {
		d.errorf(f.at(), "%s: want a list, got %s", what, describe(f.val))
		return nil, false
	}
	out := make([]ast.Node, len(s.Values))
	for i, v := range s.Values {
		out[i] = d.resolve(v)
	}
	return out, true
}

// strings decodes a list of strings.
func (d *decoder) strList(f field, what string) ([]string, bool) {
	nodes, ok := d.list(f, what)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(nodes))
	good := true
	for _, n := range nodes {
		s, ok := d.str(field{key: f.key, node: n, val: n}, what)
		good = good && ok
		out = append(out, s)
	}
	return out, good
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
