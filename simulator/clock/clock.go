// Package clock gives simulated devices an injectable source of time: the real clock in production
// and a fake one in tests, so that state machines with timers (auto-close, pass windows, motion
// durations) are tested by advancing time instead of sleeping.
//
// The interface is deliberately small: devices need the current time and callbacks after a
// duration. Callbacks never run while a lock of the clock is held, so they may schedule new timers.
package clock

import "time"

// Clock tells the time and schedules callbacks.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once, in its own goroutine for the real clock or in the goroutine that
	// advances a fake clock, after d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
	// After returns a channel that receives the time once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// Timer is a pending AfterFunc callback.
type Timer interface {
	// Stop prevents the callback from running; it reports whether it did (false when the timer
	// already fired or was stopped).
	Stop() bool
}

// Real returns the clock of the operating system. Its timers are the Go runtime's timers: one
// shared heap, no goroutine per pending timer, which is what lets ten thousand devices each keep
// a handful of timers.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
func (realClock) After(d time.Duration) <-chan time.Time    { return time.After(d) }
