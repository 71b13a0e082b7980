package scenario

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanIsReproducibleFromTheSeed(t *testing.T) {
	s, err := Parse("sample.yaml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	a, b := Plan(s, 42), Plan(s, 42)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same scenario and seed gave two different plans")
	}
	c := Plan(s, 43)
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 gave the same plan: the seed does not reach the data")
	}
	if len(a) != len(c) {
		t.Fatalf("the seed changed the number of actions: %d vs %d", len(a), len(c))
	}
	// 1 command + 1 fault + 1 stimulus + 60 swipes + 1 broker restart + 2 clears.
	if len(a) != 66 {
		t.Fatalf("%d planned actions, want 66", len(a))
	}
	cards := map[any]bool{}
	var swipes int
	for i, p := range a {
		if i > 0 && p.At < a[i-1].At {
			t.Fatalf("plan out of time order at %d: %s after %s", i, p.At, a[i-1].At)
		}
		if p.Index != i {
			t.Fatalf("action %d has index %d", i, p.Index)
		}
		if p.Kind == ActStimulus && p.Name == "card" {
			swipes++
			cards[p.Args["card"]] = true
		}
	}
	if swipes != 60 || len(cards) != 60 {
		t.Fatalf("%d swipes with %d distinct cards; each swipe needs its own card to be told apart", swipes, len(cards))
	}
}

func TestLoadPhaseSpreadsOverDevices(t *testing.T) {
	s, err := Parse("l.yaml", []byte(`name: l
fleet: [{kind: turnstile, count: 4}]
steps:
  - at: 2s
    load: {kind: turnstile, action: swipe, rate: 10/s, for: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := Plan(s, 7)
	per := map[string]int{}
	for i, a := range p {
		per[a.Device]++
		if want := s.Steps[0].At + s.Steps[0].Action.(*LoadPhase).For*time.Duration(i)/20; a.At != want {
			t.Fatalf("action %d at %s, want %s", i, a.At, want)
		}
	}
	if len(p) != 20 || len(per) != 4 {
		t.Fatalf("%d actions over %d devices, want 20 over 4", len(p), len(per))
	}
	for id, n := range per {
		if n != 5 {
			t.Fatalf("%s got %d swipes, want 5 (round robin)", id, n)
		}
	}
	q := Plan(s, 7)
	if !reflect.DeepEqual(p, q) {
		t.Fatal("plan not reproducible")
	}
}

func TestCommandsGetDistinctCorrs(t *testing.T) {
	s, err := Parse("c.yaml", []byte(`name: c
fleet: [{kind: gate, count: 3}]
steps:
  - at: 0s
    do: {every: gate, command: open}
  - at: 1s
    load: {kind: gate, command: close, rate: 5/s, for: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range Plan(s, 1) {
		if p.Kind != ActCommand || p.Corr == "" || seen[p.Corr] {
			t.Fatalf("command %s has an empty or repeated corr", p)
		}
		seen[p.Corr] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d commands, want 3 + 5", len(seen))
	}
}
