package brokers_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/ci/images/imagestest"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario/brokers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func parse(t *testing.T, src string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const quick = `name: quick
fleet: [{kind: gate, id: g, travel_time: 200ms}]
steps:
  - at: 300ms
    do: {device: g, command: open}
    expect: [{ack: ok, within: 3s}, {publish: {topic: acs/+/gate/g/state, payload: {position: open}}, within: 3s}]
`

func TestSpecFollowsTheScenario(t *testing.T) {
	for src, want := range map[string]string{
		"name: a\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n":                                      "embedded",
		"name: a\nbroker: {url: mqtt://10.0.0.1:1883}\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n": "mqtt://10.0.0.1:1883",
		"name: a\nbroker: {image: gatehouse:dev}\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n":      "image:gatehouse:dev",
	} {
		if got := brokers.Spec(parse(t, src)); got != want {
			t.Errorf("Spec = %q, want %q", got, want)
		}
	}
}

func TestEmbeddedWithFaultModesCanRestart(t *testing.T) {
	s := parse(t, "name: a\nbroker: {faults: [no-will]}\nfleet: [{kind: gate}]\nsteps: [{at: 0s, do: {device: gate-001, command: open}}]\n")
	tgt, stop, err := brokers.Start(context.Background(), "embedded?fault=no-retain", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if d := tgt.Describe(); !strings.Contains(d, "no-will") || !strings.Contains(d, "no-retain") {
		t.Fatalf("Describe() = %q: the scenario's and the spec's fault modes must both be on", d)
	}
	if _, ok := tgt.(scenario.Restarter); !ok {
		t.Fatal("the embedded broker must offer broker_restart")
	}
	if _, _, err := brokers.Start(context.Background(), "embedded?transport=ws", s, nil); err == nil {
		t.Fatal("a WebSocket embedded broker was accepted for a scenario")
	}
}

func TestMosquitto(t *testing.T) {
	testenv.Mosquitto(t)
	s := parse(t, quick)
	tgt, stop, err := brokers.Start(context.Background(), "mosquitto", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(tgt.URL(), "tcp://127.0.0.1:") || !strings.Contains(tgt.Describe(), "mosquitto") {
		t.Fatalf("mosquitto target: %s (%s)", tgt.URL(), tgt.Describe())
	}
	if _, ok := tgt.(scenario.Restarter); ok {
		t.Fatal("mosquitto as a child process offers no restart to scenarios")
	}
	if rec := scenario.Run(context.Background(), s, scenario.Options{Target: tgt}); rec.Outcome != report.Pass {
		t.Fatalf("against mosquitto: %s %+v", rec.Outcome, rec.Cases)
	}
	faulty := parse(t, strings.Replace(quick, "name: quick\n", "name: quick\nbroker: {faults: [no-will]}\n", 1))
	if _, _, err := brokers.Start(context.Background(), "mosquitto", faulty, nil); err == nil || !strings.Contains(err.Error(), "only the embedded broker") {
		t.Fatalf("fault modes on mosquitto: %v", err)
	}
}

// The reference broker's container image can be crashed, frozen and cut from the network in
// the middle of a scenario; the fleet rides through each outage.
func TestContainerImageOutages(t *testing.T) {
	img := imagestest.Gatehouse(t)
	s := parse(t, `name: outages
fleet:
  - {kind: gate, count: 2, id: "g{n}", keepalive: 2s, travel_time: 200ms, reconnect_min: 200ms, reconnect_max: 1s}
steps:
  - at: 0s
    expect: {retained: {topic: "acs/+/gate/+/status", payload: {online: true}, count: 2}, within: 10s}
  - at: 1s
    name: crash
    fault: {kind: broker_crash, duration: 2s}
    # The image keeps no state: after the crash, online statuses are the gates' new ones. (Live
    # messages published while the observer reconnects are not seen; a retained check is not
    # affected.)
    expect: {retained: {topic: "acs/+/gate/+/status", payload: {online: true, boot: 1}, count: 2}, within: 12s}
  - at: 7s
    name: freeze
    fault: {kind: broker_pause, duration: 1500ms}
  - at: 7.5s
    do: {device: g1, command: open}
    expect: {ack: ok, within: 6s}
  - at: 10s
    name: partition
    fault: {kind: network_partition, duration: 1500ms}
  - at: 13s
    do: {device: g2, command: open}
    expect: {ack: ok, within: 8s}
`)
	tgt, stop, err := brokers.Start(context.Background(), "image:"+img, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range []string{scenario.BrokerCrash, scenario.BrokerPause, scenario.NetworkPartition} {
		if !s.RequiresCapability(c) {
			t.Fatalf("the scenario does not require %s", c)
		}
	}
	rec := scenario.Run(context.Background(), s, scenario.Options{Target: tgt})
	if rec.Outcome != report.Pass {
		var lines []string
		for _, e := range rec.Timeline {
			lines = append(lines, e.Source+": "+e.Text)
		}
		t.Fatalf("against %s: %s\n%+v\n%s", img, rec.Outcome, rec.Cases, strings.Join(lines, "\n"))
	}
}
