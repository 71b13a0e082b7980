// Package boltstore keeps the broker's persistent sessions and retained messages in one bbolt file,
// so that they survive a restart of the broker and a kill -9 of its process.
//
// Every Store call is one bbolt transaction and returns only once that transaction is on disk
// (bbolt writes the changed pages, fdatasyncs, writes the meta page and fdatasyncs again). Calls
// made at the same time by different goroutines are committed together in one transaction (group
// commit) and each returns when the shared commit is durable: concurrency costs fewer syncs, never
// a weaker guarantee, and a lone caller never waits for a batching window. README.md beside this
// file has the layout, the guarantee and the measurements.
package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/gatehouse-iot/gatehouse/broker/session"
)

// FileName is the name of the data file inside a data directory (OpenDir).
const FileName = "broker.db"

// format identifies the layout of a data file; a file with another value is refused rather than
// misread.
const format = "gatehouse-broker-store/1"

var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketRetained = []byte("retained")
	keyFormat      = []byte("format")
	keyState       = []byte("state")
	bucketMessages = []byte("messages")
)

// ErrLocked is returned by Open when another process holds the data file.
var ErrLocked = errors.New("in use by another process")

// ErrCorrupt is wrapped by every error about a data file that cannot be read as a store.
var ErrCorrupt = errors.New("corrupt, or not a gatehouse broker store")

// Store is a session.Store and session.RetainedStore on one bbolt file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string

	// mu protects pending and committing: the group commit queue.
	mu         sync.Mutex
	pending    []*write
	committing bool // a goroutine is leading a commit; new writes wait to be picked up by one

	// Test hooks, nil in production: queued sees the queue length after each write joins it
	// (called with mu held); beforeCommit sees each batch's size before its transaction.
	queued       func(pending int)
	beforeCommit func(batch int)
}

var (
	_ session.Store         = (*Store)(nil)
	_ session.RetainedStore = (*Store)(nil)
)

// Options tune Open. The zero value is the durable default.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another process; default 1s.
	LockTimeout time.Duration
	// SkipCheck skips the consistency check of every page at Open (its cost grows with the file).
	SkipCheck bool
}

// OpenDir creates dir if needed (mode 0700) and opens dir/broker.db.
func OpenDir(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return Open(filepath.Join(dir, FileName), opts)
}

// Open opens (or creates) the data file at path. Every error names the file; a file that is not a
// store, or is damaged, gives an error wrapping ErrCorrupt; one held by another process ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	db, err := openBolt(path, opts.LockTimeout)
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("data file %s: %w (waited %s for its lock)", path, ErrLocked, opts.LockTimeout)
		case errors.As(err, new(*fs.PathError)):
			// The file could not be opened at all: a directory, no permission...
			return nil, fmt.Errorf("data file %s: %w", path, err)
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("data file %s: %w", path, err)
		}
		// Anything else comes from reading the file: bad meta pages, a size that does not fit
		// its page size, a freelist page that is not one.
		return nil, fmt.Errorf("data file %s: %w: %w", path, ErrCorrupt, err)
	}
	s := &Store{db: db, path: path}
	if err := s.init(!opts.SkipCheck); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt is bolt.Open with a panic on a damaged page (bbolt reads a page as whatever it finds
// there) turned into an error wrapping ErrCorrupt.
func openBolt(path string, lockTimeout time.Duration) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
}

// init checks the file's size, pages and format marker, and creates the buckets of a new file.
func (s *Store) init(check bool) error {
	// A file cut short (a full disk, a partial copy) would have bbolt map pages past its end;
	// touching them is a SIGBUS, so the size is checked before any page below the meta pages is read.
	err := s.view(func(tx *bolt.Tx) error {
		fi, err := os.Stat(s.path)
		if err != nil {
			return err
		}
		if fi.Size() < tx.Size() {
			return fmt.Errorf("%w: truncated: the file has %d bytes, its pages reach %d", ErrCorrupt, fi.Size(), tx.Size())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if check {
		err := s.view(func(tx *bolt.Tx) error {
			var errs []error
			for e := range tx.Check() {
				if len(errs) < 5 {
					errs = append(errs, e)
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(errs...))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.safeUpdate(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if hasBuckets(tx) {
				return fmt.Errorf("%w: bbolt file without the %q marker of a gatehouse broker store", ErrCorrupt, bucketMeta)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return fmt.Errorf("create buckets: %w", err)
			}
			if err := meta.Put(keyFormat, []byte(format)); err != nil {
				return fmt.Errorf("create buckets: %w", err)
			}
		}
		if got := meta.Get(keyFormat); !bytes.Equal(got, []byte(format)) {
			return fmt.Errorf("%w: format %q, this broker reads %q", ErrCorrupt, got, format)
		}
		for _, name := range [][]byte{bucketSessions, bucketRetained} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
}

func hasBuckets(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k != nil
}

// Path returns the data file's path.
func (s *Store) Path() string { return s.path }

// Close closes the data file. Every call that returned before Close is on disk.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("data file %s: close: %w", s.path, err)
	}
	return nil
}

// SaveSession implements session.Store.
func (s *Store) SaveSession(st session.State) error {
	if len(st.ClientID) > bolt.MaxKeySize {
		// bbolt checks the length of keys but not of bucket names.
		return fmt.Errorf("data file %s: client id of %d bytes: %w (at most %d bytes)", s.path, len(st.ClientID), bolterrors.ErrKeyTooLarge, bolt.MaxKeySize)
	}
	val, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("data file %s: session %q: %w", s.path, st.ClientID, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(bucketSessions).CreateBucketIfNotExists([]byte(st.ClientID))
		if err != nil {
			return fmt.Errorf("session %q: %w", st.ClientID, err)
		}
		if _, err := sb.CreateBucketIfNotExists(bucketMessages); err != nil {
			return fmt.Errorf("session %q: %w", st.ClientID, err)
		}
		return sb.Put(keyState, val)
	})
}

// DeleteSession implements session.Store. Deleting a session that is not stored is not an error.
func (s *Store) DeleteSession(clientID string) error {
	return s.update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSessions).DeleteBucket([]byte(clientID))
		if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("session %q: %w", clientID, err)
		}
		return nil
	})
}

// PutMessage implements session.Store; it returns session.ErrNotFound when the session is not stored.
func (s *Store) PutMessage(clientID string, m session.Message) error {
	val, err := encodeMessage(m)
	if err != nil {
		return fmt.Errorf("data file %s: session %q: message %d: %w", s.path, clientID, m.Seq, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		mb := messages(tx, clientID)
		if mb == nil {
			return fmt.Errorf("session %q: %w", clientID, session.ErrNotFound)
		}
		return mb.Put(seqKey(m.Seq), val)
	})
}

// DeleteMessage implements session.Store; it returns session.ErrNotFound when the session or the
// message is not stored.
func (s *Store) DeleteMessage(clientID string, seq uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		mb := messages(tx, clientID)
		if mb == nil {
			return fmt.Errorf("session %q: %w", clientID, session.ErrNotFound)
		}
		k := seqKey(seq)
		if mb.Get(k) == nil {
			return fmt.Errorf("session %q: message %d: %w", clientID, seq, session.ErrNotFound)
		}
		return mb.Delete(k)
	})
}

func messages(tx *bolt.Tx, clientID string) *bolt.Bucket {
	sb := tx.Bucket(bucketSessions).Bucket([]byte(clientID))
	if sb == nil {
		return nil
	}
	return sb.Bucket(bucketMessages)
}

// seqKey is the big-endian Seq, so that bbolt's byte order is delivery order.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// Load implements session.Store. It reads everything in one transaction, then calls fn outside
// it, so that fn may call the store. A record that cannot be decoded stops the load with an error
// naming the file, the session and the record.
func (s *Store) Load(fn func(st session.State, msgs []session.Message) error) error {
	type item struct {
		st   session.State
		msgs []session.Message
	}
	var items []item
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			id := string(k)
			sb := tx.Bucket(bucketSessions).Bucket(k)
			if v != nil || sb == nil {
				return fmt.Errorf("%w: key %q in bucket %s is not a session bucket", ErrCorrupt, id, bucketSessions)
			}
			raw := sb.Get(keyState)
			if raw == nil {
				return fmt.Errorf("%w: session %q has no %s record", ErrCorrupt, id, keyState)
			}
			st, err := decodeState(raw)
			if err != nil {
				return fmt.Errorf("%w: session %q: %s record: %w", ErrCorrupt, id, keyState, err)
			}
			if st.ClientID != id {
				return fmt.Errorf("%w: session %q: %s record names client %q", ErrCorrupt, id, keyState, st.ClientID)
			}
			it := item{st: st}
			if mb := sb.Bucket(bucketMessages); mb != nil {
				err := mb.ForEach(func(mk, mv []byte) error {
					if len(mk) != 8 || mv == nil {
						return fmt.Errorf("%w: session %q: message key %x is not a sequence number", ErrCorrupt, id, mk)
					}
					m, err := decodeMessage(mv)
					if err != nil {
						return fmt.Errorf("%w: session %q: message %d: %w", ErrCorrupt, id, binary.BigEndian.Uint64(mk), err)
					}
					if m.Seq != binary.BigEndian.Uint64(mk) {
						return fmt.Errorf("%w: session %q: message %d is stored under key %d", ErrCorrupt, id, m.Seq, binary.BigEndian.Uint64(mk))
					}
					it.msgs = append(it.msgs, m)
					return nil
				})
				if err != nil {
					return err
				}
			}
			items = append(items, it)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := fn(it.st, it.msgs); err != nil {
			return err
		}
	}
	return nil
}

// PutRetained implements session.RetainedStore.
func (s *Store) PutRetained(m session.Retained) error {
	val, err := encodeRetained(m)
	if err != nil {
		return fmt.Errorf("data file %s: retained %q: %w", s.path, m.Topic, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).Put([]byte(m.Topic), val)
	})
}

// DeleteRetained implements session.RetainedStore.
func (s *Store) DeleteRetained(topic string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).Delete([]byte(topic))
	})
}

// LoadRetained implements session.RetainedStore; like Load, fn runs outside the transaction.
func (s *Store) LoadRetained(fn func(m session.Retained) error) error {
	var all []session.Retained
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("%w: retained topic %q is a bucket, not a record", ErrCorrupt, k)
			}
			m, err := decodeRetained(v)
			if err != nil {
				return fmt.Errorf("%w: retained %q: %w", ErrCorrupt, k, err)
			}
			if m.Topic != string(k) {
				return fmt.Errorf("%w: retained %q is stored under key %q", ErrCorrupt, m.Topic, k)
			}
			all = append(all, m)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, m := range all {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// view runs a read transaction, turning a panic on a damaged page (or a fault on a page past the
// end of the file) into an error naming the file.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data file %s: %w: %v", s.path, ErrCorrupt, r)
		}
	}()
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("data file %s: %w", s.path, err)
	}
	return nil
}
