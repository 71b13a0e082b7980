package bench

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"periph.io/x/conn/v3/gpio"
)

// validator checks a decoded bench against the rules a bench must keep, collecting every problem.
type validator struct {
	file string
	ast  *ast.File
	errs ErrorList
}

func (v *validator) errAt(p pos, path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: p.line, Column: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// nodePos returns where the node at path (e.g. "relays[0]") starts, for problems about something
// that is missing from it.
func (v *validator) nodePos(path string) pos {
	for path != "" {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(v.ast); err == nil && n != nil {
				return tokenPos(n.GetToken())
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return pos{1, 1}
}

// required reports a missing key of the mapping at parent.
func (v *validator) required(s pstr, parent, key, what string) bool {
	if s.set && s.v != "" {
		return true
	}
	p := s.at
	if !s.set {
		p = v.nodePos(parent)
	}
	v.errAt(p, join(parent, key), "required: %s", what)
	return false
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (v *validator) name(s pstr, path string) bool {
	if !v.required(s, path[:max(0, strings.LastIndex(path, "."))], path[strings.LastIndex(path, ".")+1:], "a name in lower_snake_case") {
		return false
	}
	if !nameRE.MatchString(s.v) {
		v.errAt(s.at, path, "expected a name in lower_snake_case (letters, digits, _), got %q", s.v)
		return false
	}
	return true
}

func (v *validator) bench(raw *rawBench) *Bench {
	b := &Bench{Name: raw.Name.v, Limits: DefaultLimits, Sim: DefaultSim}
	terms := v.controller(raw.Controller, b)
	names := map[string]string{} // relay and input names → "relay" or "input"
	namePos := map[string]pos{}
	pins := map[string]string{} // driver/pin → the path that claimed it first
	claim := func(kind, path string, n pstr) {
		if n.v == "" {
			return
		}
		if prev, dup := names[n.v]; dup {
			v.errAt(n.at, path, "%s name %q is already used by a %s at line %d; relay and input names must be unique", kind, n.v, prev, namePos[n.v].line)
			return
		}
		names[n.v] = kind
		namePos[n.v] = n.at
	}
	for i, r := range raw.Relays {
		path := fmt.Sprintf("relays[%d]", i)
		if v.name(r.Name, path+".name") {
			claim("relay", path+".name", r.Name)
		}
		rel := Relay{Name: r.Name.v, Active: gpio.High, MaxPulse: r.MaxPulse.v}
		rel.Driver = v.driver(r.Driver, path)
		rel.Pin = v.pin(rel.Driver, r.Pin, path, pins)
		if r.Active.set {
			rel.Active = v.level(r.Active, path+".active")
		}
		if !r.MaxPulse.set || r.MaxPulse.v <= 0 {
			p := r.MaxPulse.at
			if !r.MaxPulse.set {
				p = v.nodePos(path)
			}
			v.errAt(p, path+".max_pulse", "required: the longest the relay may stay energised, a duration above zero like 2s")
		}
		b.Relays = append(b.Relays, rel)
	}
	for i, r := range raw.Inputs {
		path := fmt.Sprintf("inputs[%d]", i)
		if v.name(r.Name, path+".name") {
			claim("input", path+".name", r.Name)
		}
		in := Input{Name: r.Name.v, Active: gpio.High, Pull: gpio.Float, Edge: gpio.BothEdges, Debounce: r.Debounce.v}
		in.Driver = v.driver(r.Driver, path)
		in.Pin = v.pin(in.Driver, r.Pin, path, pins)
		if r.Active.set {
			in.Active = v.level(r.Active, path+".active")
		}
		if r.Pull.set {
			in.Pull = enum(v, r.Pull, path+".pull", map[string]gpio.Pull{"up": gpio.PullUp, "down": gpio.PullDown, "none": gpio.Float})
		}
		if r.Edge.set {
			in.Edge = enum(v, r.Edge, path+".edge", map[string]gpio.Edge{"rising": gpio.RisingEdge, "falling": gpio.FallingEdge, "both": gpio.BothEdges})
		}
		b.Inputs = append(b.Inputs, in)
	}
	v.wiring(raw.Wiring, b, terms, names)
	for i, il := range raw.Interlocks {
		b.Interlocks = append(b.Interlocks, v.interlock(il, fmt.Sprintf("interlocks[%d]", i), names))
	}
	for i, lb := range raw.Loopback {
		path := fmt.Sprintf("loopback[%d]", i)
		if v.ref(lb.Relay, path, "relay", "relay", names) && v.ref(lb.Input, path, "input", "input", names) {
			b.Loopbacks = append(b.Loopbacks, Loopback{Relay: lb.Relay.v, Input: lb.Input.v})
		}
	}
	v.limits(raw.Limits, &b.Limits)
	v.sim(raw.Sim, &b.Sim)
	return b
}

func (v *validator) controller(raw *rawController, b *Bench) Terminals {
	if raw == nil {
		v.errAt(pos{1, 1}, "controller", "required: the controller under test (kind, site, id, broker, keepalive)")
		return Terminals{}
	}
	c := Controller{Kind: raw.Kind.v, Site: raw.Site.v, ID: raw.ID.v, ClientID: raw.ClientID.v, Broker: raw.Broker.v, Keepalive: raw.Keepalive.v}
	var terms Terminals
	if v.required(raw.Kind, "controller", "kind", "the controller kind ("+strings.Join(kinds(), ", ")+")") {
		t, ok := ControllerKinds[c.Kind]
		if !ok {
			v.errAt(raw.Kind.at, "controller.kind", "unknown controller kind %q; expected one of: %s", c.Kind, strings.Join(kinds(), ", "))
		}
		terms = t
	}
	topicPart := regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	for _, f := range []struct {
		s    pstr
		key  string
		what string
	}{{raw.Site, "site", "the site in its topics, acs/{site}/..."}, {raw.ID, "id", "the device id in its topics, acs/{site}/{kind}/{id}/..."}} {
		if v.required(f.s, "controller", f.key, f.what) && !topicPart.MatchString(f.s.v) {
			v.errAt(f.s.at, "controller."+f.key, "expected letters, digits, '.', '_' or '-' (no '/', '+' or '#': it is one topic level), got %q", f.s.v)
		}
	}
	if c.ClientID == "" {
		c.ClientID = c.ID
	}
	if v.required(raw.Broker, "controller", "broker", "embedded, mosquitto, or the broker the controller uses as mqtt://host:port") && c.Broker != "embedded" && c.Broker != "mosquitto" {
		u, err := url.Parse(c.Broker)
		if err != nil || !slices.Contains([]string{"mqtt", "tcp", "mqtts", "ssl", "tls"}, u.Scheme) || u.Host == "" {
			v.errAt(raw.Broker.at, "controller.broker", "expected embedded (the reference broker, in process), mosquitto (Debian's, started for the run) or a broker URL like mqtt://127.0.0.1:1883, got %q", c.Broker)
		}
	}
	if !raw.Keepalive.set || raw.Keepalive.v < time.Second || raw.Keepalive.v%time.Second != 0 {
		p := raw.Keepalive.at
		if !raw.Keepalive.set {
			p = v.nodePos("controller")
		}
		v.errAt(p, "controller.keepalive", "required: the controller's MQTT keepalive, whole seconds of at least 1s (MQTT-3.1.2-24 counts it in seconds)")
	}
	b.Controller = c
	return terms
}

func kinds() []string {
	var ks []string
	for k := range ControllerKinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (v *validator) driver(s pstr, parent string) Driver {
	names := make([]string, len(Drivers))
	for i, d := range Drivers {
		names[i] = string(d)
	}
	if !v.required(s, parent, "driver", "the GPIO driver, one of: "+strings.Join(names, ", ")) {
		return ""
	}
	if !slices.Contains(Drivers, Driver(s.v)) {
		v.errAt(s.at, parent+".driver", "unknown driver %q; expected one of: %s", s.v, strings.Join(names, ", "))
		return ""
	}
	return Driver(s.v)
}

// Pin names by driver: what each driver can open.
var (
	gpiochipPinRE = regexp.MustCompile(`^(gpiochip[0-9]+)/([0-9]+|[A-Za-z][A-Za-z0-9_-]*)$`)
	rpiPinRE      = regexp.MustCompile(`^(GPIO([0-9]+)|P1_([0-9]+))$`)
	sysfsPinRE    = regexp.MustCompile(`^(GPIO)?([0-9]+)$`)
	simPinRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

// PinForms says, per driver, how a pin is written in a bench file.
var PinForms = map[Driver]string{
	GPIOChip: "gpiochipN/LINE, LINE being a line offset or a line name (e.g. gpiochip0/17, gpiochip0/GPIO17)",
	RPi:      "GPIOn (BCM numbering, 0-53) or P1_n (header pin, 1-40)",
	Sysfs:    "GPIOn or n (the kernel GPIO number)",
	Sim:      "a name of letters, digits and _ (e.g. R1, S3)",
}

// canonicalPin returns the pin in one spelling so that duplicates are found, or "" if it is not a
// pin of that driver.
func canonicalPin(d Driver, pin string) string {
	switch d {
	case GPIOChip:
		if gpiochipPinRE.MatchString(pin) {
			return pin
		}
	case RPi:
		m := rpiPinRE.FindStringSubmatch(pin)
		if m == nil {
			return ""
		}
		if m[2] != "" {
			if n, _ := strconv.Atoi(m[2]); n <= 53 {
				return "GPIO" + strconv.Itoa(n)
			}
			return ""
		}
		if n, _ := strconv.Atoi(m[3]); n >= 1 && n <= 40 {
			return "P1_" + strconv.Itoa(n)
		}
	case Sysfs:
		if m := sysfsPinRE.FindStringSubmatch(pin); m != nil {
			n, _ := strconv.Atoi(m[2])
			return "GPIO" + strconv.Itoa(n)
		}
	case Sim:
		if simPinRE.MatchString(pin) {
			return pin
		}
	}
	return ""
}

func (v *validator) pin(d Driver, s pstr, parent string, claimed map[string]string) string {
	if !v.required(s, parent, "pin", "the pin, written as the driver expects it") || d == "" {
		return s.v
	}
	c := canonicalPin(d, s.v)
	if c == "" {
		v.errAt(s.at, parent+".pin", "%q is not a %s pin; expected %s", s.v, d, PinForms[d])
		return s.v
	}
	key := string(d) + "/" + c
	if prev, dup := claimed[key]; dup {
		v.errAt(s.at, parent+".pin", "pin %s %s is already used by %s; one pin drives one relay or reads one input", d, s.v, prev)
		return s.v
	}
	claimed[key] = parent
	return s.v
}

func (v *validator) level(s pstr, path string) gpio.Level {
	switch s.v {
	case "high":
		return gpio.High
	case "low":
		return gpio.Low
	}
	v.errAt(s.at, path, "expected high or low, got %q", s.v)
	return gpio.High
}

func enum[T any](v *validator, s pstr, path string, values map[string]T) T {
	if x, ok := values[s.v]; ok {
		return x
	}
	var keys []string
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	v.errAt(s.at, path, "expected one of %s, got %q", strings.Join(keys, ", "), s.v)
	var zero T
	return zero
}

// ref checks that s names an existing relay or input (want).
func (v *validator) ref(s pstr, parent, key, want string, names map[string]string) bool {
	if !v.required(s, parent, key, "the name of a "+want+" of this bench") {
		return false
	}
	kind, ok := names[s.v]
	if !ok {
		v.errAt(s.at, parent+"."+key, "unknown %s %q; expected one of: %s", want, s.v, strings.Join(namesOf(names, want), ", "))
		return false
	}
	if kind != want {
		v.errAt(s.at, parent+"."+key, "%q is a %s, expected a %s (one of: %s)", s.v, kind, want, strings.Join(namesOf(names, want), ", "))
		return false
	}
	return true
}

func namesOf(names map[string]string, kind string) []string {
	var out []string
	for n, k := range names {
		if k == kind {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return []string{"none declared"}
	}
	return out
}

func (v *validator) terminal(s pstr, parent string, allowed []string, dir string) bool {
	if !v.required(s, parent, "terminal", "a controller "+dir+" terminal") {
		return false
	}
	if allowed == nil { // unknown kind, already reported
		return false
	}
	if !slices.Contains(allowed, s.v) {
		v.errAt(s.at, parent+".terminal", "unknown controller %s terminal %q; expected one of: %s", dir, s.v, strings.Join(allowed, ", "))
		return false
	}
	return true
}

func (v *validator) wiring(raw *rawWiring, b *Bench, terms Terminals, names map[string]string) {
	if raw == nil { // a bench without wiring can still run its self-test
		return
	}
	usedTerm := map[string]string{}
	usedRelay := map[string]string{}
	for i, w := range raw.ToController {
		path := fmt.Sprintf("wiring.to_controller[%d]", i)
		okR := v.ref(w.Relay, path, "relay", "relay", names)
		okT := v.terminal(w.Terminal, path, terms.Inputs, "input")
		contact := NormallyOpen
		if w.Contact.set {
			contact = enum(v, w.Contact, path+".contact", map[string]Contact{"no": NormallyOpen, "nc": NormallyClosed})
		}
		if !okR || !okT {
			continue
		}
		if prev, dup := usedTerm[w.Terminal.v]; dup {
			v.errAt(w.Terminal.at, path+".terminal", "terminal %q is already driven by %s; one relay per terminal", w.Terminal.v, prev)
			continue
		}
		if prev, dup := usedRelay[w.Relay.v]; dup {
			v.errAt(w.Relay.at, path+".relay", "relay %q is already wired at %s; one terminal per relay", w.Relay.v, prev)
			continue
		}
		usedTerm[w.Terminal.v], usedRelay[w.Relay.v] = path, path
		b.Drive = append(b.Drive, DriveWire{Relay: w.Relay.v, Terminal: w.Terminal.v, Contact: contact})
	}
	usedOut := map[string]string{}
	usedInput := map[string]string{}
	for i, w := range raw.FromController {
		path := fmt.Sprintf("wiring.from_controller[%d]", i)
		okT := v.terminal(w.Terminal, path, terms.Outputs, "output")
		okI := v.ref(w.Input, path, "input", "input", names)
		if !okT || !okI {
			continue
		}
		if prev, dup := usedInput[w.Input.v]; dup {
			v.errAt(w.Input.at, path+".input", "input %q already reads the terminal wired at %s; one terminal per input", w.Input.v, prev)
			continue
		}
		if prev, dup := usedOut[w.Terminal.v]; dup {
			v.errAt(w.Terminal.at, path+".terminal", "terminal %q is already read at %s", w.Terminal.v, prev)
			continue
		}
		usedOut[w.Terminal.v], usedInput[w.Input.v] = path, path
		b.Sense = append(b.Sense, SenseWire{Terminal: w.Terminal.v, Input: w.Input.v})
	}
}

func (v *validator) interlock(raw rawInterlock, path string, names map[string]string) Interlock {
	var il Interlock
	if len(raw.NeverTogether) < 2 {
		v.errAt(v.nodePos(path), path+".never_together", "required: at least two relays (or two inputs) that must never be active together")
		return il
	}
	kind := ""
	for i, n := range raw.NeverTogether {
		p := fmt.Sprintf("%s.never_together[%d]", path, i)
		k, ok := names[n.v]
		if !ok {
			v.errAt(n.at, p, "interlock names unknown relay %q; expected relays (%s) or inputs (%s)", n.v, strings.Join(namesOf(names, "relay"), ", "), strings.Join(namesOf(names, "input"), ", "))
			continue
		}
		if kind == "" {
			kind = k
		} else if k != kind {
			v.errAt(n.at, p, "interlock mixes relays and inputs: %q is %s, the first member %s", n.v, article(k), article(kind))
			continue
		}
		if k == "relay" {
			il.Relays = append(il.Relays, n.v)
		} else {
			il.Inputs = append(il.Inputs, n.v)
		}
	}
	return il
}

func (v *validator) limits(raw *rawLimits, l *Limits) {
	if raw == nil {
		return
	}
	for _, f := range []struct {
		d   pdur
		key string
		dst *time.Duration
	}{
		{raw.CommandToLock, "command_to_lock", &l.CommandToLock},
		{raw.ButtonToEvent, "button_to_event", &l.ButtonToEvent},
		{raw.PhotoEyeReverse, "photo_eye_reverse", &l.PhotoEyeReverse},
		{raw.Pulse, "pulse", &l.Pulse},
	} {
		if !f.d.set {
			continue
		}
		if f.d.v <= 0 {
			v.errAt(f.d.at, "limits."+f.key, "expected a duration above zero")
			continue
		}
		*f.dst = f.d.v
	}
	if raw.WillFactor.set {
		if raw.WillFactor.v < 1 || raw.WillFactor.v > 10 {
			v.errAt(raw.WillFactor.at, "limits.will_factor", "expected a factor of keepalive between 1 and 10 (MQTT-3.1.2-24 allows 1.5), got %g", raw.WillFactor.v)
		} else {
			l.WillFactor = raw.WillFactor.v
		}
	}
}

func (v *validator) sim(raw *rawSim, s *SimOptions) {
	if raw == nil {
		return
	}
	if raw.Seed.set {
		s.Seed = raw.Seed.v
	}
	if raw.Propagation.set {
		s.Propagation = raw.Propagation.v
	}
	if raw.Bounce.set {
		if raw.Bounce.v < 0 || raw.Bounce.v > 20 {
			v.errAt(raw.Bounce.at, "sim.bounce", "expected 0 to 20 extra edges of contact bounce, got %d", raw.Bounce.v)
		} else {
			s.Bounce = int(raw.Bounce.v)
		}
	}
	if raw.BounceSpan.set {
		s.BounceSpan = raw.BounceSpan.v
	}
	if raw.Travel.set {
		if raw.Travel.v <= 0 {
			v.errAt(raw.Travel.at, "sim.travel", "expected a gate travel time above zero")
		} else {
			s.Travel = raw.Travel.v
		}
	}
}

func article(kind string) string {
	if kind == "input" {
		return "an input"
	}
	return "a " + kind
}
