package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Fake is a manually advanced clock. Timers fire only inside Advance or Set, in deadline order
// (ties in the order they were created), each with Now equal to its deadline, in the goroutine
// that advances the clock. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex // protects now, timers, nextSeq and waiters
	now     time.Time
	timers  timerHeap
	nextSeq uint64
	// waiters are closed when a timer is added, so that a test can wait for a device's loop to
	// schedule its timer before advancing time past it.
	waiters []chan struct{}
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock that reads start until it is advanced.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc schedules fn to run when the clock is advanced to now+d or beyond. A d <= 0 fires on
// the next Advance (even Advance(0)).
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, at: f.now.Add(d), seq: f.nextSeq, fn: fn, index: -1}
	f.nextSeq++
	heap.Push(&f.timers, t)
	for _, w := range f.waiters {
		close(w)
	}
	f.waiters = nil
	return t
}

// After returns a channel that receives the fake time when the clock reaches now+d.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.AfterFunc(d, func() { ch <- f.Now() })
	return ch
}

// Advance moves the clock forward by d, firing every timer whose deadline is reached, including
// timers that callbacks schedule within the window. It returns the number of timers fired.
func (f *Fake) Advance(d time.Duration) int {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	return f.Set(target)
}

// Set moves the clock to t (never backwards) and fires the timers due by then, in order.
func (f *Fake) Set(t time.Time) int {
	fired := 0
	for {
		f.mu.Lock()
		if len(f.timers) == 0 || f.timers[0].at.After(t) {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return fired
		}
		next := heap.Pop(&f.timers).(*fakeTimer)
		if next.at.After(f.now) {
			f.now = next.at
		}
		f.mu.Unlock()
		next.fn()
		fired++
	}
}

// Next returns the deadline of the earliest pending timer.
func (f *Fake) Next() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	return f.timers[0].at, true
}

// Pending returns how many timers are scheduled and not yet fired or stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitPending blocks until at least n timers are pending or ctx ends. Tests use it to let a
// device's event loop, running in another goroutine, schedule its timers before they advance
// the clock: waiting on the event, never sleeping.
func (f *Fake) WaitPending(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return nil
		}
		w := make(chan struct{})
		f.waiters = append(f.waiters, w)
		f.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type fakeTimer struct {
	clock *Fake
	at    time.Time
	seq   uint64
	fn    func()
	index int // position in the heap, -1 when not scheduled
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.clock.timers, t.index)
	return true
}

// timerHeap orders timers by deadline, then by creation.
type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
