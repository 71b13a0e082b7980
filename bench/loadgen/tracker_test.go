package loadgen

import (
	"errors"
	"testing"
	"time"
)

func TestTrackerCountsLossDuplicatesAndReordering(t *testing.T) {
	type msg struct {
		pub uint32
		seq uint64
	}
	cases := []struct {
		name                                 string
		pubs                                 int
		got                                  []msg
		sent                                 []uint64
		distinct, dups, ooo, unknown, missed uint64
	}{
		{"all in order", 2, []msg{{0, 0}, {1, 0}, {0, 1}, {1, 1}}, []uint64{2, 2}, 4, 0, 0, 0, 0},
		{"gap in the middle", 1, []msg{{0, 0}, {0, 2}}, []uint64{3}, 2, 0, 0, 0, 1},
		{"tail never arrived", 1, []msg{{0, 0}, {0, 1}}, []uint64{5}, 2, 0, 0, 0, 3},
		{"duplicate", 1, []msg{{0, 0}, {0, 1}, {0, 1}}, []uint64{2}, 2, 1, 0, 0, 0},
		{"swapped pair", 1, []msg{{0, 1}, {0, 0}, {0, 2}}, []uint64{3}, 3, 0, 1, 0, 0},
		{"unknown publisher", 1, []msg{{0, 0}, {7, 0}}, []uint64{1}, 1, 0, 0, 1, 0},
		{"sequence past one word", 1, []msg{{0, 0}, {0, 64}, {0, 200}}, []uint64{201}, 3, 0, 0, 0, 198},
		{"publisher that sent nothing was heard", 2, nil, []uint64{0, 3}, 0, 0, 0, 0, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.pubs)
			for _, m := range tc.got {
				tr.Record(Stamp{Publisher: m.pub, Seq: m.seq})
			}
			if tr.Distinct != tc.distinct || tr.Duplicates != tc.dups || tr.OutOfOrder != tc.ooo || tr.Unknown != tc.unknown {
				t.Fatalf("distinct/dup/ooo/unknown = %d/%d/%d/%d, want %d/%d/%d/%d",
					tr.Distinct, tr.Duplicates, tr.OutOfOrder, tr.Unknown, tc.distinct, tc.dups, tc.ooo, tc.unknown)
			}
			if got := tr.Missing(tc.sent); got != tc.missed {
				t.Fatalf("Missing(%v) = %d, want %d", tc.sent, got, tc.missed)
			}
		})
	}
}

func TestStampRoundTripAndShortPayload(t *testing.T) {
	p := make([]byte, DefaultPayload)
	want := Stamp{Publisher: 99, Seq: 1 << 40, Sent: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()}
	PutStamp(p, want)
	got, err := ReadStamp(p)
	if err != nil || got != want {
		t.Fatalf("ReadStamp(PutStamp(%+v)) = %+v, %v", want, got, err)
	}
	if _, err := ReadStamp(p[:stampSize-1]); err == nil {
		t.Fatal("ReadStamp of a 19-byte payload: no error")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, ms(i))
	}
	cases := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 99, 0},
		{[]time.Duration{ms(5)}, 50, ms(5)},
		{hundred, 50, ms(50)},
		{hundred, 99, ms(99)},
		{hundred, 100, ms(100)},
		{[]time.Duration{ms(1), ms(2), ms(3)}, 50, ms(2)},
	}
	for _, tc := range cases {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(tc.in), tc.p, got, tc.want)
		}
	}
}

func TestParallelJoinsErrorsAndRunsEveryIndex(t *testing.T) {
	seen := make([]bool, 100)
	boom := errors.New("boom")
	err := parallel(t.Context(), 100, 7, func(i int) error {
		seen[i] = true
		if i == 42 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("parallel error = %v, want boom", err)
	}
	for i, s := range seen {
		if !s {
			t.Fatalf("index %d never ran", i)
		}
	}
}
