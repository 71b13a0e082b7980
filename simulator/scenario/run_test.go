package scenario_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/embedded"
)

func mustParse(t *testing.T, src string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startBroker(t *testing.T, faults ...string) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start(context.Background(), "", nil, faults...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b
}

func caseNamed(t *testing.T, rec *report.Record, prefix string) report.Case {
	t.Helper()
	for _, c := range rec.Cases {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no case %q in %+v", prefix, rec.Cases)
	return report.Case{}
}

func TestRunSkipsWhenTheTargetLacksAControl(t *testing.T) {
	s := mustParse(t, `name: needs-restart
fleet: [{kind: gate}]
steps:
  - at: 1s
    fault: {kind: broker_restart}
`)
	// Nothing listens there: a skipped run must not even try to connect.
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: scenario.Address("mqtt://127.0.0.1:1")})
	if rec.Outcome != report.Skip || len(rec.Cases) != 1 || !strings.Contains(rec.Cases[0].Message, "needs broker_restart") {
		t.Fatalf("outcome %s, cases %+v; want one skipped case naming broker_restart", rec.Outcome, rec.Cases)
	}
}

func TestRunWithoutBrokerErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a port nobody listens on
	s := mustParse(t, "name: nobody\nfleet: [{kind: gate}]\nsteps: [{at: 0s, expect: {publish: acs/#, within: 1s}}]\n")
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: scenario.Address("mqtt://" + addr)})
	if rec.Outcome != report.Error || !strings.Contains(rec.Message, "observer: connect to tcp://"+addr) {
		t.Fatalf("outcome %s message %q; want an error naming the broker", rec.Outcome, rec.Message)
	}
}

func TestRunReportsAFleetThatDoesNotStart(t *testing.T) {
	b := startBroker(t)
	s := mustParse(t, `name: slow-fleet
fleet: [{kind: gate, boot_time: 5s}]
steps:
  - at: 0s
    do: {device: gate-001, command: open}
    expect: {ack: ok, within: 500ms}
  - at: 100ms
    stimulus: {device: gate-001, action: vehicle_arrive}
`)
	// The gate boots for 5s; the fleet may take 300ms.
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: b, FleetTimeout: 300 * time.Millisecond})
	fs := caseNamed(t, rec, "fleet start")
	if fs.Outcome != report.Error || !strings.Contains(fs.Message, "did not start") {
		t.Fatalf("fleet start case %+v", fs)
	}
	st := caseNamed(t, rec, "step 2 (at 100ms): stimulus vehicle_arrive at gate-001")
	if st.Outcome != report.Error || !strings.Contains(st.Message, "the fleet did not start") {
		t.Fatalf("the stimulus that could not be applied: %+v", st)
	}
	ack := caseNamed(t, rec, "step 1 (at 0s): ack ok")
	if ack.Outcome != report.Fail || !strings.Contains(ack.Message, "no ack for command open to gate-001") {
		t.Fatalf("the unanswered command: %+v", ack)
	}
	if rec.Outcome != report.Error {
		t.Fatalf("run outcome %s, want error", rec.Outcome)
	}
}

func TestRunReactRulesWithPlaceholdersAndLimits(t *testing.T) {
	b := startBroker(t)
	s := mustParse(t, `name: react
fleet:
  - {kind: turnstile, count: 2, id: "t{n}"}
react:
  - name: answer cards, but only twice
    on: {topic: "acs/+/turnstile/+/evt/card"}
    do: {device: "{device}", command: allow_pass, args: {direction: in, note: "card {payload.card}"}}
    max: 2
  - name: walk through a little later
    on: {topic: "acs/+/turnstile/+/cmd/allow_pass/ack", payload: {result: ok}}
    stimulus: {device: "{device}", action: passage, direction: in}
    delay: 200ms
steps:
  - at: 200ms
    stimulus: {device: t1, action: swipe, card: C1}
    expect: {publish: {topic: "acs/+/turnstile/+/evt/passage", payload: {direction: in}, exactly: 2}, within: 2s}
  - at: 400ms
    stimulus: {device: t2, action: swipe, card: C2}
  - at: 1s
    stimulus: {device: t2, action: swipe, card: C3}
    expect: {publish: {topic: "acs/+/turnstile/t2/cmd/allow_pass/ack"}, within: 500ms}
`)
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: b})
	if c := caseNamed(t, rec, "step 1 (at 200ms): publish acs/+/turnstile/+/evt/passage"); c.Outcome != report.Pass {
		t.Fatalf("two passages, one per answered card: %+v", c)
	}
	// The third card is not answered (max 2).
	if c := caseNamed(t, rec, "step 3 (at 1s): publish acs/+/turnstile/t2/cmd/allow_pass/ack"); c.Outcome != report.Fail {
		t.Fatalf("the third card must go unanswered: %+v", c)
	}
	rule := caseNamed(t, rec, `react rule "answer cards, but only twice"`)
	if rule.Measurements[0].Value != 2 {
		t.Fatalf("rule fired %v times, want 2", rule.Measurements[0].Value)
	}
	lines := strings.Join(rule.Evidence[0].Lines, "\n")
	if !strings.Contains(lines, "command allow_pass to t1") || !strings.Contains(lines, "note=card C1") || !strings.Contains(lines, "command allow_pass to t2") {
		t.Fatalf("placeholders not expanded:\n%s", lines)
	}
}

func TestRetainedCheckAgainstMosquitto(t *testing.T) {
	m := testenv.StartMosquitto(t)
	s := mustParse(t, `name: mosquitto
fleet: [{kind: camera, count: 3, id: "cam{n}", telemetry: -1s}]
steps:
  - at: 0s
    expect: {retained: {topic: "acs/+/camera/+/status", payload: {online: true}, exactly: 3}, within: 5s}
  - at: 500ms
    stimulus: {every: camera, action: motion, duration: 100ms}
    expect: {delivered: all, within: 2s}
`)
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: scenario.Address("mqtt://" + m.Addr)})
	if rec.Outcome != report.Pass {
		t.Fatalf("against mosquitto: %s\n%+v\nmosquitto: %s", rec.Outcome, rec.Cases, m.Log())
	}
}

// Devices with a topic prefix of their own are observed too.
func TestRunObservesCustomPrefixes(t *testing.T) {
	b := startBroker(t)
	s := mustParse(t, `name: prefixes
fleet:
  - {kind: gate, id: g1, prefix: "north/{site}/acs"}
  - {kind: gate, id: g2}
steps:
  - at: 200ms
    do: {every: gate, command: open}
    expect:
      - {ack: ok, within: 2s}
      - {publish: {topic: "north/site-1/acs/gate/g1/state", payload: {position: opening}}, within: 2s}
      - {publish: {topic: "acs/site-1/gate/g2/state", payload: {position: opening}}, within: 2s}
`)
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: b})
	if rec.Outcome != report.Pass {
		t.Fatalf("%s: %+v", rec.Outcome, rec.Cases)
	}
}
