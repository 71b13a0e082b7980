package retain

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func msg(topic, payload string) Message {
	return Message{Topic: topic, Payload: []byte(payload), QoS: 1, Stored: t0}
}

func topics(s *Store, filter string, now time.Time) []string {
	var out []string
	s.Match(filter, now, func(m Message) bool { out = append(out, m.Topic); return true })
	sort.Strings(out)
	return out
}

// refMatch is the section 4.7 matching rule written level by level, as the reference.
func refMatch(filter, topic string) bool {
	f, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, lvl := range f {
		if lvl == "#" && i == len(f)-1 {
			return true
		}
		if i >= len(tl) || (lvl != "+" && lvl != tl[i]) {
			return false
		}
	}
	return len(f) == len(tl)
}

func TestMatchWildcards(t *testing.T) {
	s := NewStore()
	for _, tp := range []string{
		"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/score",
		"sport/", "sport//x", "/", "/finance", "$SYS/broker/uptime", "$SYS", "a/$x",
		"acs/site-1/gate/gate-01/status", "acs/site-1/gate/gate-02/status", "acs/site-2/turnstile/t-1/status",
		"acs/site-1/gate/gate-01/state",
	} {
		s.Set(msg(tp, "x"))
	}
	cases := []struct {
		filter string
		want   []string
	}{
		{"sport/#", []string{"sport", "sport/", "sport//x", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/score"}},
		{"sport/+", []string{"sport/", "sport/tennis"}},
		{"sport/tennis/+/#", []string{"sport/tennis/player1", "sport/tennis/player1/score"}},
		{"+", []string{"sport"}},
		{"+/+", []string{"/", "/finance", "a/$x", "sport/", "sport/tennis"}}, // '$' matters at the first level only
		{"#", []string{"/", "/finance", "a/$x", "acs/site-1/gate/gate-01/state", "acs/site-1/gate/gate-01/status",
			"acs/site-1/gate/gate-02/status", "acs/site-2/turnstile/t-1/status", "sport", "sport/", "sport//x",
			"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/score"}},
		{"$SYS/#", []string{"$SYS", "$SYS/broker/uptime"}},
		{"+/broker/uptime", nil},
		{"a/+", []string{"a/$x"}},
		{"acs/+/+/+/status", []string{"acs/site-1/gate/gate-01/status", "acs/site-1/gate/gate-02/status", "acs/site-2/turnstile/t-1/status"}},
		{"acs/site-1/gate/gate-01/status", []string{"acs/site-1/gate/gate-01/status"}},
		{"Sport/#", nil},
		{"nothing/here", nil},
	}
	for _, c := range cases {
		if got := topics(s, c.filter, t0); !slices.Equal(got, c.want) {
			t.Errorf("Match(%q) = %q, want %q", c.filter, got, c.want)
		}
	}
}

func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	levels := []string{"a", "b", "", "$s"}
	rand := func(wild bool) string {
		n := 1 + rng.IntN(4)
		p := make([]string, n)
		for i := range p {
			k := len(levels)
			if wild {
				k += 2
			}
			switch j := rng.IntN(k); {
			case j < len(levels):
				p[i] = levels[j]
			case j == len(levels) || i != n-1:
				p[i] = "+"
			default:
				p[i] = "#"
			}
		}
		return strings.Join(p, "/")
	}
	for round := 0; round < 50; round++ {
		s := NewStore()
		var stored []string
		for i := 0; i < 30; i++ {
			tp := rand(false)
			s.Set(msg(tp, "x"))
			if !slices.Contains(stored, tp) {
				stored = append(stored, tp)
			}
		}
		for i := 0; i < 30; i++ {
			f := rand(true)
			var want []string
			for _, tp := range stored {
				if refMatch(f, tp) {
					want = append(want, tp)
				}
			}
			sort.Strings(want)
			if got := topics(s, f, t0); !slices.Equal(got, want) {
				t.Fatalf("filter %q over %q: store %q, reference %q", f, stored, got, want)
			}
		}
	}
}

func TestSetReplacesAndEmptyPayloadDeletes(t *testing.T) {
	s := NewStore()
	s.Set(msg("acs/site-1/gate/g1/status", `{"online":true}`))
	s.Set(msg("acs/site-1/gate/g1/status", `{"online":false}`))
	if s.Len() != 1 {
		t.Fatalf("Len = %d after replacing, want 1", s.Len())
	}
	m, ok := s.Get("acs/site-1/gate/g1/status")
	if !ok || string(m.Payload) != `{"online":false}` || m.QoS != 1 {
		t.Fatalf("Get = %+v, %v; want the replacing message", m, ok)
	}
	if _, ok := s.Get("acs/site-1/gate/g1"); ok {
		t.Fatal("Get found a message at an intermediate level")
	}
	// 3.1.1 MQTT-3.3.1-10/11, 5.0 MQTT-3.3.1-6/7: an empty payload deletes and is not stored.
	s.Set(Message{Topic: "acs/site-1/gate/g1/status"})
	if _, ok := s.Get("acs/site-1/gate/g1/status"); ok {
		t.Fatal("empty payload did not delete the retained message")
	}
	if got := topics(s, "#", t0); got != nil {
		t.Fatalf("after delete Match(#) = %q", got)
	}
	s.Set(Message{Topic: "never/stored", Payload: []byte{}})
	if s.Len() != 0 || s.nodes != 0 {
		t.Fatalf("after deleting everything: Len %d, nodes %d; want 0 and 0", s.Len(), s.nodes)
	}
}

func TestDeletingKeepsOtherBranches(t *testing.T) {
	s := NewStore()
	s.Set(msg("a/b", "1"))
	s.Set(msg("a/b/c", "2"))
	s.Set(msg("a", "3"))
	s.Set(Message{Topic: "a/b"})
	if got := topics(s, "#", t0); !slices.Equal(got, []string{"a", "a/b/c"}) {
		t.Fatalf("after deleting a/b: %q", got)
	}
	s.Set(Message{Topic: "a/b/c"})
	s.Set(Message{Topic: "a"})
	if s.nodes != 0 || s.Len() != 0 {
		t.Fatalf("nodes %d, Len %d after deleting all", s.nodes, s.Len())
	}
}

func TestExpiredMessagesAreSkippedAndRemoved(t *testing.T) {
	s := NewStore()
	s.Set(Message{Topic: "t/short", Payload: []byte("x"), Expiry: t0.Add(time.Second)})
	s.Set(Message{Topic: "t/long", Payload: []byte("x"), Expiry: t0.Add(time.Hour)})
	s.Set(Message{Topic: "t/forever", Payload: []byte("x")})
	s.Set(Message{Topic: "other/short", Payload: []byte("x"), Expiry: t0.Add(time.Second)})
	if got := topics(s, "t/+", t0); !slices.Equal(got, []string{"t/forever", "t/long", "t/short"}) {
		t.Fatalf("before expiry: %q", got)
	}
	at := t0.Add(time.Second) // expiry is inclusive: at the instant of expiry it is gone
	if got := topics(s, "t/+", at); !slices.Equal(got, []string{"t/forever", "t/long"}) {
		t.Fatalf("after expiry: %q", got)
	}
	if _, ok := s.Get("t/short"); ok {
		t.Fatal("expired message met by Match still stored")
	}
	// Match removes what it met; other branches wait for Sweep.
	if _, ok := s.Get("other/short"); !ok || s.Len() != 3 {
		t.Fatalf("Match removed messages outside its filter: Len %d", s.Len())
	}
	if n := s.Sweep(t0.Add(2 * time.Hour)); n != 2 || s.Len() != 1 {
		t.Fatalf("Sweep removed %d, Len %d; want 2 and 1", n, s.Len())
	}
	if got := topics(s, "#", t0.Add(2*time.Hour)); !slices.Equal(got, []string{"t/forever"}) || s.nodes != 2 {
		t.Fatalf("after Sweep: %q with %d nodes; want t/forever alone in 2 nodes", got, s.nodes)
	}
	if n := s.Sweep(t0.Add(3 * time.Hour)); n != 0 {
		t.Fatalf("second Sweep removed %d", n)
	}
}

func TestMatchStopsWhenFnReturnsFalse(t *testing.T) {
	s := NewStore()
	for i := 0; i < 10; i++ {
		s.Set(msg(fmt.Sprintf("x/%d", i), "p"))
		s.Set(msg(fmt.Sprintf("y/%d/z", i), "p"))
	}
	for _, f := range []string{"x/+", "#", "+/+/z"} {
		n := 0
		s.Match(f, t0, func(Message) bool { n++; return false })
		if n != 1 {
			t.Fatalf("Match(%q) called fn %d times after it returned false", f, n)
		}
	}
	n := 0
	s.All(func(Message) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("All called fn %d times, want 3", n)
	}
}

func TestAllVisitsEveryMessage(t *testing.T) {
	s := NewStore()
	want := []string{"$SYS/x", "a", "a/b", "c//d"}
	for _, tp := range want {
		s.Set(msg(tp, "p"))
	}
	var got []string
	s.All(func(m Message) bool { got = append(got, m.Topic); return true })
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("All = %q, want %q", got, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewStore()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tp := fmt.Sprintf("acs/site-%d/gate/g-%d/status", w, i%50)
				if i%3 == 2 {
					s.Set(Message{Topic: tp})
				} else {
					s.Set(Message{Topic: tp, Payload: []byte("on"), Expiry: t0.Add(time.Duration(i%5) * time.Second)})
				}
				s.Match("acs/+/gate/#", t0.Add(2*time.Second), func(Message) bool { return true })
			}
		}()
	}
	wg.Wait()
	// Every topic's final state is known: i%3 == 2 deletes; otherwise stored with an expiry.
	n := 0
	s.All(func(Message) bool { n++; return true })
	if n != s.Len() {
		t.Fatalf("All saw %d messages, Len says %d", n, s.Len())
	}
	s.Sweep(t0.Add(time.Hour))
	if s.Len() != 0 || s.nodes != 0 {
		t.Fatalf("after sweeping all: Len %d, nodes %d", s.Len(), s.nodes)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	s := NewStore()
	for i := 0; i < 100; i++ {
		s.Set(msg(fmt.Sprintf("acs/site-%d/gate/g/status", i), "p"))
	}
	n := 0
	fn := func(Message) bool { n++; return true }
	if a := testing.AllocsPerRun(50, func() { s.Match("acs/+/gate/+/status", t0, fn) }); a != 0 {
		t.Fatalf("Match allocated %.1f times per call", a)
	}
	if n == 0 {
		t.Fatal("nothing matched")
	}
}

func BenchmarkRetainedMatch(b *testing.B) {
	s := NewStore()
	// 100,000 retained messages: 100 sites × 250 devices × status/state, and camera snapshots.
	for site := 0; site < 100; site++ {
		for dev := 0; dev < 250; dev++ {
			s.Set(msg(fmt.Sprintf("acs/site-%d/gate/gate-%d/status", site, dev), `{"online":true}`))
			s.Set(msg(fmt.Sprintf("acs/site-%d/gate/gate-%d/state", site, dev), `{"position":"closed"}`))
			s.Set(msg(fmt.Sprintf("acs/site-%d/camera/cam-%d/status", site, dev), `{"online":true}`))
			s.Set(msg(fmt.Sprintf("acs/site-%d/turnstile/t-%d/status", site, dev), `{"online":true}`))
		}
	}
	for _, c := range []struct {
		name, filter string
		want         int
	}{
		{"exact", "acs/site-42/gate/gate-7/status", 1},
		{"site-gates-plus", "acs/site-42/gate/+/status", 250},
		{"site-hash", "acs/site-42/#", 1000},
		{"all-status", "acs/+/+/+/status", 75_000},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			fn := func(Message) bool { n++; return true }
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.Match(c.filter, t0, fn)
			}
			if n != c.want*b.N {
				b.Fatalf("matched %d, want %d", n, c.want*b.N)
			}
		})
	}
}

func BenchmarkRetainedSet(b *testing.B) {
	s := NewStore()
	payload := []byte(`{"online":true}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Set(Message{Topic: fmt.Sprintf("acs/site-%d/gate/gate-%d/status", i%100, i%1000), Payload: payload})
	}
}

// A decoder may hand out strings aliasing a buffer it reuses; the store must keep its own copy.
func TestSetCopiesAliasedTopics(t *testing.T) {
	s := NewStore()
	buf := []byte("acs/site-1/gate/g-1/status")
	s.Set(Message{Topic: unsafe.String(&buf[0], len(buf)), Payload: []byte("on")})
	copy(buf, "XXXXXXXXXXXXXXXXXXXXXXXXXX")
	if got := topics(s, "acs/+/gate/+/status", t0); !slices.Equal(got, []string{"acs/site-1/gate/g-1/status"}) {
		t.Fatalf("after the caller's buffer changed: %q", got)
	}
	// Replacing keeps the owned topic.
	buf = []byte("acs/site-1/gate/g-1/status")
	s.Set(Message{Topic: unsafe.String(&buf[0], len(buf)), Payload: []byte("off")})
	copy(buf, "YYYYYYYYYYYYYYYYYYYYYYYYYY")
	if m, ok := s.Get("acs/site-1/gate/g-1/status"); !ok || m.Topic != "acs/site-1/gate/g-1/status" || string(m.Payload) != "off" {
		t.Fatalf("replaced message: %+v %v", m, ok)
	}
}
