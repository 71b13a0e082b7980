package fleet

import (
	"fmt"
	"slices"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
)

// SpecError is a problem in a Spec, with the path of the field at fault (e.g. "groups[1].count",
// as goccy/go-yaml paths write it without the leading "$."), so that a file decoder can turn it
// into file:line:column.
type SpecError struct {
	Path string
	Msg  string
}

func (e *SpecError) Error() string { return "fleet: " + e.Path + ": " + e.Msg }

// Validate checks a Spec without building anything.
func Validate(s Spec) error {
	if len(s.Groups) == 0 {
		return &SpecError{Path: "groups", Msg: "no groups: want at least one {kind, count}"}
	}
	if s.ConnectRate < 0 {
		return &SpecError{Path: "connect_rate", Msg: fmt.Sprintf("%v is negative", s.ConnectRate)}
	}
	if s.Broker != "" {
		if err := (device.Config{ID: "x", Broker: s.Broker}).Validate(); err != nil {
			return &SpecError{Path: "broker", Msg: err.Error()[len("device x: "):]}
		}
	}
	ids := map[string]string{}
	for i, g := range s.Groups {
		at := func(field string) string { return fmt.Sprintf("groups[%d].%s", i, field) }
		if !slices.Contains(device.Kinds, g.Kind) {
			return &SpecError{Path: at("kind"), Msg: fmt.Sprintf("kind %q is unknown (want gate, turnstile or camera)", g.Kind)}
		}
		if g.Count < 1 {
			return &SpecError{Path: at("count"), Msg: fmt.Sprintf("count %d: want at least 1", g.Count)}
		}
		if g.FailRate < 0 || g.FailRate > 1 {
			return &SpecError{Path: at("fail_rate"), Msg: fmt.Sprintf("%v is outside 0..1", g.FailRate)}
		}
		if g.MisreadRate < 0 || g.MisreadRate > 1 {
			return &SpecError{Path: at("misread_rate"), Msg: fmt.Sprintf("%v is outside 0..1", g.MisreadRate)}
		}
		if g.Role != "" && (g.Kind != device.KindGate || (g.Role != "entry" && g.Role != "exit")) {
			return &SpecError{Path: at("role"), Msg: fmt.Sprintf("role %q: only gates have a role, entry or exit", g.Role)}
		}
		if g.Keepalive < 0 {
			return &SpecError{Path: at("keepalive"), Msg: "negative"}
		}
		tmpl := g.ID
		if tmpl == "" {
			tmpl = "{kind}-{n:03}"
		}
		for n := 1; n <= g.Count; n++ {
			id, err := ExpandID(tmpl, g.Kind, device.ExpandPrefix("{site}", g.Site), n)
			if err != nil {
				return &SpecError{Path: at("id"), Msg: err.Error()}
			}
			if prev, dup := ids[id]; dup {
				return &SpecError{Path: at("id"), Msg: fmt.Sprintf("device id %q is already used by %s", id, prev)}
			}
			ids[id] = fmt.Sprintf("groups[%d]", i)
		}
	}
	return nil
}
