package scenario

import (
	"strings"
	"testing"
	"time"
)

var base = time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)

func at(d string) time.Time {
	v, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	return base.Add(v)
}

func obs(off, topic, payload string, qos byte, retained bool) Observed {
	return Observed{Time: at(off), Topic: topic, Payload: []byte(payload), QoS: qos, Retained: retained}
}

func record(ms ...Observed) []Observed {
	for i := range ms {
		ms[i].N = i
	}
	return ms
}

func win(from, to string) Window { return Window{Start: base, From: at(from), To: at(to)} }

func mustPayload(t *testing.T, yaml string) any {
	t.Helper()
	d := &decoder{file: "t"}
	n := d.parseYAML([]byte("v: " + yaml))
	m := d.mapping(n, "t", []string{"v"})
	f, _ := m.get("v")
	v, ok := d.value(f.val, "payload")
	if !ok || d.result() != nil {
		t.Fatalf("payload %s: %v", yaml, d.result())
	}
	return v
}

func pub(topic string) Expectation {
	return Expectation{Kind: ExpectPublish, Match: Match{Topic: topic, QoS: -1}, Count: 1, Exactly: -1, Within: 3 * time.Second}
}

func TestJudgePublish(t *testing.T) {
	state := "acs/site-1/gate/gate-01/state"
	msgs := record(
		obs("500ms", state, `{"position":"closed","mode":"normal"}`, 1, false),
		obs("1200ms", state, `{"position":"opening","mode":"normal"}`, 1, false),
		obs("2500ms", state, `{"position":"open","mode":"normal"}`, 1, false),
		obs("2600ms", "acs/site-1/gate/gate-02/state", `{"position":"open"}`, 1, false),
		// A replay of an old retained message (a new subscription somewhere) is not a publication.
		obs("2700ms", "acs/site-1/gate/gate-03/state", `{"position":"open"}`, 1, true),
	)
	withPayload := func(e Expectation, p string) Expectation {
		e.Match.Payload, e.Match.HasPayload = mustPayload(t, p), true
		return e
	}
	cases := []struct {
		name     string
		e        Expectation
		w        Window
		final    bool
		want     Verdict
		observed []string // substrings of the failure message
	}{
		{"met by the third message", withPayload(pub("acs/+/gate/gate-01/state"), "{position: open}"), win("1s", "4s"), false, Met, nil},
		{"pending before the window ends", withPayload(pub("acs/+/gate/gate-01/state"), "{position: open}"), win("1s", "2s"), false, Pending, nil},
		{"fails with the near misses", withPayload(pub("acs/+/gate/gate-01/state"), "{position: open}"), win("1s", "2s"), true, Failed,
			[]string{"position is \"opening\", want \"open\"", "+1.200s acs/site-1/gate/gate-01/state"}},
		{"a message before the window does not count", withPayload(pub("acs/+/gate/gate-01/state"), "{position: closed}"), win("1s", "4s"), true, Failed,
			[]string{"position is \"opening\""}},
		{"silent topic names the last message before", withPayload(pub("acs/+/gate/gate-01/state"), "{position: open}"), win("3s", "4s"), true, Failed,
			[]string{"no message on acs/+/gate/gate-01/state in the window [+3.000s, +4.000s]", "the last one before it: +2.500s"}},
		{"never seen at all", pub("acs/+/gate/gate-01/evt/passage"), win("0s", "4s"), true, Failed, []string{"nor before it"}},
		{"count of two across devices", func() Expectation {
			e := withPayload(pub("acs/+/gate/+/state"), "{position: open}")
			e.Count = 2
			return e
		}(), win("0s", "4s"), false, Met, nil},
		{"count short", func() Expectation {
			e := withPayload(pub("acs/+/gate/+/state"), "{position: open}")
			e.Count = 3
			return e
		}(), win("0s", "4s"), true, Failed, []string{"only 2 of 3 matching messages"}},
		{"exactly waits for the window", func() Expectation { e := pub("acs/+/gate/gate-01/state"); e.Exactly = 3; return e }(), win("0s", "4s"), false, Pending, nil},
		{"exactly met", func() Expectation { e := pub("acs/+/gate/gate-01/state"); e.Exactly = 3; return e }(), win("0s", "4s"), true, Met, nil},
		{"exactly exceeded fails early", func() Expectation { e := pub("acs/+/gate/gate-01/state"); e.Exactly = 2; return e }(), win("0s", "4s"), false, Failed, []string{"3 matching messages, more than exactly 2"}},
		{"a retained replay is not a publication", withPayload(pub("acs/+/gate/gate-03/state"), "{position: open}"), win("0s", "4s"), true, Failed, []string{"a retained replay, not a publication"}},
		{"unless retained replays are asked for", func() Expectation {
			e := withPayload(pub("acs/+/gate/gate-03/state"), "{position: open}")
			r := true
			e.Match.Retained = &r
			return e
		}(), win("0s", "4s"), false, Met, nil},
		{"qos constraint", func() Expectation { e := pub("acs/+/gate/gate-01/state"); e.Match.QoS = 2; return e }(), win("0s", "4s"), true, Failed, []string{"qos is 1, want 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := Judge(&c.e, c.w, msgs, nil, c.final)
			if j.Verdict != c.want {
				t.Fatalf("verdict %v, want %v (observed: %s)", j.Verdict, c.want, j.Observed)
			}
			for _, s := range c.observed {
				if !strings.Contains(j.Observed, s) {
					t.Errorf("message %q lacks %q", j.Observed, s)
				}
			}
		})
	}
}

func TestJudgeAbsentAndOrder(t *testing.T) {
	msgs := record(
		obs("1s", "acs/s/gate/g1/evt/passage", `{"seq":1}`, 1, false),
		obs("2s", "acs/s/gate/g1/evt/charge", `{"seq":2,"amount":3.5}`, 2, false),
		obs("3s", "acs/s/gate/g1/state", `{"position":"closed"}`, 1, false),
	)
	absent := Expectation{Kind: ExpectAbsent, Match: Match{Topic: "acs/+/gate/+/evt/tamper", QoS: -1}, Within: time.Second}
	if j := Judge(&absent, win("0s", "4s"), msgs, nil, false); j.Verdict != Pending {
		t.Fatalf("absent before its window ends: %v", j.Verdict)
	}
	if j := Judge(&absent, win("0s", "4s"), msgs, nil, true); j.Verdict != Met {
		t.Fatalf("absent at the end: %v %s", j.Verdict, j.Observed)
	}
	absent.Match.Topic = "acs/+/gate/+/evt/charge"
	if j := Judge(&absent, win("0s", "4s"), msgs, nil, false); j.Verdict != Failed || !strings.Contains(j.Observed, "+2.000s acs/s/gate/g1/evt/charge q2") {
		t.Fatalf("absent with a matching message: %v %s", j.Verdict, j.Observed)
	}

	m := func(topic string) Match { return Match{Topic: topic, QoS: -1} }
	order := Expectation{Kind: ExpectOrder, Order: []Match{m("acs/+/gate/g1/evt/passage"), m("acs/+/gate/g1/evt/charge"), m("acs/+/gate/g1/state")}}
	if j := Judge(&order, win("0s", "4s"), msgs, nil, false); j.Verdict != Met {
		t.Fatalf("order in order: %v %s", j.Verdict, j.Observed)
	}
	order.Order = []Match{m("acs/+/gate/g1/evt/charge"), m("acs/+/gate/g1/evt/passage")}
	j := Judge(&order, win("0s", "4s"), msgs, nil, true)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "acs/+/gate/g1/evt/passage came too early") {
		t.Fatalf("order reversed: %v %s", j.Verdict, j.Observed)
	}
	if j := Judge(&order, win("0s", "4s"), msgs, nil, false); j.Verdict != Pending {
		t.Fatalf("order not yet complete must wait: %v", j.Verdict)
	}
}

func TestJudgeAckDeliveredLatency(t *testing.T) {
	ack := "acs/s/gate/g1/cmd/open/ack"
	done := []Done{
		{Planned: Planned{Kind: ActCommand, Device: "g1", Name: "open", Corr: "c1"}, Time: at("1s"), Results: []Result{{Topic: ack, Field: "corr", Value: "c1"}}},
		{Planned: Planned{Kind: ActCommand, Device: "g1", Name: "open", Corr: "c2"}, Time: at("2s"), Results: []Result{{Topic: ack, Field: "corr", Value: "c2"}}},
	}
	msgs := record(
		obs("1010ms", ack, `{"corr":"c1","result":"ok"}`, 1, false),
		obs("2300ms", ack, `{"corr":"c2","result":"failed","reason":"jammed"}`, 1, false),
	)
	e := Expectation{Kind: ExpectAck, Result: "ok", Within: 3 * time.Second}
	j := Judge(&e, win("1s", "4s"), msgs, done, false)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "acked failed (jammed)") {
		t.Fatalf("a failed ack: %v %s", j.Verdict, j.Observed)
	}
	j = Judge(&e, win("1s", "4s"), msgs[:1], done, false)
	if j.Verdict != Pending {
		t.Fatalf("one ack missing before the end: %v", j.Verdict)
	}
	j = Judge(&e, win("1s", "4s"), msgs[:1], done, true)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "1 of 2 commands unacknowledged: no ack for command open to g1 (corr c2)") {
		t.Fatalf("one ack missing at the end: %v %s", j.Verdict, j.Observed)
	}

	// Swipes: each card must produce its own evt/card; latency from the swipe to it.
	evt := "acs/s/turnstile/t1/evt/card"
	var swipes []Done
	var events []Observed
	for i, card := range []string{"A1", "B2", "C3", "D4"} {
		t0 := time.Duration(i) * 100 * time.Millisecond
		swipes = append(swipes, Done{Planned: Planned{Kind: ActStimulus, Device: "t1", Name: "card", Args: map[string]any{"card": card}},
			Time: base.Add(t0), Results: []Result{{Topic: evt, Field: "card", Value: card}}})
		if card != "C3" {
			lat := time.Duration(i+1) * 10 * time.Millisecond
			events = append(events, Observed{Time: base.Add(t0 + lat), Topic: evt, Payload: []byte(`{"card":"` + card + `","seq":` + string(rune('1'+i)) + `}`), QoS: 1})
		}
	}
	events = record(events...)
	del := Expectation{Kind: ExpectDelivered, Within: 5 * time.Second}
	if j := Judge(&del, win("0s", "5s"), events, swipes, false); j.Verdict != Pending {
		t.Fatalf("delivered with one missing before the end: %v", j.Verdict)
	}
	j = Judge(&del, win("0s", "5s"), events, swipes, true)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "1 of 4 actions lost") || !strings.Contains(j.Observed, "card=C3") {
		t.Fatalf("delivered with one lost: %v %s", j.Verdict, j.Observed)
	}
	p75 := Expectation{Kind: ExpectLatency, Percentile: 50, Limit: 25 * time.Millisecond}
	if j := Judge(&p75, win("0s", "5s"), events, swipes, true); j.Verdict != Met {
		t.Fatalf("p50 with latencies 10, 20, lost, 40 ms under 25ms: %v %s", j.Verdict, j.Observed)
	}
	p99 := Expectation{Kind: ExpectLatency, Percentile: 99, Limit: time.Second}
	if j := Judge(&p99, win("0s", "5s"), events, swipes, true); j.Verdict != Failed || !strings.Contains(j.Observed, "unbounded") {
		t.Fatalf("p99 with a lost swipe: %v %s", j.Verdict, j.Observed)
	}
	all := swipes[:2]
	if j := Judge(&del, win("0s", "5s"), events, all, false); j.Verdict != Met {
		t.Fatalf("delivered complete: %v %s", j.Verdict, j.Observed)
	}
	tight := Expectation{Kind: ExpectLatency, Percentile: 99, Limit: 15 * time.Millisecond}
	if j := Judge(&tight, win("0s", "5s"), events, all, false); j.Verdict != Failed || !strings.Contains(j.Observed, "p99 latency 20ms") {
		t.Fatalf("p99 20ms over a 15ms limit: %v %s", j.Verdict, j.Observed)
	}
}

func TestDeliveredExactlyOnce(t *testing.T) {
	charge := "acs/s/gate/exit-1/evt/charge"
	passage := "acs/s/gate/exit-1/evt/passage"
	done := []Done{{Planned: Planned{Kind: ActStimulus, Device: "exit-1", Name: "vehicle_leave"}, Time: at("1s"),
		Results: []Result{{Topic: passage}, {Topic: charge, QoS2: true}}}}
	once := record(
		obs("1100ms", passage, `{"seq":7}`, 1, false),
		obs("1150ms", charge, `{"seq":8,"amount":4}`, 2, false),
	)
	e := Expectation{Kind: ExpectDelivered, Within: 3 * time.Second}
	if j := Judge(&e, win("1s", "4s"), once, done, false); j.Verdict != Pending {
		t.Fatalf("an exactly-once result must wait for the window's end: %v", j.Verdict)
	}
	if j := Judge(&e, win("1s", "4s"), once, done, true); j.Verdict != Met {
		t.Fatalf("charged once: %v %s", j.Verdict, j.Observed)
	}
	twice := record(append(once, obs("1300ms", charge, `{"seq":8,"amount":4}`, 2, false))...)
	j := Judge(&e, win("1s", "4s"), twice, done, true)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "seq=8 observed twice") {
		t.Fatalf("charged twice: %v %s", j.Verdict, j.Observed)
	}
}

func TestJudgeRetained(t *testing.T) {
	snap := record(
		obs("5s", "acs/s/gate/g1/status", `{"online":true}`, 1, true),
		obs("5s", "acs/s/gate/g2/status", `{"online":false}`, 1, true),
		obs("5s", "acs/s/turnstile/t1/status", `{"online":true}`, 1, true),
	)
	e := Expectation{Kind: ExpectRetained, Match: Match{Topic: "acs/+/+/+/status", QoS: -1, HasPayload: true, Payload: map[string]any{"online": true}}, Count: 3, Exactly: -1}
	if j := JudgeRetained(&e, win("0s", "5s"), snap, false); j.Verdict != Pending {
		t.Fatalf("2 of 3 online before the end: %v", j.Verdict)
	}
	j := JudgeRetained(&e, win("0s", "5s"), snap, true)
	if j.Verdict != Failed || !strings.Contains(j.Observed, "2 matching retained message(s) of 3") || !strings.Contains(j.Observed, "acs/s/gate/g2/status") {
		t.Fatalf("2 of 3 online at the end: %v %s", j.Verdict, j.Observed)
	}
	e.Count = 2
	if j := JudgeRetained(&e, win("0s", "5s"), snap, false); j.Verdict != Met {
		t.Fatalf("at least 2 online: %v", j.Verdict)
	}
	e.Exactly = 1
	if j := JudgeRetained(&e, win("0s", "5s"), snap, true); j.Verdict != Failed {
		t.Fatalf("exactly 1 online with 2: %v", j.Verdict)
	}
}

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"acs/+/gate/+/state", "acs/site-1/gate/gate-01/state", true},
		{"acs/+/gate/+/state", "acs/site-1/gate/gate-01/state/x", false},
		{"acs/#", "acs/site-1/gate/gate-01/state", true},
		{"acs/#", "acs", true},
		{"acs/+", "acs", false},
		{"#", "$SYS/broker/uptime", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+/c", "a//c", true},
	}
	for _, c := range cases {
		if got := MatchTopic(c.filter, c.topic); got != c.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a/b#", "a+/b", "a/\x00"} {
		if ValidFilter(bad) == nil {
			t.Errorf("ValidFilter(%q) accepted it", bad)
		}
	}
}

func TestSubsetMatch(t *testing.T) {
	cases := []struct {
		want, got string
		ok        bool
		why       string
	}{
		{`{online: true}`, `{"online":true,"fw":"1.4.2"}`, true, ""},
		{`{online: true}`, `{"online":false}`, false, "online is false, want true"},
		{`{position: open}`, `{"mode":"normal"}`, false, "position is missing"},
		{`{a: {b: 1}}`, `{"a":{"b":1.0,"c":2}}`, true, ""},
		{`{a: {b: 1}}`, `{"a":{"b":2}}`, false, "a.b is 2, want 1"},
		{`{list: [1, 2]}`, `{"list":[1,2]}`, true, ""},
		{`{list: [1, 2]}`, `{"list":[1,2,3]}`, false, "list is [1,2,3]"},
		{`{amount: 3.5}`, `{"amount":3.5}`, true, ""},
		{`{x: null}`, `{"x":null}`, true, ""},
		{`{x: null}`, `{}`, false, "x is missing"},
	}
	for _, c := range cases {
		var got any
		got, _ = DecodePayload([]byte(c.got))
		ok, why := SubsetMatch(mustPayload(t, c.want), got)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("SubsetMatch(%s, %s) = %v %q, want %v %q", c.want, c.got, ok, why, c.ok, c.why)
		}
	}
	m := Match{Topic: "#", QoS: -1, HasPayload: true, Payload: "OFF"}
	if ok, _ := m.PayloadMatches([]byte("OFF")); !ok {
		t.Error("a string payload must match raw text")
	}
	if ok, why := m.PayloadMatches([]byte{0xff, 0x00}); ok || !strings.Contains(why, "binary") {
		t.Errorf("binary payload: %v %q", ok, why)
	}
}
