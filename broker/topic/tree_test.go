package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refMatch is the matching rule of section 4.7 written as directly as possible, level by level,
// as the reference the tree is compared against.
func refMatch(filter, topic string) bool {
	if _, inner, err := SplitShared(filter); err == nil {
		filter = inner
	}
	f := strings.Split(filter, "/")
	tl := strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, lvl := range f {
		if lvl == "#" && i == len(f)-1 {
			return true // matches the parent level too: len(tl) >= i
		}
		if i >= len(tl) {
			return false
		}
		if lvl != "+" && lvl != tl[i] {
			return false
		}
	}
	return len(f) == len(tl)
}

type hit struct {
	key, filter, share string
	qos                byte
}

func collect(tr *Tree[string], topic string) []hit {
	var out []hit
	tr.Match(topic, func(k, f, s string, o Options) { out = append(out, hit{k, f, s, o.QoS}) })
	sort.Slice(out, func(i, j int) bool {
		if out[i].key != out[j].key {
			return out[i].key < out[j].key
		}
		return out[i].filter < out[j].filter
	})
	return out
}

func TestMatchRules(t *testing.T) {
	cases := []struct {
		filter string
		topic  string
		want   bool
	}{
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/#", "sport", true}, // '#' includes the parent level
		{"sport/#", "sports", false},
		{"#", "sport/tennis", true},
		{"#", "/", true},
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true}, // '+' matches an empty level
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"+/#", "a", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"a/b", "a//b", false},
		{"Sport", "sport", false},  // case sensitive
		{"sport ", "sport", false}, // no normalisation
		{"#", "$SYS/broker/load", false},
		{"+/broker/load", "$SYS/broker/load", false},
		{"+", "$SYS", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+/load", "$SYS/broker/load", true},
		{"a/$x", "a/$x", true},
		{"a/+", "a/$x", true}, // the '$' rule is about the first level only
		{"acs/+/gate/+/cmd/#", "acs/site-1/gate/gate-01/cmd/open", true},
		{"acs/+/gate/+/cmd/#", "acs/site-1/turnstile/t-01/cmd/open", false},
		{"$share/g/acs/#", "acs/x", true},
		{"$share/g/#", "$SYS/x", false},
	}
	for _, c := range cases {
		t.Run(c.filter+"~"+c.topic, func(t *testing.T) {
			if got := refMatch(c.filter, c.topic); got != c.want {
				t.Fatalf("reference matcher: %q vs %q = %v, want %v", c.filter, c.topic, got, c.want)
			}
			tr := New[string]()
			tr.Subscribe("k", c.filter, Options{QoS: 1})
			hits := collect(tr, c.topic)
			if got := len(hits) == 1; got != c.want {
				t.Fatalf("tree: filter %q vs topic %q matched %v (%v), want %v", c.filter, c.topic, got, hits, c.want)
			}
			if c.want && hits[0].filter != c.filter {
				t.Fatalf("filter reported %q, want %q", hits[0].filter, c.filter)
			}
		})
	}
}

func TestMatchAgreesWithReferenceOnRandomTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"a", "b", "", "$s", "+", "#"}
	randFilter := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(len(levels))]
			if parts[i] == "#" && i != n-1 {
				parts[i] = "+"
			}
		}
		return strings.Join(parts, "/")
	}
	randTopic := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(4)]
		}
		return strings.Join(parts, "/")
	}
	for round := 0; round < 50; round++ {
		tr := New[string]()
		var filters []string
		for i := 0; i < 40; i++ {
			f := randFilter()
			if !slices.Contains(filters, f) {
				filters = append(filters, f)
				tr.Subscribe("k-"+f, f, Options{})
			}
		}
		for i := 0; i < 40; i++ {
			topic := randTopic()
			var want []string
			for _, f := range filters {
				if refMatch(f, topic) {
					want = append(want, f)
				}
			}
			var got []string
			tr.Match(topic, func(_ string, f, _ string, _ Options) { got = append(got, f) })
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("topic %q over %q: tree matched %q, reference %q", topic, filters, got, want)
			}
		}
	}
}

func TestSubscribeReplacesAndUnsubscribeRemoves(t *testing.T) {
	tr := New[string]()
	if tr.Subscribe("c1", "a/+", Options{QoS: 0}) {
		t.Fatal("first subscribe reported replaced")
	}
	if !tr.Subscribe("c1", "a/+", Options{QoS: 2, ID: 7}) {
		t.Fatal("second subscribe to the same filter not reported as replaced")
	}
	tr.Subscribe("c2", "a/+", Options{QoS: 1})
	tr.Subscribe("c1", "a/#", Options{QoS: 1})
	if got := tr.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	got := collect(tr, "a/b")
	want := []hit{{"c1", "a/#", "", 1}, {"c1", "a/+", "", 2}, {"c2", "a/+", "", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("Match = %v, want %v", got, want)
	}
	var id uint32
	tr.Match("a/b", func(k, f, _ string, o Options) {
		if k == "c1" && f == "a/+" {
			id = o.ID
		}
	})
	if id != 7 {
		t.Fatalf("replaced options not kept: subscription identifier %d, want 7", id)
	}
	if tr.Unsubscribe("c3", "a/+") {
		t.Fatal("unsubscribe of an unknown key reported existed")
	}
	if tr.Unsubscribe("c1", "x/y") {
		t.Fatal("unsubscribe of an unknown filter reported existed")
	}
	if !tr.Unsubscribe("c1", "a/+") {
		t.Fatal("unsubscribe did not find the subscription")
	}
	if got := collect(tr, "a/b"); !slices.Equal(got, []hit{{"c1", "a/#", "", 1}, {"c2", "a/+", "", 1}}) {
		t.Fatalf("after unsubscribe Match = %v", got)
	}
	if tr.Len() != 2 {
		t.Fatalf("Len = %d, want 2", tr.Len())
	}
}

func TestManySubscribersOfOneFilter(t *testing.T) {
	tr := New[int]()
	const n = 1000
	for i := 0; i < n; i++ {
		tr.Subscribe(i, "acs/site-1/gate/+/status", Options{QoS: byte(i % 3)})
	}
	for i := 0; i < n; i += 2 {
		if !tr.Unsubscribe(i, "acs/site-1/gate/+/status") {
			t.Fatalf("unsubscribe %d failed", i)
		}
	}
	seen := map[int]byte{}
	tr.Match("acs/site-1/gate/gate-7/status", func(k int, _, _ string, o Options) {
		if _, dup := seen[k]; dup {
			t.Fatalf("key %d delivered twice", k)
		}
		seen[k] = o.QoS
	})
	if len(seen) != n/2 {
		t.Fatalf("matched %d subscribers, want %d", len(seen), n/2)
	}
	for k, q := range seen {
		if k%2 == 0 || q != byte(k%3) {
			t.Fatalf("subscriber %d with QoS %d should not be there", k, q)
		}
	}
}

func TestSharedSubscriptionRoundRobin(t *testing.T) {
	tr := New[string]()
	for _, k := range []string{"m1", "m2", "m3"} {
		tr.Subscribe(k, "$share/workers/acs/+/evt/#", Options{QoS: 1})
	}
	tr.Subscribe("m1", "$share/audit/acs/#", Options{})
	tr.Subscribe("plain", "acs/#", Options{})
	counts := map[string]int{}
	for i := 0; i < 30; i++ {
		var workers, audit, plain int
		tr.Match("acs/site-1/evt/card", func(k, f, share string, _ Options) {
			switch share {
			case "workers":
				workers++
				counts[k]++
				if f != "$share/workers/acs/+/evt/#" {
					t.Fatalf("shared filter reported as %q", f)
				}
			case "audit":
				audit++
			case "":
				plain++
			}
		})
		if workers != 1 || audit != 1 || plain != 1 {
			t.Fatalf("message %d: workers %d, audit %d, plain %d deliveries; want one each", i, workers, audit, plain)
		}
	}
	for _, k := range []string{"m1", "m2", "m3"} {
		if counts[k] != 10 {
			t.Fatalf("round robin uneven: %v", counts)
		}
	}
	if tr.Len() != 5 {
		t.Fatalf("Len = %d, want 5", tr.Len())
	}
}

func TestSharedSubscriptionSkipsIneligibleMembers(t *testing.T) {
	tr := New[string]()
	for _, k := range []string{"a", "b", "c"} {
		tr.Subscribe(k, "$share/g/t", Options{})
	}
	online := map[string]bool{"b": true}
	for i := 0; i < 6; i++ {
		var got []string
		tr.MatchEligible("t", func(k string) bool { return online[k] }, func(k, _, _ string, _ Options) { got = append(got, k) })
		if !slices.Equal(got, []string{"b"}) {
			t.Fatalf("delivered to %v, want only the eligible member b", got)
		}
	}
	// No eligible member: the group still takes the message.
	var got []string
	tr.MatchEligible("t", func(string) bool { return false }, func(k, _, _ string, _ Options) { got = append(got, k) })
	if len(got) != 1 {
		t.Fatalf("no eligible member: delivered to %v, want exactly one member", got)
	}
	for _, k := range []string{"a", "b", "c"} {
		if !tr.Unsubscribe(k, "$share/g/t") {
			t.Fatalf("unsubscribe shared member %s failed", k)
		}
	}
	tr.Match("t", func(k, _, _ string, _ Options) { t.Fatalf("delivered to %s after every member left", k) })
	if tr.nodes != 0 {
		t.Fatalf("nodes left after every member left: %d", tr.nodes)
	}
}

func TestChurnReturnsNodeCountToZero(t *testing.T) {
	tr := New[int]()
	const n = 100_000
	filter := func(i int) string {
		switch i % 4 {
		case 0:
			return fmt.Sprintf("acs/site-%d/gate/gate-%d/cmd/+", i%97, i)
		case 1:
			return fmt.Sprintf("acs/site-%d/turnstile/#", i)
		case 2:
			return fmt.Sprintf("$share/g%d/acs/site-%d/+/evt", i%7, i)
		default:
			return fmt.Sprintf("acs//%d/state", i)
		}
	}
	for i := 0; i < n; i++ {
		tr.Subscribe(i, filter(i), Options{})
	}
	if tr.Len() != n || tr.nodes == 0 {
		t.Fatalf("after subscribing: Len %d nodes %d", tr.Len(), tr.nodes)
	}
	for i := 0; i < n; i++ {
		if !tr.Unsubscribe(i, filter(i)) {
			t.Fatalf("unsubscribe %d (%s) failed", i, filter(i))
		}
	}
	if tr.Len() != 0 || tr.nodes != 0 {
		t.Fatalf("after unsubscribing everything: Len %d, nodes %d; want 0 and 0", tr.Len(), tr.nodes)
	}
	if tr.root.children != nil || tr.root.plus != nil || tr.root.hash != nil {
		t.Fatal("root still holds children")
	}
}

func TestEachVisitsEverySubscription(t *testing.T) {
	tr := New[string]()
	tr.Subscribe("a", "x/+", Options{QoS: 1})
	tr.Subscribe("b", "$share/g/x/#", Options{QoS: 2})
	tr.Subscribe("c", "#", Options{})
	var got []string
	tr.Each(func(k, f, s string, o Options) bool {
		got = append(got, fmt.Sprintf("%s %s %s %d", k, f, s, o.QoS))
		return true
	})
	sort.Strings(got)
	want := []string{"a x/+  1", "b $share/g/x/# g 2", "c #  0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Each = %q, want %q", got, want)
	}
	n := 0
	tr.Each(func(string, string, string, Options) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Each went on after fn returned false: %d calls", n)
	}
}

func TestConcurrentSubscribeMatchUnsubscribe(t *testing.T) {
	tr := New[int]()
	var wg sync.WaitGroup
	const writers, per = 4, 500
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				f := fmt.Sprintf("acs/site-%d/gate/%d/cmd/+", w, i%50)
				tr.Subscribe(w*per+i, f, Options{})
				if i%2 == 0 {
					tr.Unsubscribe(w*per+i, f)
				}
			}
		}()
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				tr.Match(fmt.Sprintf("acs/site-%d/gate/%d/cmd/open", i%writers, i%50), func(int, string, string, Options) {})
			}
		}()
	}
	wg.Wait()
	if got := tr.Len(); got != writers*per/2 {
		t.Fatalf("Len = %d after concurrent churn, want %d", got, writers*per/2)
	}
	total := 0
	for w := 0; w < writers; w++ {
		for i := 0; i < 50; i++ {
			tr.Match(fmt.Sprintf("acs/site-%d/gate/%d/cmd/open", w, i), func(int, string, string, Options) { total++ })
		}
	}
	if total != writers*per/2 {
		t.Fatalf("matched %d subscriptions in total, want %d", total, writers*per/2)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tr := New[int]()
	for i := 0; i < 100; i++ {
		tr.Subscribe(i, fmt.Sprintf("acs/site-%d/gate/+/cmd/#", i%10), Options{})
		tr.Subscribe(i, "$share/g/acs/+/gate/#", Options{})
	}
	n := 0
	fn := func(int, string, string, Options) { n++ }
	allocs := testing.AllocsPerRun(100, func() { tr.Match("acs/site-3/gate/gate-01/cmd/open", fn) })
	if allocs != 0 {
		t.Fatalf("Match allocated %.1f times per call, want 0", allocs)
	}
	if n == 0 {
		t.Fatal("nothing matched")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c")
	f.Add("#", "$SYS/x")
	f.Add("+/+", "/")
	f.Add("$share/g/a/#", "a")
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if ValidateFilter(filter) != nil || ValidateTopic(topic) != nil {
			return
		}
		tr := New[int]()
		tr.Subscribe(1, filter, Options{})
		got := false
		tr.Match(topic, func(int, string, string, Options) { got = true })
		if want := refMatch(filter, topic); got != want {
			t.Fatalf("filter %q topic %q: tree %v, reference %v", filter, topic, got, want)
		}
		if !tr.Unsubscribe(1, filter) || tr.nodes != 0 {
			t.Fatalf("filter %q: unsubscribe left %d nodes", filter, tr.nodes)
		}
	})
}

// A decoder may hand out strings aliasing a buffer it reuses; the tree must keep its own copy.
func TestSubscribeCopiesAliasedFilters(t *testing.T) {
	tr := New[int]()
	buf := []byte("$share/g/acs/+/gate/#")
	aliased := unsafe.String(&buf[0], len(buf))
	tr.Subscribe(1, aliased, Options{})
	tr.Subscribe(2, aliased[len("$share/g/"):], Options{})
	copy(buf, "XXXXXXXXXXXXXXXXXXXXX") // the reader reuses its buffer
	var got []string
	tr.Match("acs/site-1/gate/g-1", func(k int, f, share string, _ Options) { got = append(got, fmt.Sprint(k, f, share)) })
	sort.Strings(got)
	if want := []string{"1$share/g/acs/+/gate/#g", "2acs/+/gate/#"}; !slices.Equal(got, want) {
		t.Fatalf("after the caller's buffer changed: %q, want %q", got, want)
	}
}
