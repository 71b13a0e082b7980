package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/report"
)

const sample = `name: gate-power-cut
description: power cut on a gate
seed: 42
broker: embedded
fleet:
  - {kind: gate, count: 2, id: "gate-{n:02}", keepalive: 2s, role: exit, travel_time: 500ms}
  - {kind: turnstile, count: 4, site: north}
  - {kind: camera, id: cam-1}
react:
  - name: open for the known plate
    on: {topic: "acs/+/camera/+/evt/plate", payload: {plate: AB-123}}
    do: {device: gate-01, command: open, args: {reason: "{payload.plate}"}}
    max: 3
  - on: {topic: "acs/+/turnstile/+/evt/card"}
    do: {device: "{device}", command: allow_pass}
steps:
  - at: 0s
    expect: {retained: {topic: "acs/+/+/+/status", payload: {online: true}, count: 7}, within: 5s}
  - at: 1s
    do: {device: gate-01, command: open}
    expect:
      - {publish: {topic: acs/+/gate/gate-01/state, payload: {position: open}}, within: 3s}
      - {ack: ok, within: 2s}
  - at: 5s
    name: power cut
    fault: {device: gate-02, kind: power_cut, duration: 3s}
    expect: {publish: {topic: acs/+/gate/gate-02/status, payload: {online: false}}, within: 4s}
  - at: 6s
    stimulus: {device: cam-1, action: plate, plate: AB-123}
    expect: {order: [acs/+/camera/cam-1/evt/plate, {topic: acs/+/gate/gate-01/cmd/open/ack, payload: {result: ok}}], within: 2s}
  - at: 10s
    load: {kind: turnstile, action: swipe, rate: 20/s, for: 3s}
    expect: {delivered: all, p99_latency: 50ms}
  - at: 14s
    fault: {kind: broker_restart}
  - at: 15s
    clear: {every: gate, kind: jam}
    within: 1s
    expect: [{absent: {topic: "acs/+/gate/+/evt/obstruction"}}]
`

func TestParseSample(t *testing.T) {
	s, err := Parse("sample.yaml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "gate-power-cut" || s.Seed != 42 || s.Outcome != report.Pass || s.Broker.Kind != BrokerEmbedded {
		t.Fatalf("header decoded as %+v", s)
	}
	wantIDs := "gate-01 gate-02 turnstile-001 turnstile-002 turnstile-003 turnstile-004 cam-1"
	if got := strings.Join(s.Devices(), " "); got != wantIDs {
		t.Fatalf("devices %q, want %q", got, wantIDs)
	}
	if ref, _ := s.Device("turnstile-003"); ref.Site != "north" || ref.Kind != "turnstile" {
		t.Fatalf("turnstile-003 = %+v", ref)
	}
	if g := s.Fleet[0]; g.Keepalive != 2*time.Second || g.Role != "exit" || g.TravelTime != 500*time.Millisecond {
		t.Fatalf("gate group = %+v", g)
	}
	if len(s.React) != 2 || s.React[0].Max != 3 || s.React[0].Command.Args["reason"] != "{payload.plate}" || s.React[1].Command.Device != "{device}" {
		t.Fatalf("react rules = %+v", s.React)
	}
	if len(s.Steps) != 7 {
		t.Fatalf("%d steps", len(s.Steps))
	}
	want := []string{
		`retained acs/+/+/+/status {"online":true} count 7 within 5s`,
		`publish acs/+/gate/gate-01/state {"position":"open"} within 3s`,
		`ack ok within 2s`,
		`publish acs/+/gate/gate-02/status {"online":false} within 4s`,
		`order [acs/+/camera/cam-1/evt/plate → acs/+/gate/gate-01/cmd/open/ack {"result":"ok"}] within 2s`,
		`delivered all within 8s`,
		`p99 latency ≤ 50ms`,
		`absent acs/+/gate/+/evt/obstruction within 1s`,
	}
	var got []string
	for _, st := range s.Steps {
		for _, e := range st.Expect {
			got = append(got, e.String())
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("expectations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f, ok := s.Steps[2].Action.(*Fault); !ok || f.Fault.Duration != 3*time.Second || f.Device != "gate-02" || s.Steps[2].Label() != `step 3 "power cut" (at 5s)` {
		t.Fatalf("step 3 = %+v", s.Steps[2])
	}
	if l := s.Steps[4].Action.(*LoadPhase); l.Rate != 20 || l.For != 3*time.Second || l.Stimulus != "card" || l.Count() != 60 {
		t.Fatalf("load = %+v", l)
	}
	if f := s.Steps[5].Action.(*Fault); !f.Broker || !s.RequiresCapability(BrokerRestart) {
		t.Fatalf("broker restart step = %+v, requires %v", f, s.Requires)
	}
	if s.Duration != 18*time.Second {
		t.Fatalf("derived duration %s, want 18s (the load at 10s + its 8s window)", s.Duration)
	}
}

func TestParseAcceptsAnchorsAndRates(t *testing.T) {
	src := `name: anchors
fleet: [{kind: turnstile, count: 2}]
steps:
  - at: 0s
    load: {kind: turnstile, action: swipe, rate: 90/min, for: 2s}
    expect: &online {delivered: all}
  - at: 3s
    load: {kind: turnstile, action: swipe, rate: 0.5, for: 4s}
    expect: *online
`
	s, err := Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Steps[0].Action.(*LoadPhase).Rate; r != 1.5 {
		t.Fatalf("90/min = %v/s", r)
	}
	if n := s.Steps[1].Action.(*LoadPhase).Count(); n != 2 {
		t.Fatalf("0.5/s for 4s = %d actions", n)
	}
	if s.Steps[1].Expect[0].Kind != ExpectDelivered {
		t.Fatalf("alias not resolved: %+v", s.Steps[1].Expect)
	}
}

func TestParseRejects(t *testing.T) {
	// Short inline cases; fixtures/scenarios/bad holds the full files.
	head := "name: x\nfleet:\n  - {kind: gate, count: 2, id: \"g{n}\"}\n  - {kind: turnstile, id: t1}\nsteps:\n"
	cases := []struct{ steps, want string }{
		{"  - at: 1s\n    do: {device: g1, command: open, args: {corr: x}}\n", "corr is set by the controller"},
		{"  - at: 1s\n    do: {every: camera, command: snapshot}\n", "every: the fleet has no camera"},
		{"  - at: 1s\n    do: {device: g1, devices: [g2], command: open}\n", "give only one of device, devices and every"},
		{"  - at: 1s\n    stimulus: {device: t1, action: passage, direction: sideways}\n", `direction: "sideways" is not a direction`},
		{"  - at: 1s\n    fault: {device: g1, kind: slow_ack, params: {latency: soon}}\n", "param latency"},
		{"  - at: 1s\n    fault: {device: g1, kind: broker_restart}\n", "broker_restart is a broker fault and takes no device"},
		{"  - at: 1s\n    load: {kind: gate, command: open, action: swipe, rate: 1/s, for: 1s}\n", "give either action"},
		{"  - at: 1s\n    load: {kind: gate, command: open, rate: 1000/s, for: 200s}\n", "more than the 100000 a phase may have"},
		{"  - at: 1s\n    load: {kind: turnstile, action: plate, rate: 1/s, for: 1s}\n", "plate applies to a camera, not a turnstile"},
		{"  - at: 1s\n    expect: {publish: {topic: acs/+/gate/g1/state, count: 2, exactly: 2}, within: 1s}\n", "give count (at least) or exactly, not both"},
		{"  - at: 1s\n    expect: {retained: {topic: acs/+/gate/g1/state, retained: true}, within: 1s}\n", "leave the retained key out"},
		{"  - at: 1s\n    expect: {publish: acs/+/turnstile/g1/state, within: 1s}\n", "g1 is a gate, not a turnstile"},
		{"  - at: 1s\n    expect: {publish: acs/+/barrier/+/state, within: 1s}\n", `"barrier" is not a device kind`},
		{"  - at: 1s\n    expect: {order: [acs/#], within: 1s}\n", "at least two messages"},
		{"  - at: 1s\n    do: {device: g1, command: open}\n    expect: {delivered: some, within: 1s}\n", `delivered: "some" is not understood`},
		{"  - at: 1s\n    stimulus: {device: g1, action: open_button}\n    expect: {delivered: all, within: 1s}\n", "open_button stimulus publishes no event"},
		{"  - at: 1s\n    expect: {within: 1s}\n", "nothing to check"},
		{"  - at: -1s\n    do: {device: g1, command: open}\n", "before the scenario starts"},
		{"  - at: 1s\n", "does nothing"},
		{"  - at: 1s\n    do: {device: g1, command: open}\n    expect: {publish: acs/+/gate/g1/state}\n", `missing key "within"`},
	}
	for _, c := range cases {
		_, err := Parse("x.yaml", []byte(head+c.steps))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("steps:\n%s\nerror %v, want one containing %q", c.steps, err, c.want)
		}
	}
	other := []struct{ src, want string }{
		{"name: x\nseed: -1\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", "seed: want a non-negative whole number"},
		{"name: x\noutcome: maybe\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", `outcome: "maybe" is not an expected outcome`},
		{"name: x\nbroker: {url: http://x:1}\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", "want mqtt://host:port"},
		{"name: x\nrequires: [broker_reboot]\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", `"broker_reboot" is not a broker control`},
		{"name: x\nfleet: [{kind: gate, keepalive: 1500ms}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", "whole seconds"},
		{"name: x\nfleet: [{kind: turnstile, role: exit}]\nsteps: [{at: 0s, do: {device: turnstile-001, command: open}}]\n", "role: a gate setting, and this group is of turnstiles"},
		{"name: x\nfleet: [{kind: gate, id: \"a/{n}\", count: 2}]\nsteps: [{at: 0s, do: {every: gate, command: open}}]\n", "without '/', '+' or '#'"},
		{"name: x\nfleet: [{kind: camera, plates: [A], travel_time: 1s}]\nsteps: [{at: 0s, do: {device: camera-001, command: snapshot}}]\n", "travel_time: a gate setting, and this group is of cameras"},
		{"name: x\nfleet: [{kind: camera, misread_rate: 2}]\nsteps: [{at: 0s, do: {device: camera-001, command: snapshot}}]\n", "misread_rate: 2 is not a probability"},
		{"name: x\nfleet: [{kind: gate, count: 3, id: gate}]\nsteps: [{at: 0s, do: {device: gate, command: open}}]\n", "names 3 devices the same"},
		{"name: x\nfleet: [{kind: gate, id: \"g{x}\"}]\nsteps: [{at: 0s, do: {device: g, command: open}}]\n", "unknown field {x}"},
		{"name: x\nfleet: [{kind: turnstile, cards: 12}]\nsteps: [{at: 0s, do: {device: turnstile-001, command: free}}]\n", "cards: want a list"},
		{"name: x\nfleet: []\nsteps: [{at: 0s}]\n", "want at least one group"},
		{"name: x\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n---\nname: y\n", "one YAML document"},
		{"name: x\nfleet: [{kind: gate, <<: {count: 2}}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n", "merge keys"},
		{"", "the file is empty"},
	}
	for _, c := range other {
		_, err := Parse("x.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("source:\n%s\nerror %v, want one containing %q", c.src, err, c.want)
		}
	}
}
