package fleet_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

func TestExpandID(t *testing.T) {
	for _, tc := range []struct {
		tmpl, want, err string
	}{
		{"{kind}-{n:03}", "gate-007", ""},
		{"gate-{n:02}", "gate-07", ""},
		{"{site}-{kind}{n}", "north-gate7", ""},
		{"g-{m}", "", "unknown field {m}"},
		{"g-{n:0x}", "", "want {n:0W}"},
		{"g-{n", "", "unclosed {"},
		{"a/{n}", "", "without '/'"},
	} {
		got, err := fleet.ExpandID(tc.tmpl, "gate", "north", 7)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.tmpl, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		s    fleet.Spec
		path string
	}{
		{fleet.Spec{}, "groups"},
		{fleet.Spec{Groups: []fleet.Group{{Kind: "gate", Count: 1}, {Kind: "lift", Count: 1}}}, "groups[1].kind"},
		{fleet.Spec{Groups: []fleet.Group{{Kind: "gate"}}}, "groups[0].count"},
		{fleet.Spec{Groups: []fleet.Group{{Kind: "turnstile", Count: 1, Role: "exit"}}}, "groups[0].role"},
		{fleet.Spec{Groups: []fleet.Group{{Kind: "gate", Count: 1, ID: "x"}, {Kind: "camera", Count: 1, ID: "x"}}}, "groups[1].id"},
		{fleet.Spec{ConnectRate: -1, Groups: []fleet.Group{{Kind: "gate", Count: 1}}}, "connect_rate"},
	} {
		err := fleet.Validate(tc.s)
		se, ok := err.(*fleet.SpecError)
		if !ok || se.Path != tc.path {
			t.Errorf("Validate(%+v) = %v, want an error at %s", tc.s, err, tc.path)
		}
	}
}

// A fleet without a network: every device publishes into a recorder.
func offlineFleet(t *testing.T, s fleet.Spec, opts ...fleet.Option) (*fleet.Fleet, *sync.Map) {
	t.Helper()
	var seen sync.Map // IDs of the devices that published something
	opts = append(opts, fleet.WithPublisher(func(id string) device.Publisher {
		return device.PublisherFunc(func(device.Message) { seen.Store(id, true) })
	}))
	f, err := fleet.Start(context.Background(), s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	return f, &seen
}

func TestShardsPartitionTheFleet(t *testing.T) {
	s := fleet.Spec{Groups: []fleet.Group{{Kind: "gate", Count: 3, Telemetry: -1}, {Kind: "turnstile", Count: 4, Telemetry: -1}}}
	all := map[string]int{}
	for i := range 3 {
		f, _ := offlineFleet(t, s, fleet.WithShard(i, 3))
		for _, id := range f.IDs() {
			all[id]++
		}
	}
	if len(all) != 7 {
		t.Fatalf("shards ran %d distinct devices, want 7: %v", len(all), all)
	}
	for id, n := range all {
		if n != 1 {
			t.Fatalf("device %s ran in %d shards", id, n)
		}
	}
	if _, err := fleet.Start(context.Background(), s, fleet.WithShard(3, 3)); err == nil {
		t.Fatal("shard 3/3 accepted")
	}
}

func TestFleetRoutesFaultsAndStimuliByID(t *testing.T) {
	f, seen := offlineFleet(t, fleet.Spec{Seed: 4, Groups: []fleet.Group{{Kind: "camera", Count: 2, Telemetry: -1}}})
	if err := f.Stimulate("camera-002", device.Stimulus{Kind: device.StimMotion}); err != nil {
		t.Fatal(err)
	}
	if err := f.Inject("camera-009", fleet.Fault{Kind: "power_cut"}); err == nil || !strings.Contains(err.Error(), `no device "camera-009"`) {
		t.Fatalf("inject into a missing device: %v", err)
	}
	if err := f.Inject("camera-001", fleet.Fault{Kind: "power_cut"}); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Devices != 2 || st.Online != 1 {
		t.Fatalf("stats %+v: want 2 devices, 1 online", st)
	}
	if err := f.Clear("camera-001", "power_cut"); err != nil {
		t.Fatal(err)
	}
	d, _ := f.Device("camera-001")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := seen.Load("camera-002"); !ok {
		t.Fatal("camera-002 published nothing")
	}
}

func TestConnectRatePacesTheStart(t *testing.T) {
	// 5 devices at 50/s: the last one may only start 80ms after the first.
	began := time.Now()
	offlineFleet(t, fleet.Spec{ConnectRate: 50, Groups: []fleet.Group{{Kind: "turnstile", Count: 5, Telemetry: -1}}})
	if took := time.Since(began); took < 80*time.Millisecond {
		t.Fatalf("5 devices at 50/s started in %s, want at least 80ms", took)
	}
}
