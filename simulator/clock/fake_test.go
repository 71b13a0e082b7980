package clock

import (
	"context"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func TestFakeFiresDueTimersInDeadlineOrder(t *testing.T) {
	f := NewFake(epoch)
	var got []string
	f.AfterFunc(3*time.Second, func() { got = append(got, "c") })
	f.AfterFunc(1*time.Second, func() { got = append(got, "a") })
	f.AfterFunc(2*time.Second, func() { got = append(got, "b1") })
	f.AfterFunc(2*time.Second, func() { got = append(got, "b2") })
	if n := f.Advance(2 * time.Second); n != 3 {
		t.Fatalf("Advance(2s) fired %d timers, want 3", n)
	}
	if want := "a b1 b2"; join(got) != want {
		t.Fatalf("fired %q, want %q", join(got), want)
	}
	if !f.Now().Equal(epoch.Add(2 * time.Second)) {
		t.Fatalf("Now = %v, want epoch+2s", f.Now())
	}
	f.Advance(time.Second)
	if want := "a b1 b2 c"; join(got) != want {
		t.Fatalf("fired %q, want %q", join(got), want)
	}
}

func TestFakeCallbackSeesItsDeadlineAndCanReschedule(t *testing.T) {
	f := NewFake(epoch)
	var seen []time.Duration
	var tick func()
	tick = func() {
		seen = append(seen, f.Now().Sub(epoch))
		if len(seen) < 5 {
			f.AfterFunc(time.Second, tick)
		}
	}
	f.AfterFunc(time.Second, tick)
	f.Advance(3500 * time.Millisecond)
	if len(seen) != 3 || seen[0] != time.Second || seen[2] != 3*time.Second {
		t.Fatalf("ticks at %v, want [1s 2s 3s]", seen)
	}
	if !f.Now().Equal(epoch.Add(3500 * time.Millisecond)) {
		t.Fatalf("Now = %v after Advance(3.5s)", f.Now().Sub(epoch))
	}
}

func TestFakeStop(t *testing.T) {
	f := NewFake(epoch)
	fired := false
	tm := f.AfterFunc(time.Second, func() { fired = true })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if tm.Stop() {
		t.Fatal("second Stop returned true")
	}
	f.Advance(time.Hour)
	if fired {
		t.Fatal("stopped timer fired")
	}
	if f.Pending() != 0 {
		t.Fatalf("Pending = %d, want 0", f.Pending())
	}
}

func TestFakeAfterAndWaitPending(t *testing.T) {
	f := NewFake(epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan time.Time, 1)
	go func() { got <- <-f.After(time.Minute) }()
	if err := f.WaitPending(ctx, 1); err != nil {
		t.Fatalf("WaitPending: %v", err)
	}
	f.Advance(time.Minute)
	select {
	case at := <-got:
		if !at.Equal(epoch.Add(time.Minute)) {
			t.Fatalf("After delivered %v", at)
		}
	case <-ctx.Done():
		t.Fatal("After did not deliver")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := f.WaitPending(short, 1); err == nil {
		t.Fatal("WaitPending returned nil with no timer pending")
	}
}

func TestRealClockFires(t *testing.T) {
	c := Real()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("real AfterFunc did not fire within 5s")
	}
	select {
	case <-c.After(time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("real After did not deliver within 5s")
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}
