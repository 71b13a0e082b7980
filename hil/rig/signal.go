package rig

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// HandleSignals releases every relay and halts the rig on SIGINT or SIGTERM, then calls onSignal
// (if not nil) with the signal so that the owner can stop its work (cancel a context, exit). The
// relays are safe before onSignal runs, whatever onSignal does. Every further signal does the
// same. The returned stop function ends the handling; Close ends it too.
func (r *Rig) HandleSignals(onSignal func(os.Signal)) (stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	r.goFn(func() {
		defer signal.Stop(ch)
		for {
			select {
			case sig := <-ch:
				_ = r.Halt(Signal, sig.String()+": relays released")
				if onSignal != nil {
					onSignal(sig)
				}
			case <-done:
				return
			case <-r.stop:
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
