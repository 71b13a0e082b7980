package scenario

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/report"
)

// maxFirings bounds a react rule without max, so that two rules answering each other cannot run
// away.
const maxFirings = 100000

// react plays the platform's part: it follows the observer's record and, for every message a rule
// matches, sends the rule's command or applies its stimulus.
func (r *run) react(ctx context.Context) {
	next := 0
	for {
		msgs, changed := r.obs.snapshot()
		for ; next < len(msgs); next++ {
			for i := range r.s.React {
				if ok, _ := r.s.React[i].On.Matches(msgs[next]); ok {
					r.fire(ctx, i, msgs[next])
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (r *run) fire(ctx context.Context, i int, m Observed) {
	rule := &r.s.React[i]
	r.mu.Lock()
	n := r.fired[i]
	if (rule.Max > 0 && n >= rule.Max) || n >= maxFirings {
		r.mu.Unlock()
		return
	}
	r.fired[i] = n + 1
	r.mu.Unlock()

	var planned []Planned
	targets, name, args, kind := rule.targets(), "", map[string]any(nil), ActCommand
	if rule.Command != nil {
		name, args = rule.Command.Name, rule.Command.Args
	} else {
		kind, name, args = ActStimulus, rule.Stimulus.Name, rule.Stimulus.Params
	}
	for k, id := range r.expandTargets(targets, m) {
		p := Planned{Index: -1, Step: -(i + 1), At: m.Time.Sub(r.t0) + rule.Delay, Kind: kind, Device: id, Name: name, Args: expandArgs(args, m)}
		if kind == ActCommand {
			p.Corr = reactCorr(r.seed, i, n, k)
		}
		if _, known := r.s.devices[id]; !known {
			r.mu.Lock()
			r.reactDone = append(r.reactDone, Done{Planned: p, Time: time.Now(), Err: fmt.Errorf("the matched message names device %q, which is not in the fleet", id)})
			r.mu.Unlock()
			continue
		}
		planned = append(planned, p)
	}
	source := rule.Label()
	carry := func() {
		if lag := time.Since(m.Time) - rule.Delay; lag > 0 {
			r.mu.Lock()
			r.reactLag = max(r.reactLag, lag)
			r.mu.Unlock()
		}
		for _, p := range planned {
			d := r.carryOut(ctx, p, source, n >= 10 && n%100 != 0)
			r.mu.Lock()
			r.reactDone = append(r.reactDone, d)
			r.mu.Unlock()
		}
	}
	if rule.Delay <= 0 && rule.Command == nil {
		carry()
		return
	}
	if rule.Delay <= 0 {
		// A command waits for the broker's PUBACK; the rules must keep reading meanwhile.
		r.spawn(carry)
		return
	}
	r.spawn(func() {
		t := time.NewTimer(rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			carry()
		case <-ctx.Done():
			r.eventOutcome(source, report.Skip, "run ended before the delayed action")
		}
	})
}

func (rule *Rule) targets() Targets {
	if rule.Command != nil {
		return rule.Command.Targets
	}
	return rule.Stimulus.Targets
}

func (r *run) expandTargets(t Targets, m Observed) []string {
	if t.Every != "" {
		return r.s.DevicesOfKind(t.Every)
	}
	ids := t.Devices
	if t.Device != "" {
		ids = []string{t.Device}
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprint(expand(id, m, false))
	}
	return out
}

func reactCorr(seed uint64, rule, n, k int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d", seed)
	return fmt.Sprintf("g%08x-r%d-%d-%d", h.Sum32(), rule+1, n+1, k+1)
}

// expandArgs replaces placeholders in string arguments. An argument that is exactly one
// "{payload.NAME}" takes the payload field with its type (a number stays a number).
func expandArgs(args map[string]any, m Observed) map[string]any {
	if len(args) == 0 {
		return nil
	}
	out := make(map[string]any, len(args))
	for k, v := range args {
		out[k] = expandValue(v, m)
	}
	return out
}

func expandValue(v any, m Observed) any {
	switch x := v.(type) {
	case string:
		return expand(x, m, true)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expandValue(e, m)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expandValue(e, m)
		}
		return out
	}
	return v
}

// expand replaces {site}, {kind}, {device} (levels 2 to 4 of a device contract topic) and
// {payload.NAME} in s.
func expand(s string, m Observed, typed bool) any {
	if !strings.Contains(s, "{") {
		return s
	}
	levels := strings.Split(m.Topic, "/")
	level := func(i int) string {
		if i < len(levels) {
			return levels[i]
		}
		return ""
	}
	var payload map[string]any
	if v, ok := DecodePayload(m.Payload); ok {
		payload, _ = v.(map[string]any)
	}
	if typed && strings.HasPrefix(s, "{payload.") && strings.HasSuffix(s, "}") && strings.Count(s, "{") == 1 {
		if v, ok := payload[s[len("{payload."):len(s)-1]]; ok {
			return v
		}
	}
	out := strings.NewReplacer("{site}", level(1), "{kind}", level(2), "{device}", level(3)).Replace(s)
	for k, v := range payload {
		out = strings.ReplaceAll(out, "{payload."+k+"}", fmt.Sprint(v))
	}
	return out
}
