package sim

import (
	"sort"
	"sync"
	"time"
)

// lane delivers timed events in time order, one after the other. Each wire and each input pin has
// its own lane, so that a quick press-and-release or a burst of contact bounce arrives in the order
// it happened even though it travels through timers.
type lane struct {
	sched *scheduler

	mu      sync.Mutex // protects pending, timer and running
	pending []event    // sorted by at
	timer   *time.Timer
	running bool // fire is delivering events; it re-arms the timer when it is done
}

type event struct {
	at time.Time
	fn func(at time.Time)
}

// scheduler owns every lane's timers so that Close can stop them all and wait for running callbacks:
// nothing the board starts outlives it.
type scheduler struct {
	wg sync.WaitGroup // counts armed timers and running callbacks

	mu     sync.Mutex // protects closed and lanes
	closed bool
	lanes  []*lane
}

func (s *scheduler) newLane() *lane {
	l := &lane{sched: s}
	s.mu.Lock()
	s.lanes = append(s.lanes, l)
	s.mu.Unlock()
	return l
}

// at queues fn to run at time at (now if at has passed).
func (l *lane) at(at time.Time, fn func(at time.Time)) {
	l.sched.mu.Lock()
	closed := l.sched.closed
	l.sched.mu.Unlock()
	if closed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.pending), func(i int) bool { return l.pending[i].at.After(at) })
	l.pending = append(l.pending, event{})
	copy(l.pending[i+1:], l.pending[i:])
	l.pending[i] = event{at: at, fn: fn}
	l.arm()
}

// arm sets the lane's timer for its earliest event. Called with l.mu held.
func (l *lane) arm() {
	if l.running {
		return
	}
	if l.timer != nil {
		if !l.timer.Stop() {
			return // it fired and fire is about to take the lock; fire re-arms
		}
		l.sched.wg.Done()
		l.timer = nil
	}
	if len(l.pending) == 0 {
		return
	}
	l.sched.wg.Add(1)
	l.timer = time.AfterFunc(time.Until(l.pending[0].at), l.fire)
}

func (l *lane) fire() {
	defer l.sched.wg.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.running = true
	for len(l.pending) > 0 && !l.pending[0].at.After(time.Now()) {
		ev := l.pending[0]
		l.pending = l.pending[1:]
		l.mu.Unlock()
		ev.fn(ev.at)
		l.mu.Lock()
	}
	l.running = false
	l.arm()
}

// close stops every lane and waits for callbacks already running.
func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	lanes := s.lanes
	s.mu.Unlock()
	for _, l := range lanes {
		l.mu.Lock()
		l.pending = nil
		if l.timer != nil && l.timer.Stop() {
			s.wg.Done()
		}
		l.timer = nil
		l.mu.Unlock()
	}
	s.wg.Wait()
}
