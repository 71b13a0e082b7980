package scenario_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
)

// The same file and seed give the same actions and the same device data: the cards swiped, the
// plates shown and the fees billed are identical from one run to the next, and change with the
// seed.
func TestSameSeedSameActionsAndDeviceData(t *testing.T) {
	s := mustParse(t, `name: replay
fleet:
  - {kind: gate, id: exit, role: exit, travel_time: 100ms, hold_time: 1s}
  - {kind: turnstile, id: tt}
  - {kind: camera, id: cam}
steps:
  - at: 100ms
    stimulus: {device: exit, action: vehicle_arrive}
  - at: 200ms
    do: {device: exit, command: open}
  - at: 500ms
    stimulus: {device: exit, action: vehicle_leave}
    expect: {publish: {topic: acs/+/gate/exit/evt/charge, exactly: 1}, within: 500ms}
  - at: 600ms
    stimulus: {device: tt, action: swipe}
    expect: {publish: {topic: acs/+/turnstile/tt/evt/card, exactly: 1}, within: 400ms}
  - at: 700ms
    stimulus: {device: cam, action: plate}
    expect: {publish: {topic: acs/+/camera/cam/evt/plate, exactly: 1}, within: 400ms}
`)
	data := func(seed uint64) string {
		b := startBroker(t)
		rec := scenario.Run(context.Background(), s, scenario.Options{Target: b, Seed: &seed})
		if rec.Outcome != report.Pass {
			t.Fatalf("seed %d: %s %+v", seed, rec.Outcome, rec.Cases)
		}
		// What the devices published, without the parts that are the time of day.
		stamp := regexp.MustCompile(`"ts":"[^"]*"|^\+[0-9.]+s |corr":"[^"]*"`)
		var out []string
		for _, c := range rec.Cases {
			for _, e := range c.Evidence {
				if e.Title == "observed" {
					for _, l := range e.Lines {
						out = append(out, stamp.ReplaceAllString(l, ""))
					}
				}
			}
		}
		return strings.Join(out, "\n")
	}
	a, b, c := data(5), data(5), data(6)
	for _, want := range []string{`"amount_cents":`, `"card":"`, `"plate":"`} {
		if !strings.Contains(a, want) {
			t.Fatalf("the record lacks %s:\n%s", want, a)
		}
	}
	if a != b {
		t.Fatalf("seed 5 twice gave different device data:\n%s\n---\n%s", a, b)
	}
	if a == c {
		t.Fatalf("seeds 5 and 6 gave the same device data:\n%s", a)
	}
	// The fee and the read confidence come from the devices' own generators, not from the plan:
	// they too must follow the seed.
	fee := regexp.MustCompile(`"amount_cents":\d+`)
	if fee.FindString(a) == fee.FindString(c) {
		t.Fatalf("seeds 5 and 6 billed the same fee (%s): the devices do not get the seed", fee.FindString(a))
	}
}
