package scenario

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/report"
)

// Observed is one message the observer received, stamped on arrival.
type Observed struct {
	N        int // arrival order, from 0
	Time     time.Time
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	Dup      bool
}

// Done is a planned action as it was carried out.
type Done struct {
	Planned
	Time time.Time // when it was carried out (stimulus applied, command published)
	Err  error     // why it could not be carried out, if it could not
	// Results are the messages the action must cause, each to be observed once: the ack of a
	// command, the event of a stimulus (an exit gate's passage also bills a charge at QoS 2).
	Results []Result
}

// Result is a message an action must cause.
type Result struct {
	Topic string // exact topic name
	Field string // payload field that identifies it ("corr", "card", "plate"); empty: paired in order
	Value any    // the field's value
	QoS2  bool   // exactly once: a duplicate is a failure
}

// Verdict is the state of an expectation.
type Verdict int

// Verdicts. A pending expectation is judged again when more is observed or its window ends.
const (
	Pending Verdict = iota
	Met
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Pending:
		return "pending"
	case Met:
		return "met"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Judgement is the verdict on one expectation with what supports it.
type Judgement struct {
	Verdict      Verdict
	Observed     string   // for a failure: what was observed instead
	Evidence     []string // the observed messages that matter, one per line
	Measurements []report.Measurement
}

// Window is the time an expectation is judged over, and the run's start for readable offsets.
type Window struct {
	Start    time.Time // the run's start (time zero of the timeline)
	From, To time.Time
}

func (w Window) off(t time.Time) string { return fmt.Sprintf("+%.3fs", t.Sub(w.Start).Seconds()) }

func (w Window) span() string { return fmt.Sprintf("[%s, %s]", w.off(w.From), w.off(w.To)) }

// line renders one observed message for evidence and messages.
func (w Window) line(m Observed) string {
	flags := fmt.Sprintf("q%d", m.QoS)
	if m.Retained {
		flags += " retained"
	}
	if m.Dup {
		flags += " dup"
	}
	return fmt.Sprintf("%s %s %s %s", w.off(m.Time), m.Topic, flags, quoteShort(m.Payload))
}

// inWindow returns the messages received within [From, To]; msgs are in arrival order, so the
// times do not decrease.
func inWindow(msgs []Observed, w Window) []Observed {
	lo := sort.Search(len(msgs), func(i int) bool { return !msgs[i].Time.Before(w.From) })
	hi := sort.Search(len(msgs), func(i int) bool { return msgs[i].Time.After(w.To) })
	if hi < lo {
		return nil
	}
	return msgs[lo:hi]
}

// Matches reports whether an observed message satisfies the match, and if not, why. Unless the
// match asks for retained messages, a retained replay (a message sent because a subscription was
// made, MQTT-3.3.1-8) is not a publication: it may be days old.
func (m Match) Matches(o Observed) (bool, string) {
	if !MatchTopic(m.Topic, o.Topic) {
		return false, "topic"
	}
	if m.Retained == nil && o.Retained && !m.snapshot {
		return false, "a retained replay, not a publication"
	}
	if m.QoS >= 0 && int(o.QoS) != m.QoS {
		return false, fmt.Sprintf("qos is %d, want %d", o.QoS, m.QoS)
	}
	if m.Retained != nil && o.Retained != *m.Retained {
		return false, fmt.Sprintf("retained is %t, want %t", o.Retained, *m.Retained)
	}
	return m.PayloadMatches(o.Payload)
}

// maxEvidence bounds the evidence lines of one expectation; a run with thousands of messages
// must still give a readable report.
const maxEvidence = 40

// Judge evaluates an expectation against the messages observed so far (in arrival order) and the
// actions of its step. final says the window is over: an expectation still short of its goal then
// fails. Retained expectations are judged by JudgeRetained instead.
func Judge(e *Expectation, w Window, msgs []Observed, done []Done, final bool) Judgement {
	switch e.Kind {
	case ExpectPublish:
		return judgePublish(e, w, msgs, final)
	case ExpectAbsent:
		return judgeAbsent(e, w, msgs, final)
	case ExpectOrder:
		return judgeOrder(e, w, msgs, final)
	case ExpectAck:
		return judgeAck(e, w, msgs, done, final)
	case ExpectDelivered, ExpectLatency:
		return judgeDelivered(e, w, msgs, done, final)
	case ExpectRetained:
		return Judgement{Verdict: Failed, Observed: "a retained expectation needs a fresh subscription (JudgeRetained)"}
	}
	return Judgement{Verdict: Failed, Observed: fmt.Sprintf("unknown expectation %q", e.Kind)}
}

func judgePublish(e *Expectation, w Window, msgs []Observed, final bool) Judgement {
	win := inWindow(msgs, w)
	var hits []Observed
	for _, m := range win {
		if ok, _ := e.Match.Matches(m); ok {
			hits = append(hits, m)
		}
	}
	j := Judgement{Evidence: evidence(w, hits)}
	if e.Exactly >= 0 {
		switch {
		case len(hits) > e.Exactly:
			j.Verdict = Failed
			j.Observed = fmt.Sprintf("%d matching messages, more than exactly %d: %s", len(hits), e.Exactly, lines(w, hits, 5))
		case !final:
			j.Verdict = Pending
		case len(hits) == e.Exactly:
			j.Verdict = Met
		default:
			j.Verdict = Failed
			j.Observed = fmt.Sprintf("%d matching messages, want exactly %d; %s", len(hits), e.Exactly, nearMisses(e.Match, w, msgs, win))
		}
		j.Measurements = []report.Measurement{report.Measure("matching messages", float64(len(hits)), "", report.Between(float64(e.Exactly), float64(e.Exactly)))}
		return j
	}
	if len(hits) >= e.Count {
		j.Verdict = Met
		after := hits[e.Count-1].Time.Sub(w.From)
		j.Measurements = []report.Measurement{report.MeasureDuration("time to match", after, report.AtMost(ms(e.Within)))}
		return j
	}
	if !final {
		return Judgement{Verdict: Pending}
	}
	j.Verdict = Failed
	if len(hits) > 0 {
		j.Observed = fmt.Sprintf("only %d of %d matching messages (%s); %s", len(hits), e.Count, lines(w, hits, 5), nearMisses(e.Match, w, msgs, win))
	} else {
		j.Observed = nearMisses(e.Match, w, msgs, win)
	}
	j.Evidence = evidence(w, onTopic(e.Match, win))
	return j
}

// nearMisses says what was observed instead of a match: messages on the topic that did not
// match (and why), or that the topic was silent, with the last message before the window.
func nearMisses(m Match, w Window, all, win []Observed) string {
	near := onTopic(m, win)
	var misses []string
	for _, o := range near {
		if ok, why := m.Matches(o); !ok {
			misses = append(misses, fmt.Sprintf("%s (%s)", w.line(o), why))
		}
	}
	if len(misses) > 0 {
		more := ""
		if len(misses) > 3 {
			more = fmt.Sprintf(" and %d more", len(misses)-3)
			misses = misses[len(misses)-3:]
		}
		return fmt.Sprintf("%d other message(s) on %s in the window %s, e.g. %s%s", len(near)-countMatching(m, near), m.Topic, w.span(), strings.Join(misses, "; "), more)
	}
	if len(near) > 0 {
		return fmt.Sprintf("every message on %s in the window %s matched; there were not enough of them", m.Topic, w.span())
	}
	var before *Observed
	for i := range all {
		if all[i].Time.Before(w.From) && MatchTopic(m.Topic, all[i].Topic) {
			before = &all[i]
		}
	}
	if before != nil {
		return fmt.Sprintf("no message on %s in the window %s (the last one before it: %s)", m.Topic, w.span(), w.line(*before))
	}
	return fmt.Sprintf("no message on %s in the window %s, nor before it", m.Topic, w.span())
}

func countMatching(m Match, msgs []Observed) int {
	n := 0
	for _, o := range msgs {
		if ok, _ := m.Matches(o); ok {
			n++
		}
	}
	return n
}

func onTopic(m Match, msgs []Observed) []Observed {
	var out []Observed
	for _, o := range msgs {
		if MatchTopic(m.Topic, o.Topic) {
			out = append(out, o)
		}
	}
	return out
}

func judgeAbsent(e *Expectation, w Window, msgs []Observed, final bool) Judgement {
	for _, o := range inWindow(msgs, w) {
		if ok, _ := e.Match.Matches(o); ok {
			return Judgement{Verdict: Failed, Observed: "a matching message: " + w.line(o), Evidence: []string{w.line(o)}}
		}
	}
	if !final {
		return Judgement{Verdict: Pending}
	}
	return Judgement{Verdict: Met}
}

func judgeOrder(e *Expectation, w Window, msgs []Observed, final bool) Judgement {
	win := inWindow(msgs, w)
	k := 0
	var seen []Observed
	for _, o := range win {
		if k < len(e.Order) {
			if ok, _ := e.Order[k].Matches(o); ok {
				seen = append(seen, o)
				k++
			}
		}
	}
	j := Judgement{Evidence: evidence(w, seen)}
	if k == len(e.Order) {
		j.Verdict = Met
		return j
	}
	if !final {
		return Judgement{Verdict: Pending}
	}
	j.Verdict = Failed
	after := w.From
	if len(seen) > 0 {
		after = seen[len(seen)-1].Time
	}
	// Say whether the missing message came at all, perhaps too early: that is an order fault.
	var early []Observed
	for _, o := range win {
		if ok, _ := e.Order[k].Matches(o); ok && !o.Time.After(after) {
			early = append(early, o)
		}
	}
	prefix := "nothing in order"
	if k > 0 {
		prefix = fmt.Sprintf("the first %d in order (%s)", k, lines(w, seen, 3))
	}
	if len(early) > 0 {
		j.Observed = fmt.Sprintf("%s, but %s came too early, before the one it must follow: %s", prefix, e.Order[k], lines(w, early, 3))
	} else {
		j.Observed = fmt.Sprintf("%s, then no %s after %s; %s", prefix, e.Order[k], w.off(after), nearMisses(e.Order[k], w, msgs, win))
	}
	return j
}

// pairing is what was observed for each action's expected results.
type pairing struct {
	found   [][]*Observed // per action, per result: the message, or nil
	dups    []string      // exactly-once results seen more than once
	dupOnce int           // at-least-once results seen more than once (allowed, reported)
}

// pair finds, for every action, the messages it caused. Identified results (a command's corr, a
// swipe's card) are looked up by their field; the others are paired in order per topic: the k-th
// stimulus of a device with the k-th event after it.
func pair(w Window, msgs []Observed, done []Done) pairing {
	win := inWindow(msgs, w)
	p := pairing{found: make([][]*Observed, len(done))}
	used := map[int]bool{}
	type key struct {
		topic string
		val   string
	}
	byKey := map[key][]int{}
	fieldsOf := map[string][]string{} // topic → identifying fields wanted on it
	for _, d := range done {
		for _, r := range d.Results {
			if r.Field != "" && !contains(fieldsOf[r.Topic], r.Field) {
				fieldsOf[r.Topic] = append(fieldsOf[r.Topic], r.Field)
			}
		}
	}
	for i, o := range win {
		fs, ok := fieldsOf[o.Topic]
		if !ok {
			continue
		}
		v, ok := DecodePayload(o.Payload)
		obj, isObj := v.(map[string]any)
		if !ok || !isObj {
			continue
		}
		for _, f := range fs {
			k := key{o.Topic, fmt.Sprint(obj[f])}
			byKey[k] = appendOnce(byKey[k], i)
		}
	}
	order := make([]int, len(done))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return done[order[a]].Time.Before(done[order[b]].Time) })
	for _, di := range order {
		d := done[di]
		p.found[di] = make([]*Observed, len(d.Results))
		if d.Err != nil {
			continue
		}
		for ri, r := range d.Results {
			if r.Field != "" {
				hits := byKey[key{r.Topic, fmt.Sprint(r.Value)}]
				for _, i := range hits {
					if !win[i].Time.Before(d.Time) && !used[i] {
						p.found[di][ri] = &win[i]
						used[i] = true
						break
					}
				}
				if n := countAfter(win, hits, d.Time); n > 1 {
					if r.QoS2 {
						p.dups = append(p.dups, fmt.Sprintf("%s %s=%v observed %d times", r.Topic, r.Field, r.Value, n))
					} else {
						p.dupOnce += n - 1
					}
				}
				continue
			}
			for i := range win {
				if !used[i] && win[i].Topic == r.Topic && !win[i].Time.Before(d.Time) {
					p.found[di][ri] = &win[i]
					used[i] = true
					break
				}
			}
		}
	}
	// Exactly-once results paired in order: the same event (same device sequence number) twice.
	seen := map[string]int{}
	for _, d := range done {
		for _, r := range d.Results {
			if r.Field == "" && r.QoS2 {
				seen[r.Topic] = 0
			}
		}
	}
	if len(seen) > 0 {
		count := map[string]int{}
		for _, o := range win {
			if _, ok := seen[o.Topic]; !ok {
				continue
			}
			id := o.Topic + " " + seqOf(o.Payload)
			count[id]++
			if count[id] == 2 {
				p.dups = append(p.dups, fmt.Sprintf("%s observed twice (%s)", id, w.line(o)))
			}
		}
	}
	return p
}

func appendOnce(s []int, i int) []int {
	if len(s) > 0 && s[len(s)-1] == i {
		return s
	}
	return append(s, i)
}

func countAfter(win []Observed, idx []int, t time.Time) int {
	n := 0
	for _, i := range idx {
		if !win[i].Time.Before(t) {
			n++
		}
	}
	return n
}

// seqOf returns an event's per-device sequence number, which identifies it.
func seqOf(p []byte) string {
	if v, ok := DecodePayload(p); ok {
		if obj, ok := v.(map[string]any); ok {
			if s, ok := obj["seq"]; ok {
				return "seq=" + fmt.Sprint(s)
			}
		}
	}
	return "payload=" + quoteShort(p)
}

func judgeAck(e *Expectation, w Window, msgs []Observed, done []Done, final bool) Judgement {
	var cmds []Done
	for _, d := range done {
		if d.Kind == ActCommand {
			cmds = append(cmds, d)
		}
	}
	p := pair(w, msgs, cmds)
	var missing, wrong, lat []string
	var latencies []time.Duration
	for i, d := range cmds {
		if d.Err != nil {
			wrong = append(wrong, fmt.Sprintf("%s was not sent: %v", d.Planned, d.Err))
			continue
		}
		o := p.found[i][0]
		if o == nil {
			missing = append(missing, fmt.Sprintf("no ack for %s sent at %s", d.Planned, w.off(d.Time)))
			continue
		}
		latencies = append(latencies, o.Time.Sub(d.Time))
		res := ackResult(o.Payload)
		if res != e.Result {
			wrong = append(wrong, fmt.Sprintf("%s acked %s: %s", d.Planned, res, w.line(*o)))
		}
		lat = append(lat, w.line(*o))
	}
	j := Judgement{Evidence: capLines(lat)}
	if len(latencies) > 0 {
		j.Measurements = append(j.Measurements, report.MeasureDuration("slowest ack", maxDur(latencies), report.AtMost(ms(e.Within))))
	}
	switch {
	case len(wrong) > 0:
		j.Verdict = Failed
		j.Observed = strings.Join(capLines(wrong), "; ")
	case len(missing) == 0:
		j.Verdict = Met
	case !final:
		j.Verdict = Pending
	default:
		j.Verdict = Failed
		j.Observed = fmt.Sprintf("%d of %d commands unacknowledged: %s", len(missing), len(cmds), strings.Join(first(missing, 3), "; "))
	}
	return j
}

func ackResult(p []byte) string {
	if v, ok := DecodePayload(p); ok {
		if obj, ok := v.(map[string]any); ok {
			if r, ok := obj["result"].(string); ok {
				if reason, ok := obj["reason"].(string); ok && reason != "" && r != "ok" {
					return r + " (" + reason + ")"
				}
				return r
			}
		}
	}
	return "an unreadable ack " + quoteShort(p)
}

// judgeDelivered covers delivered and latency: both pair every action with its results.
func judgeDelivered(e *Expectation, w Window, msgs []Observed, done []Done, final bool) Judgement {
	p := pair(w, msgs, done)
	var lost, notDone []string
	var latencies []time.Duration // +Inf (math.MaxInt64) for a lost action
	exactlyOnce := false
	delivered := 0
	for i, d := range done {
		if d.Err != nil {
			notDone = append(notDone, fmt.Sprintf("%s at %s failed: %v", d.Planned, w.off(d.Time), d.Err))
			latencies = append(latencies, time.Duration(math.MaxInt64))
			continue
		}
		complete := true
		for ri, r := range d.Results {
			exactlyOnce = exactlyOnce || r.QoS2
			if p.found[i][ri] == nil {
				complete = false
				what := r.Topic
				if r.Field != "" {
					what = fmt.Sprintf("%s with %s=%v", r.Topic, r.Field, r.Value)
				}
				lost = append(lost, fmt.Sprintf("%s at %s: no %s", d.Planned, w.off(d.Time), what))
			}
		}
		if complete {
			delivered++
		}
		if len(d.Results) > 0 && p.found[i][0] != nil {
			latencies = append(latencies, p.found[i][0].Time.Sub(d.Time))
		} else {
			latencies = append(latencies, time.Duration(math.MaxInt64))
		}
	}
	j := Judgement{}
	total := float64(len(done))
	if e.Kind == ExpectDelivered {
		j.Measurements = []report.Measurement{
			report.Measure("actions", total, "", report.Limits{}),
			report.Measure("delivered", float64(delivered), "", report.AtLeast(total)),
			report.Measure("duplicated (exactly-once)", float64(len(p.dups)), "", report.AtMost(0)),
		}
		if p.dupOnce > 0 {
			j.Evidence = append(j.Evidence, fmt.Sprintf("%d at-least-once results were observed more than once (allowed)", p.dupOnce))
		}
	}
	for _, q := range []float64{50, 99} {
		if v, ok := percentile(latencies, q); ok {
			lim := report.Limits{}
			if e.Kind == ExpectLatency && e.Percentile == q {
				lim = report.AtMost(ms(e.Limit))
			}
			j.Measurements = append(j.Measurements, report.MeasureDuration(fmt.Sprintf("p%s latency", trimFloat(q)), v, lim))
		}
	}
	j.Evidence = append(j.Evidence, capLines(append(append([]string(nil), notDone...), lost...))...)
	complete := len(lost) == 0 && len(notDone) == 0
	if e.Kind == ExpectLatency {
		// The percentile is known once every action has its result, or when the window ends
		// (a lost action then counts as infinitely late).
		if !complete && !final {
			return Judgement{Verdict: Pending}
		}
		v, ok := percentile(latencies, e.Percentile)
		switch {
		case !ok:
			j.Verdict = Failed
			j.Observed = fmt.Sprintf("p%s latency is unbounded: %d of %d actions had no result (%s)", trimFloat(e.Percentile), len(lost)+len(notDone), len(done), strings.Join(first(append(notDone, lost...), 3), "; "))
		case v <= e.Limit:
			j.Verdict = Met
		default:
			j.Verdict = Failed
			j.Observed = fmt.Sprintf("p%s latency %s over %d actions, over the limit of %s", trimFloat(e.Percentile), v.Round(time.Microsecond), len(done), e.Limit)
		}
		return j
	}
	switch {
	case len(p.dups) > 0:
		j.Verdict = Failed
		j.Observed = fmt.Sprintf("%d exactly-once results duplicated: %s", len(p.dups), strings.Join(first(p.dups, 3), "; "))
	case len(notDone) > 0 && final:
		j.Verdict = Failed
		j.Observed = fmt.Sprintf("%d of %d actions could not be carried out: %s", len(notDone), len(done), strings.Join(first(notDone, 3), "; "))
	case complete && (!exactlyOnce || final):
		// An exactly-once result could still be duplicated until the window ends.
		j.Verdict = Met
	case !final:
		j.Verdict = Pending
	default:
		j.Verdict = Failed
		j.Observed = fmt.Sprintf("%d of %d actions lost: %s", len(done)-delivered, len(done), strings.Join(first(lost, 3), "; "))
	}
	return j
}

// percentile is the nearest-rank percentile; ok is false when it falls on a lost action.
func percentile(ds []time.Duration, q float64) (time.Duration, bool) {
	if len(ds) == 0 {
		return 0, false
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(q/100*float64(len(s)))) - 1
	if rank < 0 {
		rank = 0
	}
	v := s[rank]
	if v == time.Duration(math.MaxInt64) {
		return 0, false
	}
	return v, true
}

// JudgeRetained evaluates a retained expectation against what a fresh subscription received.
func JudgeRetained(e *Expectation, w Window, snapshot []Observed, final bool) Judgement {
	var hits, retained []Observed
	e2 := *e
	e2.Match.snapshot = true
	e = &e2
	for _, o := range snapshot {
		if !o.Retained || !MatchTopic(e.Match.Topic, o.Topic) {
			continue
		}
		retained = append(retained, o)
		if ok, _ := e.Match.Matches(o); ok {
			hits = append(hits, o)
		}
	}
	j := Judgement{Evidence: evidence(w, retained)}
	want, exact := e.Count, false
	if e.Exactly >= 0 {
		want, exact = e.Exactly, true
	}
	j.Measurements = []report.Measurement{report.Measure("matching retained messages", float64(len(hits)), "", report.AtLeast(float64(want)))}
	if exact {
		j.Measurements[0] = report.Measure("matching retained messages", float64(len(hits)), "", report.Between(float64(want), float64(want)))
	}
	if len(hits) == want || (!exact && len(hits) >= want) {
		j.Verdict = Met
		return j
	}
	if !final {
		j.Verdict = Pending
		return j
	}
	j.Verdict = Failed
	var misses []string
	for _, o := range retained {
		if ok, why := e.Match.Matches(o); !ok {
			misses = append(misses, fmt.Sprintf("%s %s (%s)", o.Topic, quoteShort(o.Payload), why))
		}
	}
	j.Observed = fmt.Sprintf("%d matching retained message(s) of %d retained on %s, want %s%d", len(hits), len(retained), e.Match.Topic, map[bool]string{true: "exactly ", false: "at least "}[exact], want)
	if len(misses) > 0 {
		j.Observed += "; not matching: " + strings.Join(first(misses, 4), "; ")
		if len(misses) > 4 {
			j.Observed += fmt.Sprintf(" and %d more", len(misses)-4)
		}
	}
	return j
}

func evidence(w Window, msgs []Observed) []string {
	out := make([]string, 0, min(len(msgs), maxEvidence))
	for i, m := range msgs {
		if i == maxEvidence {
			out = append(out, fmt.Sprintf("… %d more", len(msgs)-maxEvidence))
			break
		}
		out = append(out, w.line(m))
	}
	return out
}

func lines(w Window, msgs []Observed, n int) string {
	parts := make([]string, 0, n)
	for i, m := range msgs {
		if i == n {
			parts = append(parts, fmt.Sprintf("… %d more", len(msgs)-n))
			break
		}
		parts = append(parts, w.line(m))
	}
	return strings.Join(parts, "; ")
}

func capLines(s []string) []string {
	if len(s) <= maxEvidence {
		return s
	}
	return append(s[:maxEvidence:maxEvidence], fmt.Sprintf("… %d more", len(s)-maxEvidence))
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
