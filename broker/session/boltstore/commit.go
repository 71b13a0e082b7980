package boltstore

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// write is one caller's change waiting to be committed.
type write struct {
	fn      func(*bolt.Tx) error
	err     error
	done    chan struct{} // closed once err is final and the change (if err is nil) is on disk
	promote chan struct{} // closed when this caller must lead the next commit
}

// update applies fn in a transaction and returns once that transaction is durable.
//
// Group commit without a batching window: the first caller leads a commit of every change queued
// so far; callers that arrive meanwhile queue up, and when the commit ends the first of them is
// promoted to lead the next one with all that queued. A lone caller commits at once, exactly as
// bbolt's Update would; many callers share one fsync. Unlike bbolt's Batch, nobody waits for a
// timer, so a single publisher's latency is one commit, not one commit plus a window.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan struct{}), promote: make(chan struct{})}
	s.mu.Lock()
	s.pending = append(s.pending, w)
	if s.queued != nil {
		s.queued(len(s.pending))
	}
	if s.committing {
		s.mu.Unlock()
		select {
		case <-w.done:
			return w.err
		case <-w.promote:
		}
		s.mu.Lock()
	} else {
		s.committing = true
	}
	batch := s.pending
	s.pending = nil
	s.mu.Unlock()

	s.commit(batch)

	s.mu.Lock()
	if len(s.pending) > 0 {
		close(s.pending[0].promote)
	} else {
		s.committing = false
	}
	s.mu.Unlock()
	return w.err
}

// commit applies every change of batch in one transaction. When one change fails, the transaction
// is rolled back and each change is applied in a transaction of its own, so that one caller's
// error (a missing session, say) is not every caller's.
func (s *Store) commit(batch []*write) {
	if s.beforeCommit != nil {
		s.beforeCommit(len(batch))
	}
	failed := false
	err := s.safeUpdate(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.fn(tx); err != nil {
				failed = true
				return err
			}
		}
		return nil
	})
	if err != nil && failed && len(batch) > 1 {
		for _, w := range batch {
			w.err = s.safeUpdate(w.fn)
		}
	} else {
		for _, w := range batch {
			w.err = err
		}
	}
	for _, w := range batch {
		close(w.done)
	}
}

// safeUpdate is bbolt's Update with a panic on a damaged page (or a fault past the end of the file)
// turned into an error, and every error naming the file.
func (s *Store) safeUpdate(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data file %s: %w: %v", s.path, ErrCorrupt, r)
		}
	}()
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("data file %s: %w", s.path, err)
	}
	return nil
}
