package scenario

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// Keys of each mapping, in the order the documentation presents them; messages list them.
var (
	scenarioKeys = []string{"name", "description", "seed", "outcome", "broker", "requires", "duration", "connect_rate", "fleet", "react", "steps"}
	brokerKeys   = []string{"url", "image", "faults"}
	stepKeys     = []string{"at", "name", "do", "stimulus", "fault", "clear", "load", "expect", "within"}
	actionKeys   = []string{"do", "stimulus", "fault", "clear", "load"}
	commandKeys  = []string{"device", "devices", "every", "command", "args"}
	stimulusKeys = []string{"device", "devices", "every", "action", "card", "plate", "direction", "terminal", "active", "duration"}
	faultKeys    = []string{"device", "devices", "every", "kind", "duration", "params"}
	clearKeys    = []string{"device", "devices", "every", "kind"}
	loadKeys     = []string{"kind", "devices", "action", "command", "args", "rate", "for"}
	expectKeys   = []string{"publish", "retained", "absent", "order", "ack", "delivered", "p50_latency", "p90_latency", "p99_latency", "within"}
	checkKeys    = []string{"publish", "retained", "absent", "order", "ack", "delivered", "p50_latency", "p90_latency", "p99_latency"}
	matchKeys    = []string{"topic", "payload", "count", "exactly", "qos", "retained"}
	orderKeys    = []string{"topic", "payload", "qos", "retained"}
	ruleKeys     = []string{"name", "on", "do", "stimulus", "delay", "max"}
	ruleOnKeys   = []string{"topic", "payload"}
)

// Commands a device understands (DESIGN.md, device contract). A command a kind does not implement
// is still sent — the device must ack it "rejected" — but a name outside this list is a typo.
var commandNames = []string{"open", "close", "hold_open", "release", "allow_pass", "lock", "unlock", "free", "snapshot", "reboot"}

// Limits that keep a run bounded.
const (
	maxDevices     = 20000
	maxLoadActions = 100000
	maxDuration    = 24 * time.Hour
	defaultSeed    = 1
	// loadGrace is added to a load phase's length to form the default window of its expectations:
	// the last action's event needs a moment to arrive.
	loadGrace = 5 * time.Second
)

// Load reads and decodes a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a scenario strictly. The error, if any, is Errors: every problem with its
// file:line:column and what was expected there.
func Parse(file string, data []byte) (*Scenario, error) {
	d := &decoder{file: file}
	root := d.parseYAML(data)
	if root == nil {
		return nil, d.result()
	}
	s := d.scenario(root)
	if err := d.result(); err != nil {
		return nil, err
	}
	s.File = file
	return s, nil
}

func (d *decoder) scenario(root ast.Node) *Scenario {
	s := &Scenario{Seed: defaultSeed, Outcome: report.Pass, Broker: Broker{Kind: BrokerEmbedded}, devices: map[string]DeviceRef{}}
	top := d.mapping(root, "scenario", scenarioKeys)
	if top == nil {
		return s
	}
	for _, k := range []string{"name", "fleet", "steps"} {
		if !top.has(k) {
			d.errorf(root, "scenario: missing key %q", k)
		}
	}
	if f, ok := top.get("name"); ok {
		s.Name, _ = d.nonEmpty(f, "name")
	}
	if f, ok := top.get("description"); ok {
		s.Description, _ = d.str(f, "description")
	}
	if f, ok := top.get("seed"); ok {
		s.Seed, _ = d.uinteger(f, "seed")
	}
	if f, ok := top.get("outcome"); ok {
		if o, ok := d.str(f, "outcome"); ok {
			switch report.Outcome(o) {
			case report.Pass, report.Fail:
				s.Outcome = report.Outcome(o)
			default:
				d.errorf(f.at(), "outcome: %q is not an expected outcome (want pass or fail)", o)
			}
		}
	}
	if f, ok := top.get("broker"); ok {
		s.Broker = d.broker(f)
	}
	if f, ok := top.get("requires"); ok {
		if list, ok := d.strList(f, "requires"); ok {
			nodes, _ := d.list(f, "requires")
			for i, r := range list {
				if !contains(brokerFaults, r) {
					d.errorf(nodes[i], "requires: %q is not a broker control (known: %s)", r, strings.Join(brokerFaults, ", "))
					continue
				}
				s.Requires = append(s.Requires, r)
			}
		}
	}
	var end time.Duration
	if f, ok := top.get("duration"); ok {
		if v, ok := d.positiveDuration(f, "duration"); ok {
			if v > maxDuration {
				d.errorf(f.at(), "duration: %s is longer than the %s a scenario may last", fmtDur(v), fmtDur(maxDuration))
			} else {
				end = v
			}
		}
	}
	if f, ok := top.get("connect_rate"); ok {
		s.ConnectRate, _ = d.rate(f, "connect_rate")
	}
	if f, ok := top.get("fleet"); ok {
		d.fleet(s, f)
	}
	if f, ok := top.get("react"); ok {
		if nodes, ok := d.list(f, "react"); ok {
			for _, n := range nodes {
				if r, ok := d.rule(s, n); ok {
					s.React = append(s.React, r)
				}
			}
		}
	}
	if f, ok := top.get("steps"); ok {
		d.steps(s, f)
	}
	for _, st := range s.Steps {
		if fa, ok := st.Action.(*Fault); ok && fa.Broker {
			s.Requires = append(s.Requires, fa.Fault.Kind)
		}
	}
	s.Requires = sortedUnique(s.Requires)
	s.Duration = d.timeline(s, end)
	return s
}

func (d *decoder) broker(f field) Broker {
	if str, ok := f.val.(*ast.StringNode); ok {
		if str.Value != BrokerEmbedded {
			d.errorf(str, "broker: %q is not a broker: want embedded, {url: mqtt://host:port} or {image: NAME}", str.Value)
		}
		return Broker{Kind: BrokerEmbedded}
	}
	m := d.mapping(f.val, "broker", brokerKeys)
	if m == nil {
		return Broker{Kind: BrokerEmbedded}
	}
	b := Broker{Kind: BrokerEmbedded}
	if m.has("url") && m.has("image") {
		d.errorf(f.at(), "broker: give url or image, not both")
		return b
	}
	if u, ok := m.get("url"); ok {
		raw, ok := d.nonEmpty(u, "broker url")
		if ok {
			if err := CheckBrokerURL(raw); err != nil {
				d.errorf(u.at(), "broker url: %s", err.Error())
			}
		}
		b = Broker{Kind: BrokerURL, URL: raw}
	}
	if img, ok := m.get("image"); ok {
		name, _ := d.nonEmpty(img, "broker image")
		b = Broker{Kind: BrokerImage, Image: name}
	}
	if ff, ok := m.get("faults"); ok {
		if b.Kind != BrokerEmbedded {
			d.errorf(ff.node, "broker faults: fault modes are set on the embedded reference broker only")
		} else {
			b.Faults, _ = d.strList(ff, "broker faults")
		}
	}
	return b
}

// CheckBrokerURL accepts the broker addresses the observer, the controller and the fleet can
// all reach: mqtt:// or tcp:// with a host and a port.
func CheckBrokerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "mqtt" && u.Scheme != "tcp" {
		return fmt.Errorf("%q: want mqtt://host:port or tcp://host:port", raw)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q: want a host and a port, e.g. mqtt://127.0.0.1:1883", raw)
	}
	return nil
}

func (d *decoder) fleet(s *Scenario, f field) {
	nodes, ok := d.list(f, "fleet")
	if !ok {
		return
	}
	if len(nodes) == 0 {
		d.errorf(f.at(), "fleet: want at least one group of devices")
		return
	}
	total := 0
	for _, n := range nodes {
		g, ids, ok := d.group(n)
		if !ok {
			d.fleetBroken = true
			continue
		}
		gi := len(s.Fleet)
		s.Fleet = append(s.Fleet, g)
		total += g.Count
		if total > maxDevices {
			d.errorf(n, "fleet: more than %d devices", maxDevices)
			return
		}
		for _, id := range ids {
			if prev, dup := s.devices[id]; dup {
				d.errorAt(g.Pos, "fleet: device id %q is produced twice (also by the %s group at line %d)", id, prev.Kind, s.Fleet[prev.Group].Pos.Line)
				d.fleetBroken = true
				break
			}
			s.devices[id] = DeviceRef{ID: id, Kind: g.Kind, Site: siteOf(g.Group), Group: gi}
			s.order = append(s.order, id)
		}
	}
}

func siteOf(g fleet.Group) string {
	if g.Site == "" {
		return "site-1"
	}
	return g.Site
}

// groupField is one key of a fleet group: a field of fleet.Group named by its yaml tag.
type groupField struct {
	index int
	typ   reflect.Type
	kind  string // the device kind the setting belongs to; "" for every kind
}

// groupFields maps the keys of a fleet group to fleet.Group's fields, so that the scenario
// format follows the fleet's settings as they grow. Settings of one device kind are refused on
// another.
var groupFields, groupKeys = func() (map[string]groupField, []string) {
	kindOf := map[string]string{
		"role": "gate", "travel_time": "gate", "hold_time": "gate", "fee_min": "gate", "fee_max": "gate", "currency": "gate",
		"pass_window": "turnstile", "cards": "turnstile",
		"plates": "camera", "motion_time": "camera", "snapshot_size": "camera", "misread_rate": "camera",
	}
	t := reflect.TypeOf(fleet.Group{})
	fields := map[string]groupField{}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = groupField{index: i, typ: t.Field(i).Type, kind: kindOf[name]}
		keys = append(keys, name)
	}
	return fields, keys
}()

var durationType = reflect.TypeOf(time.Duration(0))

// group decodes one fleet group and expands its device ids.
func (d *decoder) group(n ast.Node) (Group, []string, bool) {
	g := Group{Pos: posOf(n)}
	g.Count = 1
	m := d.mapping(n, "fleet group", groupKeys)
	if m == nil {
		return g, nil, false
	}
	ok := !m.bad
	kf, has := m.get("kind")
	if !has {
		d.errorf(n, "fleet group: missing key \"kind\" (one of %s)", strings.Join(deviceKinds, ", "))
		return g, nil, false
	}
	if k, good := d.str(kf, "kind"); !good {
		return g, nil, false
	} else if !contains(deviceKinds, k) {
		d.errorf(kf.at(), "fleet group: kind %q is not a device kind (want one of %s)", k, strings.Join(deviceKinds, ", "))
		return g, nil, false
	} else {
		g.Kind = k
	}
	v := reflect.ValueOf(&g.Group).Elem()
	for _, key := range m.order {
		if key == "kind" {
			continue
		}
		f, _ := m.get(key)
		gf := groupFields[key]
		if gf.kind != "" && gf.kind != g.Kind {
			d.errorf(f.node, "%s: a %s setting, and this group is of %ss", key, gf.kind, g.Kind)
			ok = false
			continue
		}
		good := d.setField(v.Field(gf.index), f, key)
		ok = ok && good
	}
	ok = d.checkGroup(m, &g) && ok
	if !ok {
		return g, nil, false
	}
	tmpl := g.ID
	if tmpl == "" {
		tmpl = "{kind}-{n:03}"
	}
	ids := make([]string, 0, g.Count)
	for i := 1; i <= g.Count; i++ {
		id, err := fleet.ExpandID(tmpl, g.Kind, siteOf(g.Group), i)
		if err != nil {
			f, _ := m.get("id")
			d.errorf(f.at(), "id: %s", err.Error())
			return g, nil, false
		}
		if strings.ContainsAny(id, " {}") {
			f, _ := m.get("id")
			d.errorf(f.at(), "id: %q gives %q, which would make a poor topic level (no spaces or braces)", tmpl, id)
			return g, nil, false
		}
		ids = append(ids, id)
	}
	if g.Count > 1 && ids[0] == ids[1] {
		f, _ := m.get("id")
		d.errorf(f.at(), "id: %q names %d devices the same; put {n} or {n:02} where the number goes", g.ID, g.Count)
		return g, nil, false
	}
	return g, ids, true
}

// setField decodes a value into a field of fleet.Group by the field's type.
func (d *decoder) setField(v reflect.Value, f field, key string) bool {
	switch {
	case v.Type() == durationType:
		x, ok := d.duration(f, key)
		v.SetInt(int64(x))
		return ok
	case v.Kind() == reflect.String:
		x, ok := d.str(f, key)
		v.SetString(x)
		return ok
	case v.Kind() == reflect.Int:
		x, ok := d.integer(f, key, 0, math.MaxInt32)
		v.SetInt(x)
		return ok
	case v.Kind() == reflect.Float64:
		x, ok := d.number(f, key)
		v.SetFloat(x)
		return ok
	case v.Kind() == reflect.Bool:
		x, ok := d.boolean(f, key)
		v.SetBool(x)
		return ok
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		x, ok := d.strList(f, key)
		v.Set(reflect.ValueOf(x))
		return ok
	}
	d.errorf(f.node, "%s: this setting cannot be given in a scenario file", key)
	return false
}

// checkGroup checks the values of a group beyond their types.
func (d *decoder) checkGroup(m *fields, g *Group) bool {
	ok := true
	bad := func(key, format string, args ...any) {
		f, _ := m.get(key)
		d.errorf(f.at(), format, args...)
		ok = false
	}
	if m.has("count") && (g.Count < 1 || g.Count > maxDevices) {
		bad("count", "count: %d is out of range (want 1 to %d)", g.Count, maxDevices)
	}
	if m.has("site") && (g.Site == "" || strings.ContainsAny(g.Site, "/+# ")) {
		bad("site", "site: %q would make an invalid topic level (no /, +, # or spaces)", g.Site)
	}
	if m.has("prefix") && (g.Prefix == "" || ValidFilter(g.Prefix) != nil || strings.ContainsAny(g.Prefix, "+#")) {
		bad("prefix", "prefix: %q is not a topic prefix (levels without + or #; {site} is replaced)", g.Prefix)
	}
	if m.has("keepalive") && (g.Keepalive < 0 || g.Keepalive > 65535*time.Second || g.Keepalive%time.Second != 0) {
		bad("keepalive", "keepalive: %s must be whole seconds from 0s to 65535s", fmtDur(g.Keepalive))
	}
	if m.has("role") && g.Role != "entry" && g.Role != "exit" {
		bad("role", "role: %q is not a gate role (want entry or exit)", g.Role)
	}
	for _, key := range []string{"boot_time", "ack_latency", "reconnect_min", "reconnect_max", "travel_time", "hold_time", "pass_window", "motion_time"} {
		if f, has := m.get(key); has && reflect.ValueOf(g.Group).Field(groupFields[key].index).Int() < 0 {
			d.errorf(f.at(), "%s: must not be negative", key)
			ok = false
		}
	}
	for _, key := range []string{"fail_rate", "misread_rate"} {
		if f, has := m.get(key); has {
			if x := reflect.ValueOf(g.Group).Field(groupFields[key].index).Float(); x < 0 || x > 1 {
				d.errorf(f.at(), "%s: %v is not a probability (want 0 to 1)", key, x)
				ok = false
			}
		}
	}
	if m.has("fee_max") && g.FeeMax < g.FeeMin {
		bad("fee_max", "fee_max: %d is below fee_min %d", g.FeeMax, g.FeeMin)
	}
	return ok
}

// number decodes an integer or a decimal number.
func (d *decoder) number(f field, what string) (float64, bool) {
	switch x := f.val.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		v, err := strconv.ParseFloat(x.GetToken().Value, 64)
		if err == nil {
			return v, true
		}
	}
	d.errorf(f.at(), "%s: want a number, got %s", what, describe(f.val))
	return 0, false
}

func (d *decoder) steps(s *Scenario, f field) {
	nodes, ok := d.list(f, "steps")
	if !ok {
		return
	}
	if len(nodes) == 0 {
		d.errorf(f.at(), "steps: want at least one step")
		return
	}
	var prev *Step
	for i, n := range nodes {
		st, ok, atOK := d.step(s, n, i+1)
		if atOK {
			if prev != nil && st.At < prev.At {
				d.errorAt(st.Pos, "step %d at %s comes before step %d at %s: steps must be in time order", st.Index, fmtDur(st.At), prev.Index, fmtDur(prev.At))
			}
			prev = &st
		}
		if ok {
			s.Steps = append(s.Steps, st)
		}
	}
}

func (d *decoder) step(s *Scenario, n ast.Node, index int) (st Step, ok, atOK bool) {
	st = Step{Index: index, Pos: posOf(n)}
	m := d.mapping(n, "step", stepKeys)
	if m == nil {
		return st, false, false
	}
	if f, has := m.get("at"); !has {
		d.errorf(n, "step %d: missing key \"at\" (when the step happens, e.g. at: 5s)", index)
	} else {
		v, good := d.duration(f, "at")
		if good && v < 0 {
			d.errorf(f.at(), "at: %s is before the scenario starts", fmtDur(v))
			good = false
		}
		st.At, atOK = v, good
		if good {
			st.Pos = posOf(f.val)
		}
	}
	ok = atOK
	if f, has := m.get("name"); has {
		st.Name, _ = d.str(f, "step name")
	}
	var actionField *field
	for _, k := range m.order {
		if !contains(actionKeys, k) {
			continue
		}
		f, _ := m.get(k)
		if actionField != nil {
			d.errorf(f.node, "a step takes one action; this step has %s and %s (split them into two steps with the same at)", actionField.key, k)
			ok = false
			continue
		}
		actionField = &f
	}
	d.actionBroken = false
	if actionField != nil {
		a, good := d.action(s, *actionField)
		if good {
			st.Action = a
		}
		// A broken action is reported once; checks that refer to it say nothing more.
		ok, d.actionBroken = ok && good, !good
	}
	var within time.Duration
	withinGiven := false
	if f, has := m.get("within"); has {
		v, good := d.positiveDuration(f, "within")
		within, ok, withinGiven = v, ok && good, true
	}
	if f, has := m.get("expect"); has {
		var nodes []ast.Node
		if seq, isSeq := f.val.(*ast.SequenceNode); isSeq {
			for _, e := range seq.Values {
				nodes = append(nodes, d.resolve(e))
			}
		} else {
			nodes = []ast.Node{f.at()}
		}
		for _, en := range nodes {
			es, good := d.expect(s, &st, en, within, withinGiven)
			st.Expect = append(st.Expect, es...)
			ok = ok && good
		}
	} else if m.has("within") && !m.bad {
		wf, _ := m.get("within")
		d.errorf(wf.node, "within: the step has no expect for it to bound")
		ok = false
	}
	if st.Action == nil && len(st.Expect) == 0 && ok && !m.bad {
		d.errorf(n, "step %d does nothing: give it an action (%s) or an expect", index, strings.Join(actionKeys, ", "))
		ok = false
	}
	return st, ok, atOK
}

func (d *decoder) action(s *Scenario, f field) (Action, bool) {
	switch f.key {
	case "do":
		return d.command(s, f.at(), false)
	case "stimulus":
		return d.stimulus(s, f.at(), false)
	case "fault":
		return d.fault(s, f.at())
	case "clear":
		return d.clear(s, f.at())
	case "load":
		return d.load(s, f.at())
	}
	return nil, false
}

// targets decodes device, devices or every. In a react rule a device may be a placeholder.
func (d *decoder) targets(s *Scenario, m *fields, n ast.Node, what string, inRule bool) (Targets, bool) {
	var t Targets
	given := 0
	for _, k := range []string{"device", "devices", "every"} {
		if m.has(k) {
			given++
		}
	}
	if given != 1 {
		if given == 0 {
			d.errorf(n, "%s: say which device: device: ID, devices: [ID, ...] or every: KIND", what)
		} else {
			d.errorf(n, "%s: give only one of device, devices and every", what)
		}
		return t, false
	}
	ok := true
	if f, has := m.get("device"); has {
		id, good := d.nonEmpty(f, "device")
		t.Device = id
		ok = good && d.knownDevice(s, f.at(), id, inRule)
	}
	if f, has := m.get("devices"); has {
		ids, good := d.strList(f, "devices")
		nodes, _ := d.list(f, "devices")
		if good && len(ids) == 0 {
			d.errorf(f.at(), "devices: want at least one device id")
			good = false
		}
		for i, id := range ids {
			good = d.knownDevice(s, nodes[i], id, inRule) && good
		}
		t.Devices, ok = ids, good
	}
	if f, has := m.get("every"); has {
		k, good := d.str(f, "every")
		if good && len(s.DevicesOfKind(k)) == 0 {
			if contains(deviceKinds, k) {
				d.errorf(f.at(), "every: the fleet has no %s", k)
			} else {
				d.errorf(f.at(), "every: %q is not a device kind (want one of %s)", k, strings.Join(deviceKinds, ", "))
			}
			good = false
		}
		t.Every, ok = k, good
	}
	return t, ok
}

// placeholder reports whether s refers to the matched message of a react rule.
func placeholder(s string) bool { return strings.Contains(s, "{") && strings.Contains(s, "}") }

func (d *decoder) knownDevice(s *Scenario, n ast.Node, id string, inRule bool) bool {
	if id == "" {
		return false
	}
	if inRule && placeholder(id) {
		return true
	}
	if _, ok := s.devices[id]; ok || d.fleetBroken {
		return ok
	}
	d.errorf(n, "unknown device %q (the fleet has %s)", id, summariseIDs(s.order))
	return false
}

// summariseIDs lists a fleet's ids for a message, abbreviating long fleets.
func summariseIDs(ids []string) string {
	switch {
	case len(ids) == 0:
		return "no devices"
	case len(ids) <= 8:
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s … %s, %d devices", strings.Join(ids[:4], ", "), ids[len(ids)-1], len(ids))
}

func (d *decoder) command(s *Scenario, n ast.Node, inRule bool) (*Command, bool) {
	m := d.mapping(n, "do", commandKeys)
	if m == nil {
		return nil, false
	}
	c := &Command{}
	t, ok := d.targets(s, m, n, "do", inRule)
	c.Targets = t
	if f, has := m.get("command"); !has {
		d.errorf(n, "do: missing key \"command\" (one of %s)", strings.Join(commandNames, ", "))
		ok = false
	} else if name, good := d.str(f, "command"); good {
		if !contains(commandNames, name) {
			d.errorf(f.at(), "command: %q is not a device command (known: %s)", name, strings.Join(commandNames, ", "))
			good = false
		}
		c.Name, ok = name, ok && good
	} else {
		ok = false
	}
	if f, has := m.get("args"); has {
		args, good := d.object(f, "args")
		if good {
			if _, hasCorr := args["corr"]; hasCorr {
				d.errorf(f.at(), "args: corr is set by the controller for every command; leave it out")
				good = false
			}
		}
		c.Args, ok = args, ok && good
	}
	return c, ok
}

// Stimulus kinds and the device kinds they apply to (simulator/device Stim* constants).
var stimulusKinds = map[string]string{
	"card":           "turnstile",
	"passage":        "turnstile",
	"vehicle_arrive": "gate",
	"vehicle_leave":  "gate",
	"photo_eye":      "gate",
	"open_button":    "gate",
	"close_button":   "gate",
	"input":          "gate",
	"motion":         "camera",
	"plate":          "camera",
}

// stimulusAliases are the words people use for the same stimuli.
var stimulusAliases = map[string]string{"swipe": "card"}

func stimulusNames() string {
	names := make([]string, 0, len(stimulusKinds))
	for k := range stimulusKinds {
		names = append(names, k)
	}
	for k := range stimulusAliases {
		names = append(names, k)
	}
	return strings.Join(sortedUnique(names), ", ")
}

// stimulusName resolves an alias; ok is false for an unknown name.
func stimulusName(name string) (string, bool) {
	if a, ok := stimulusAliases[name]; ok {
		name = a
	}
	_, ok := stimulusKinds[name]
	return name, ok
}

func (d *decoder) stimulus(s *Scenario, n ast.Node, inRule bool) (*Stimulus, bool) {
	m := d.mapping(n, "stimulus", stimulusKeys)
	if m == nil {
		return nil, false
	}
	st := &Stimulus{Params: map[string]any{}}
	t, ok := d.targets(s, m, n, "stimulus", inRule)
	st.Targets = t
	if f, has := m.get("action"); !has {
		d.errorf(n, "stimulus: missing key \"action\" (one of %s)", stimulusNames())
		ok = false
	} else if name, good := d.str(f, "action"); good {
		canon, known := stimulusName(name)
		if !known {
			d.errorf(f.at(), "stimulus: %q is not a stimulus (known: %s)", name, stimulusNames())
			ok = false
		} else if ok {
			for _, id := range t.Resolve(s) {
				if ref, found := s.devices[id]; found && ref.Kind != stimulusKinds[canon] {
					d.errorf(f.at(), "stimulus: %s applies to a %s, and %s is a %s", name, stimulusKinds[canon], id, ref.Kind)
					ok = false
					break
				}
			}
		}
		st.Name = canon
	} else {
		ok = false
	}
	for _, k := range []string{"card", "plate", "direction", "terminal"} {
		if f, has := m.get(k); has {
			v, good := d.str(f, k)
			if good && k == "direction" && v != "in" && v != "out" {
				d.errorf(f.at(), "direction: %q is not a direction (want in or out)", v)
				good = false
			}
			st.Params[k], ok = v, ok && good
		}
	}
	if f, has := m.get("active"); has {
		v, good := d.boolean(f, "active")
		st.Params["active"], ok = v, ok && good
	}
	if f, has := m.get("duration"); has {
		v, good := d.positiveDuration(f, "duration")
		st.Params["duration"], ok = v, ok && good
	}
	return st, ok
}

func (d *decoder) fault(s *Scenario, n ast.Node) (*Fault, bool) {
	m := d.mapping(n, "fault", faultKeys)
	if m == nil {
		return nil, false
	}
	fa := &Fault{}
	ok := true
	kf, has := m.get("kind")
	if !has {
		d.errorf(n, "fault: missing key \"kind\" (device faults: %s; broker faults: %s)", strings.Join(fault.Kinds, ", "), strings.Join(brokerFaults, ", "))
		return nil, false
	}
	kind, good := d.str(kf, "kind")
	if !good {
		return nil, false
	}
	fa.Fault.Kind = kind
	fa.Broker = contains(brokerFaults, kind)
	switch {
	case fa.Broker:
		for _, k := range []string{"device", "devices", "every", "params"} {
			if f, has := m.get(k); has {
				d.errorf(f.node, "fault: %s is a broker fault and takes no %s", kind, k)
				ok = false
			}
		}
	case !contains(fault.Kinds, kind):
		d.errorf(kf.at(), "fault: %q is not a fault (device faults: %s; broker faults: %s)", kind, strings.Join(fault.Kinds, ", "), strings.Join(brokerFaults, ", "))
		ok = false
	default:
		t, good := d.targets(s, m, n, "fault", false)
		fa.Targets, ok = t, ok && good
	}
	if f, has := m.get("duration"); has {
		v, good := d.positiveDuration(f, "fault duration")
		if good && kind == BrokerRestart {
			d.errorf(f.node, "fault: broker_restart is over as soon as the broker is back; it takes no duration")
			good = false
		}
		fa.Fault.Duration, ok = v, ok && good
	}
	if f, has := m.get("params"); has {
		p, good := d.object(f, "params")
		fa.Fault.Params, ok = p, ok && good
		if good && !fa.Broker {
			if err := fa.Fault.Validate(); err != nil {
				d.errorf(f.at(), "%s", err.Error())
				ok = false
			}
		}
	}
	return fa, ok
}

func (d *decoder) clear(s *Scenario, n ast.Node) (*Clear, bool) {
	m := d.mapping(n, "clear", clearKeys)
	if m == nil {
		return nil, false
	}
	c := &Clear{}
	t, ok := d.targets(s, m, n, "clear", false)
	c.Targets = t
	if f, has := m.get("kind"); !has {
		d.errorf(n, "clear: missing key \"kind\" (the fault to end)")
		ok = false
	} else if k, good := d.str(f, "kind"); good {
		if !contains(fault.Kinds, k) {
			d.errorf(f.at(), "clear: %q is not a device fault (known: %s)", k, strings.Join(fault.Kinds, ", "))
			good = false
		}
		c.Kind, ok = k, ok && good
	} else {
		ok = false
	}
	return c, ok
}

func (d *decoder) load(s *Scenario, n ast.Node) (*LoadPhase, bool) {
	m := d.mapping(n, "load", loadKeys)
	if m == nil {
		return nil, false
	}
	l := &LoadPhase{}
	ok := true
	for _, k := range []string{"kind", "rate", "for"} {
		if !m.has(k) {
			d.errorf(n, "load: missing key %q", k)
			ok = false
		}
	}
	if f, has := m.get("kind"); has {
		k, good := d.str(f, "kind")
		if good && len(s.DevicesOfKind(k)) == 0 {
			if contains(deviceKinds, k) {
				d.errorf(f.at(), "load: the fleet has no %s", k)
			} else {
				d.errorf(f.at(), "load: %q is not a device kind (want one of %s)", k, strings.Join(deviceKinds, ", "))
			}
			good = false
		}
		l.Kind, ok = k, ok && good
	}
	if f, has := m.get("devices"); has {
		ids, good := d.strList(f, "devices")
		nodes, _ := d.list(f, "devices")
		for i, id := range ids {
			if !d.knownDevice(s, nodes[i], id, false) {
				good = false
				continue
			}
			if ref := s.devices[id]; l.Kind != "" && ref.Kind != l.Kind {
				d.errorf(nodes[i], "load: %s is a %s, not a %s", id, ref.Kind, l.Kind)
				good = false
			}
		}
		l.Devices, ok = ids, ok && good
	}
	_, hasAction := m.get("action")
	_, hasCommand := m.get("command")
	switch {
	case hasAction == hasCommand:
		d.errorf(n, "load: give either action (a stimulus such as swipe) or command (such as open)")
		ok = false
	case hasAction:
		f, _ := m.get("action")
		name, good := d.str(f, "action")
		canon, known := stimulusName(name)
		if good && !known {
			d.errorf(f.at(), "load: %q is not a stimulus (known: %s)", name, stimulusNames())
			good = false
		} else if good && l.Kind != "" && stimulusKinds[canon] != l.Kind {
			d.errorf(f.at(), "load: %s applies to a %s, not a %s", name, stimulusKinds[canon], l.Kind)
			good = false
		}
		l.Stimulus, ok = canon, ok && good
	case hasCommand:
		f, _ := m.get("command")
		name, good := d.str(f, "command")
		if good && !contains(commandNames, name) {
			d.errorf(f.at(), "command: %q is not a device command (known: %s)", name, strings.Join(commandNames, ", "))
			good = false
		}
		l.Command, ok = name, ok && good
	}
	if f, has := m.get("args"); has {
		p, good := d.object(f, "args")
		l.Params, ok = p, ok && good
	}
	if f, has := m.get("rate"); has {
		r, good := d.rate(f, "rate")
		l.Rate, ok = r, ok && good
	}
	if f, has := m.get("for"); has {
		v, good := d.positiveDuration(f, "for")
		l.For, ok = v, ok && good
	}
	if ok && l.Rate*l.For.Seconds() > maxLoadActions {
		d.errorf(n, "load: %s/s for %s makes %.0f actions, more than the %d a phase may have", trimFloat(l.Rate), fmtDur(l.For), l.Rate*l.For.Seconds(), maxLoadActions)
		ok = false
	}
	return l, ok
}

// expect decodes one expect mapping: its checks share one window.
func (d *decoder) expect(s *Scenario, st *Step, n ast.Node, stepWithin time.Duration, stepWithinGiven bool) ([]Expectation, bool) {
	m := d.mapping(n, "expect", expectKeys)
	if m == nil {
		return nil, false
	}
	ok := true
	within := stepWithin
	if f, has := m.get("within"); has {
		v, good := d.positiveDuration(f, "within")
		within, ok = v, good
	}
	var checks []string
	for _, k := range m.order {
		if contains(checkKeys, k) {
			checks = append(checks, k)
		}
	}
	if len(checks) == 0 {
		d.errorf(n, "expect: nothing to check (want one of %s)", strings.Join(checkKeys, ", "))
		return nil, false
	}
	if within == 0 {
		if l, isLoad := st.Action.(*LoadPhase); isLoad {
			within = l.For + loadGrace
		} else if ok && !stepWithinGiven && !d.actionBroken {
			d.errorf(n, "expect: missing key \"within\" (how long to wait, e.g. within: 3s)")
			ok = false
		}
	}
	var out []Expectation
	for _, k := range checks {
		f, _ := m.get(k)
		e := Expectation{Pos: f.pos, Within: within, Exactly: -1, Count: 1}
		good := true
		switch k {
		case "publish", "retained", "absent":
			e.Kind = ExpectKind(k)
			e.Match, e.Count, e.Exactly, good = d.match(s, f, k)
		case "order":
			e.Kind = ExpectOrder
			e.Order, good = d.order(s, f)
		case "ack":
			e.Kind = ExpectAck
			e.Result, good = d.ackResult(st, f)
		case "delivered":
			e.Kind = ExpectDelivered
			good = d.delivered(st, f)
		case "p50_latency", "p90_latency", "p99_latency":
			e.Kind = ExpectLatency
			e.Percentile, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(k, "p"), "_latency"), 64)
			e.Limit, good = d.positiveDuration(f, k)
			if good {
				good = d.correlated(st, f, k)
			}
		}
		ok = ok && good
		out = append(out, e)
	}
	return out, ok
}

// match decodes a publish, retained or absent check: a topic filter or a mapping with topic,
// payload, count, exactly, qos and retained.
func (d *decoder) match(s *Scenario, f field, what string) (Match, int, int, bool) {
	mt := Match{QoS: -1}
	count, exactly := 1, -1
	if str, isStr := f.val.(*ast.StringNode); isStr {
		mt.Topic = str.Value
		return mt, count, exactly, d.topicFilter(s, f.at(), what, mt.Topic)
	}
	keys := matchKeys
	if what == "absent" {
		keys = orderKeys
	}
	m := d.mapping(f.at(), what, keys)
	if m == nil {
		return mt, count, exactly, false
	}
	ok := d.matchFields(s, m, f.at(), what, &mt)
	if what == "retained" && mt.Retained != nil {
		rf, _ := m.get("retained")
		d.errorf(rf.node, "retained: every message of a retained check is retained; leave the retained key out")
		ok = false
	}
	if c, has := m.get("count"); has {
		v, good := d.integer(c, "count", 1, maxLoadActions*2)
		count, ok = int(v), ok && good
	}
	if c, has := m.get("exactly"); has {
		v, good := d.integer(c, "exactly", 0, maxLoadActions*2)
		exactly, ok = int(v), ok && good
		if m.has("count") {
			d.errorf(c.node, "%s: give count (at least) or exactly, not both", what)
			ok = false
		}
	}
	return mt, count, exactly, ok
}

func (d *decoder) matchFields(s *Scenario, m *fields, n ast.Node, what string, mt *Match) bool {
	ok := true
	tf, has := m.get("topic")
	if !has {
		d.errorf(n, "%s: missing key \"topic\" (a topic filter, e.g. acs/+/gate/gate-01/state)", what)
		ok = false
	} else if t, good := d.str(tf, "topic"); good {
		mt.Topic = t
		ok = d.topicFilter(s, tf.at(), what, t) && ok
	} else {
		ok = false
	}
	if pf, has := m.get("payload"); has {
		v, good := d.value(pf.val, "payload")
		mt.Payload, mt.HasPayload, ok = v, true, ok && good
	}
	if qf, has := m.get("qos"); has {
		v, good := d.integer(qf, "qos", 0, 2)
		mt.QoS, ok = int(v), ok && good
	}
	if rf, has := m.get("retained"); has {
		v, good := d.boolean(rf, "retained")
		mt.Retained, ok = &v, ok && good
	}
	return ok
}

// topicFilter checks a filter's syntax and, for topics of the device contract
// (acs/{site}/{kind}/{id}/...), that the kind and the device exist.
func (d *decoder) topicFilter(s *Scenario, n ast.Node, what, filter string) bool {
	if err := ValidFilter(filter); err != nil {
		d.errorf(n, "%s: topic filter %q: %s", what, filter, err.Error())
		return false
	}
	levels := strings.Split(filter, "/")
	if len(levels) >= 3 && levels[0] == "acs" && !isWild(levels[2]) && !contains(deviceKinds, levels[2]) {
		d.errorf(n, "%s: topic %q: %q is not a device kind (want one of %s)", what, filter, levels[2], strings.Join(deviceKinds, ", "))
		return false
	}
	if len(levels) >= 4 && levels[0] == "acs" && !isWild(levels[3]) {
		ref, found := s.devices[levels[3]]
		if !found && d.fleetBroken {
			return false
		}
		if !found {
			d.errorf(n, "%s: topic %q names unknown device %q (the fleet has %s)", what, filter, levels[3], summariseIDs(s.order))
			return false
		}
		if !isWild(levels[2]) && ref.Kind != levels[2] {
			d.errorf(n, "%s: topic %q: %s is a %s, not a %s", what, filter, levels[3], ref.Kind, levels[2])
			return false
		}
	}
	return true
}

func isWild(level string) bool { return level == "+" || level == "#" }

func (d *decoder) order(s *Scenario, f field) ([]Match, bool) {
	nodes, ok := d.list(f, "order")
	if !ok {
		return nil, false
	}
	if len(nodes) < 2 {
		d.errorf(f.at(), "order: want at least two messages to put in order")
		return nil, false
	}
	var out []Match
	for _, n := range nodes {
		mt := Match{QoS: -1}
		if str, isStr := n.(*ast.StringNode); isStr {
			mt.Topic = str.Value
			ok = d.topicFilter(s, n, "order", mt.Topic) && ok
		} else if m := d.mapping(n, "order entry", orderKeys); m != nil {
			ok = d.matchFields(s, m, n, "order entry", &mt) && ok
		} else {
			ok = false
		}
		out = append(out, mt)
	}
	return out, ok
}

func (d *decoder) ackResult(st *Step, f field) (string, bool) {
	r, ok := d.str(f, "ack")
	if !ok {
		return "", false
	}
	if r != "ok" && r != "rejected" && r != "failed" {
		d.errorf(f.at(), "ack: %q is not an ack result (want ok, rejected or failed)", r)
		return "", false
	}
	switch a := st.Action.(type) {
	case *Command:
		return r, true
	case *LoadPhase:
		if a.Command != "" {
			return r, true
		}
	}
	if d.actionBroken {
		return "", false
	}
	d.errorf(f.node, "ack: the step sends no command to be acked (ack goes with do: or a load with command:)")
	return "", false
}

func (d *decoder) delivered(st *Step, f field) bool {
	v, ok := d.str(f, "delivered")
	if !ok {
		return false
	}
	if v != "all" {
		d.errorf(f.at(), "delivered: %q is not understood (want all)", v)
		return false
	}
	return d.correlated(st, f, "delivered")
}

// correlated checks that the step's action has a result the run can wait for: an ack for a
// command, an event for a stimulus (see eventFor).
func (d *decoder) correlated(st *Step, f field, what string) bool {
	if d.actionBroken {
		return false
	}
	switch a := st.Action.(type) {
	case *Command:
		return true
	case *Stimulus:
		if _, ok := eventFor(a.Name); !ok {
			d.errorf(f.node, "%s: a %s stimulus publishes no event of its own to wait for", what, a.Name)
			return false
		}
		return true
	case *LoadPhase:
		if a.Command != "" {
			return true
		}
		if _, ok := eventFor(a.Stimulus); !ok {
			d.errorf(f.node, "%s: a %s stimulus publishes no event of its own to wait for", what, a.Stimulus)
			return false
		}
		return true
	}
	d.errorf(f.node, "%s: the step has no command, stimulus or load whose results could be counted", what)
	return false
}

func (d *decoder) rule(s *Scenario, n ast.Node) (Rule, bool) {
	r := Rule{Pos: posOf(n)}
	m := d.mapping(n, "react rule", ruleKeys)
	if m == nil {
		return r, false
	}
	ok := true
	if f, has := m.get("name"); has {
		r.Name, _ = d.str(f, "name")
	}
	if f, has := m.get("on"); !has {
		d.errorf(n, "react rule: missing key \"on\" (the message that triggers it: {topic: ..., payload: ...})")
		ok = false
	} else if om := d.mapping(f.at(), "on", ruleOnKeys); om != nil {
		r.On.QoS = -1
		ok = d.matchFields(s, om, f.at(), "on", &r.On) && ok
	} else {
		ok = false
	}
	_, hasDo := m.get("do")
	_, hasStim := m.get("stimulus")
	switch {
	case hasDo == hasStim:
		d.errorf(n, "react rule: give either do (a command) or stimulus")
		ok = false
	case hasDo:
		f, _ := m.get("do")
		c, good := d.command(s, f.at(), true)
		r.Command, ok = c, ok && good
	default:
		f, _ := m.get("stimulus")
		st, good := d.stimulus(s, f.at(), true)
		r.Stimulus, ok = st, ok && good
	}
	if f, has := m.get("delay"); has {
		v, good := d.duration(f, "delay")
		if good && v < 0 {
			d.errorf(f.at(), "delay: %s is negative", fmtDur(v))
			good = false
		}
		r.Delay, ok = v, ok && good
	}
	if f, has := m.get("max"); has {
		v, good := d.integer(f, "max", 1, maxLoadActions)
		r.Max, ok = int(v), ok && good
	}
	return r, ok
}

// timeline checks the steps against the scenario's end and returns that end: the declared one, or
// the latest moment a step acts or waits.
func (d *decoder) timeline(s *Scenario, declared time.Duration) time.Duration {
	var last time.Duration
	for _, st := range s.Steps {
		span := st.At
		if l, ok := st.Action.(*LoadPhase); ok {
			span += l.For
		}
		if f, ok := st.Action.(*Fault); ok && f.Broker && recoveryOf(f.Fault.Kind) != "" {
			// The fault's end is an action of the timeline too.
			span += f.Fault.Duration
		}
		if declared > 0 && span > declared {
			switch st.Action.(type) {
			case *LoadPhase:
				d.errorAt(st.Pos, "step %d's load runs until %s, after the scenario's end at %s", st.Index, fmtDur(span), fmtDur(declared))
			case *Fault:
				d.errorAt(st.Pos, "step %d's broker fault lasts until %s, after the scenario's end at %s", st.Index, fmtDur(span), fmtDur(declared))
			default:
				d.errorAt(st.Pos, "step %d at %s is after the scenario's end at %s", st.Index, fmtDur(st.At), fmtDur(declared))
			}
			continue
		}
		for _, e := range st.Expect {
			end := st.At + e.Within
			if declared > 0 && end > declared {
				d.errorAt(e.Pos, "%s of step %d waits until %s, after the scenario's end at %s", e.Kind, st.Index, fmtDur(end), fmtDur(declared))
			}
			if end > span {
				span = end
			}
		}
		if span > last {
			last = span
		}
	}
	if declared > 0 {
		return declared
	}
	if last > maxDuration {
		d.errorAt(Pos{1, 1}, "the scenario would last %s, longer than the %s a scenario may last", fmtDur(last), fmtDur(maxDuration))
	}
	return last
}
