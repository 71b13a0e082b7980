package topic

import (
	"fmt"
	"testing"
)

// fleetFilters returns n subscriptions shaped like a property-management deployment: devices
// subscribing to their own commands, back-office services watching sites with '+' and '#'.
func fleetFilters(n int) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		site, dev := i%100, i/100
		switch i % 10 {
		case 0, 1, 2, 3, 4, 5: // a device's own command topics
			out = append(out, fmt.Sprintf("acs/site-%d/gate/gate-%d/cmd/+", site, dev))
		case 6: // exact status watch
			out = append(out, fmt.Sprintf("acs/site-%d/gate/gate-%d/status", site, dev))
		case 7: // a service per site and kind
			out = append(out, fmt.Sprintf("acs/site-%d/+/+/evt/#", site))
		case 8: // a service per device
			out = append(out, fmt.Sprintf("acs/site-%d/turnstile/t-%d/#", site, dev))
		default: // a dashboard per device kind
			out = append(out, fmt.Sprintf("acs/+/camera/cam-%d/state", dev))
		}
	}
	return out
}

func BenchmarkMatch(b *testing.B) {
	tr := New[int]()
	for i, f := range fleetFilters(100_000) {
		tr.Subscribe(i, f, Options{QoS: 1})
	}
	topics := []string{
		"acs/site-42/gate/gate-300/cmd/open",
		"acs/site-7/turnstile/t-12/evt/passage",
		"acs/site-99/gate/gate-999/status",
		"acs/site-3/camera/cam-5/state",
	}
	matched := 0
	fn := func(int, string, string, Options) { matched++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Match(topics[i%len(topics)], fn)
	}
	b.StopTimer()
	if matched == 0 {
		b.Fatal("benchmark topics matched nothing")
	}
}

// BenchmarkMatchFanOut is one topic delivered to 1,000 subscribers of the same filter.
func BenchmarkMatchFanOut(b *testing.B) {
	tr := New[int]()
	for i := 0; i < 1000; i++ {
		tr.Subscribe(i, "acs/site-1/gate/+/status", Options{})
	}
	n := 0
	fn := func(int, string, string, Options) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Match("acs/site-1/gate/gate-01/status", fn)
	}
	b.StopTimer()
	if n != 1000*b.N {
		b.Fatalf("delivered %d, want %d", n, 1000*b.N)
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	tr := New[int]()
	for i, f := range fleetFilters(100_000) {
		tr.Subscribe(i, f, Options{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		fn := func(int, string, string, Options) {}
		for pb.Next() {
			tr.Match("acs/site-42/gate/gate-300/cmd/open", fn)
		}
	})
}

func BenchmarkSubscribe(b *testing.B) {
	filters := fleetFilters(100_000)
	tr := New[int]()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(filters)
		if i >= len(filters) && j == 0 {
			b.StopTimer()
			tr = New[int]()
			b.StartTimer()
		}
		tr.Subscribe(j, filters[j], Options{QoS: 1})
	}
}

func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	filters := fleetFilters(1000)
	tr := New[int]()
	for i, f := range fleetFilters(100_000) {
		tr.Subscribe(i, f, Options{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := filters[i%len(filters)]
		tr.Subscribe(-1, f, Options{})
		tr.Unsubscribe(-1, f)
	}
}
