package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// expectErr checks that err names the file and contains every part of want.
func expectErr(t *testing.T, err error, path string, sentinel error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %s", path)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file %s", err, path)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}

// filledStore writes a store with sessions, messages and retained messages spanning several pages.
func filledStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	for c := range 4 {
		id := fmt.Sprintf("gate-%02d", c)
		must(t, s.SaveSession(session.State{ClientID: id, Version: packet.V311, ExpiryInterval: session.NeverExpires}))
		for seq := uint64(1); seq <= 40; seq++ {
			must(t, s.PutMessage(id, session.Message{Seq: seq, Topic: "acs/s/gate/" + id + "/cmd/open", Payload: make([]byte, 300), QoS: 1}))
		}
	}
	must(t, s.PutRetained(session.Retained{Topic: "acs/s/gate/gate-00/status", Payload: []byte("on"), QoS: 1}))
	must(t, s.Close())
	return path
}

func TestGarbageIsNotAStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	junk := make([]byte, 3*4096)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	must(t, os.WriteFile(path, junk, 0o600))
	_, err := Open(path, Options{})
	expectErr(t, err, path, ErrCorrupt)
}

func TestABboltFileOfAnotherProgramIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("people"))
		if err != nil {
			return err
		}
		return b.Put([]byte("ada"), []byte("lovelace"))
	}))
	must(t, db.Close())
	_, err = Open(path, Options{})
	expectErr(t, err, path, ErrCorrupt, `without the "meta" marker`)
}

func TestAStoreOfAnotherFormatIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte("gatehouse-broker-store/2"))
	}))
	must(t, s.Close())
	_, err := Open(path, Options{})
	expectErr(t, err, path, ErrCorrupt, `format "gatehouse-broker-store/2"`, format)
}

func TestATruncatedFileIsRefused(t *testing.T) {
	orig := filledStore(t)
	data, err := os.ReadFile(orig)
	must(t, err)
	// bbolt grows files ahead of use: the pages in use end at the meta page's high-water mark.
	db, err := bolt.Open(orig, 0o600, nil)
	must(t, err)
	var used int
	must(t, db.View(func(tx *bolt.Tx) error { used = int(tx.Size()); return nil }))
	must(t, db.Close())
	page := os.Getpagesize()
	// Cut inside the meta pages, inside the freelist, among the leaves (where bbolt would map
	// pages past the end of the file and fault) and one page short of the pages in use.
	for _, size := range []int{100, 5000, 3 * page, 20 * page, used - page} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			must(t, os.WriteFile(path, data[:size], 0o600))
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
			}
			expectErr(t, err, path, ErrCorrupt)
		})
	}
}

// leafPages returns the ids of the leaf pages in use.
func leafPages(t *testing.T, path string) []int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	defer db.Close()
	var ids []int
	must(t, db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type == "leaf" {
				ids = append(ids, id)
			}
		}
	}))
	if len(ids) == 0 {
		t.Fatal("no leaf page in the store")
	}
	return ids
}

// damagePage overwrites the page header's flags (bytes 8-9) of page id.
func damagePage(t *testing.T, path string, id int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte{0xff, 0xff}, int64(id*os.Getpagesize()+8))
	must(t, err)
}

func TestADamagedPageIsFoundAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	orig := filledStore(t)
	data, err := os.ReadFile(orig)
	must(t, err)
	must(t, os.WriteFile(path, data, 0o600))
	leaves := leafPages(t, path)
	damagePage(t, path, leaves[len(leaves)-1])

	_, err = Open(path, Options{})
	expectErr(t, err, path, ErrCorrupt)

	// Without the check, reading the damaged page still ends in an error naming the file, never a
	// crash of the broker: at Open when the page is on the way to the store's buckets, or at Load.
	s, err := Open(path, Options{SkipCheck: true})
	if err != nil {
		expectErr(t, err, path, ErrCorrupt)
		// The failed Open released the file: it can be opened again.
		again, err := Open(path, Options{SkipCheck: true, LockTimeout: 50 * time.Millisecond})
		if errors.Is(err, ErrLocked) {
			t.Fatalf("a failed Open kept the file locked: %v", err)
		}
		if err == nil {
			again.Close()
		}
		return
	}
	defer s.Close()
	errLoad := s.Load(func(session.State, []session.Message) error { return nil })
	errRetained := s.LoadRetained(func(session.Retained) error { return nil })
	if errLoad == nil && errRetained == nil {
		t.Fatal("a damaged leaf page was read without an error")
	}
	for _, err := range []error{errLoad, errRetained} {
		if err != nil {
			expectErr(t, err, path, ErrCorrupt)
		}
	}
}

func TestADamagedRecordNamesItsSessionAndMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	defer s.Close()
	must(t, s.SaveSession(session.State{ClientID: "gate-07", Version: packet.V311, ExpiryInterval: 1}))
	must(t, s.PutMessage("gate-07", session.Message{Seq: 41, Topic: "a", Payload: []byte("x"), QoS: 1}))
	must(t, s.db.Update(func(tx *bolt.Tx) error {
		return messages(tx, "gate-07").Put(seqKey(41), []byte{1, 5, '{', 'b', 'a', 'd', '}'})
	}))
	err := s.Load(func(session.State, []session.Message) error { return nil })
	expectErr(t, err, path, ErrCorrupt, `session "gate-07"`, "message 41", "header")

	must(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRetained).Put([]byte("acs/x/status"), []byte{7})
	}))
	err = s.LoadRetained(func(session.Retained) error { return nil })
	expectErr(t, err, path, ErrCorrupt, `retained "acs/x/status"`, "record version 7")
}

func TestAnUnusablePathIsNamed(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{})
	expectErr(t, err, dir, nil, "is a directory")

	file := filepath.Join(dir, "plain")
	must(t, os.WriteFile(file, nil, 0o600))
	_, err = OpenDir(filepath.Join(file, "data"), Options{})
	expectErr(t, err, filepath.Join(file, "data"), nil, "not a directory")
}

func TestAFileInUseIsRefusedAfterTheLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	defer s.Close()
	_, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	expectErr(t, err, path, ErrLocked)
}
