package topic

import (
	"fmt"
	"testing"
)

// fleetFilters returns n subscriptions shaped like a property-management deployment of 100 sites
// with 1,000 devices each: devices subscribing to their own commands, exact status watches, and
// services watching one device through '+' and '#'. Each filter is subscribed once, so a message
// reaches one or two subscribers: the benchmark measures finding them, not fanning out.
func fleetFilters(n int) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		site, dev := i%100, (i/100)%1000
		switch dev % 10 {
		case 0, 1, 2, 3, 4, 5: // a device's own command topics
			out = append(out, fmt.Sprintf("acs/site-%d/gate/gate-%d/cmd/+", site, dev))
		case 6: // exact status watch
			out = append(out, fmt.Sprintf("acs/site-%d/gate/gate-%d/status", site, dev))
		case 7: // events of one device whatever its kind
			out = append(out, fmt.Sprintf("acs/site-%d/+/gate-%d/evt/#", site, dev))
		case 8: // everything of one turnstile
			out = append(out, fmt.Sprintf("acs/site-%d/turnstile/t-%d/#", site, dev))
		default: // one camera's state under any prefix
			out = append(out, fmt.Sprintf("+/site-%d/camera/cam-%d/state", site, dev))
		}
	}
	return out
}

// BenchmarkMatch matches topics against 100,000 subscriptions (mixed exact, '+' and '#').
func BenchmarkMatch(b *testing.B) {
	tr := New[int]()
	for i, f := range fleetFilters(100_000) {
		tr.Subscribe(i, f, Options{QoS: 1})
	}
	topics := []string{
		"acs/site-42/gate/gate-300/cmd/open",    // cmd/+
		"acs/site-7/turnstile/t-18/evt/passage", // turnstile/t-18/#
		"acs/site-99/gate/gate-996/status",      // exact
		"acs/site-3/camera/cam-59/state",        // +/site-3/...
		"acs/site-5/gate/gate-17/evt/card",      // +/gate-17/evt/#
		"acs/site-5/gate/gate-18/evt/card",      // no subscriber
	}
	matched := 0
	fn := func(int, string, string, Options) { matched++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Match(topics[i%len(topics)], fn)
	}
	b.StopTimer()
	b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
	if b.N >= len(topics) && matched < b.N*5/6 {
		b.Fatalf("benchmark topics matched %d times in %d calls, want 5 of every 6", matched, b.N)
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
