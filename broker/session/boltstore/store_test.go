package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535000000, time.UTC)

func fullProps() packet.Properties {
	var p packet.Properties
	p.Present.Add(packet.PropPayloadFormat)
	p.PayloadFormat = 1
	p.ContentType = "application/json"
	p.ResponseTopic = "acs/site-1/gate/gate-01/cmd/open/ack"
	p.CorrelationData = []byte{0, 1, 2, 0xff}
	p.SubscriptionIDs = []uint32{4, 268435455}
	p.User = []packet.UserProperty{{Key: "site", Value: "1"}, {Key: "site", Value: "2"}}
	return p
}

func TestRecordsRoundTrip(t *testing.T) {
	states := map[string]session.State{
		"minimal 3.1.1": {ClientID: "gate-01", Version: packet.V311, ExpiryInterval: session.NeverExpires},
		"everything 5.0": {
			ClientID: "camera-7", Version: packet.V5, Username: "cam", ExpiryInterval: 3600,
			DisconnectedAt: t0,
			Subscriptions: []session.Subscription{
				{Filter: "acs/+/camera/camera-7/cmd/#", QoS: 1, ID: 9},
				{Filter: "$share/billing/acs/+/gate/+/evt/charge", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
			},
			AwaitingRelease: []uint16{1, 65535},
			Will:            &session.Will{Topic: "acs/site-1/camera/camera-7/status", Payload: []byte(`{"online":false}`), QoS: 1, Retain: true, Props: fullProps(), PublishAt: t0.Add(time.Minute)},
			NextPacketID:    65535,
		},
		"will with empty payload": {ClientID: "t", Version: packet.V31, ExpiryInterval: 1, Will: &session.Will{Topic: "x", Payload: []byte{}}},
	}
	for name, st := range states {
		t.Run("state/"+name, func(t *testing.T) {
			b, err := encodeState(st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeState(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, st) {
				t.Fatalf("round trip changed the state:\n got %+v\nwant %+v", got, st)
			}
		})
	}
	msgs := map[string]session.Message{
		"queued QoS 1":            {Seq: 1, State: session.Queued, Topic: "a/b", Payload: []byte("x"), QoS: 1, Publisher: "p"},
		"awaiting PUBACK":         {Seq: 1 << 40, State: session.AwaitAck, PacketID: 7, Topic: "a", Payload: []byte{0, 0xff, '\n'}, QoS: 2, Retain: true, Props: fullProps(), Expiry: t0},
		"awaiting PUBCOMP":        {Seq: 3, State: session.AwaitComp, PacketID: 65535, Topic: "a", Payload: []byte("y"), QoS: 2},
		"binary payload of 64KiB": {Seq: 4, Topic: "acs/s/camera/c/evt/snapshot", Payload: make([]byte, 64<<10), QoS: 1},
	}
	for name, m := range msgs {
		t.Run("message/"+name, func(t *testing.T) {
			b, err := encodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
			}
		})
	}
	r := session.Retained{Topic: "acs/site-1/gate/gate-01/status", Payload: []byte(`{"online":true}`), QoS: 1, Props: fullProps(), Expiry: t0, Stored: t0, Publisher: "gate-01"}
	b, err := encodeRetained(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRetained(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("retained round trip: %v\n got %+v\nwant %+v", err, got, r)
	}
	if _, err := encodeRetained(session.Retained{Topic: "a"}); err == nil {
		t.Fatal("an empty retained payload was encoded; it must delete instead (MQTT-3.3.1-10)")
	}
}

func TestDamagedRecordsAreRefusedWithTheReason(t *testing.T) {
	good, err := encodeMessage(session.Message{Seq: 1, Topic: "a", Payload: []byte("x"), QoS: 1})
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(h string) []byte { return append([]byte{1, byte(len(h))}, h...) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty record"},
		{"unknown version", append([]byte{9}, good[1:]...), "record version 9"},
		{"header length past the end", []byte{1, 0x7f, '{'}, "header length at byte 1 is damaged"},
		{"header length not a varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "header length at byte 1 is damaged"},
		{"header not JSON", withHeader("{nope"), "header"},
		{"QoS 0 message", withHeader(`{"seq":1,"topic":"a","qos":0}`), "QoS 0"},
		{"unknown state", withHeader(`{"seq":1,"topic":"a","qos":1,"state":3,"packet_id":1}`), "state 3"},
		{"in flight without packet id", withHeader(`{"seq":1,"topic":"a","qos":1,"state":1}`), "without a packet identifier"},
		{"empty topic", withHeader(`{"seq":1,"topic":"","qos":1}`), "empty topic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeMessage(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("decodeMessage(%q) = %v, want an error containing %q", c.b, err, c.want)
			}
		})
	}
	if _, err := decodeState(withHeader(`{"client_id":"a","version":6}`)); err == nil || !strings.Contains(err.Error(), "protocol version 6") {
		t.Fatalf("state with version 6: %v", err)
	}
	if _, err := decodeState(withHeader(`{"client_id":"","version":4}`)); err == nil || !strings.Contains(err.Error(), "empty client id") {
		t.Fatalf("state without client id: %v", err)
	}
	if _, err := decodeRetained(withHeader(`{"topic":"a","qos":1}`)); err == nil || !strings.Contains(err.Error(), "empty payload") {
		t.Fatalf("retained without payload: %v", err)
	}
}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

type loaded struct {
	st   session.State
	msgs []session.Message
}

func loadAll(t *testing.T, s *Store) map[string]loaded {
	t.Helper()
	out := map[string]loaded{}
	if err := s.Load(func(st session.State, msgs []session.Message) error {
		out[st.ClientID] = loaded{st, msgs}
		return nil
	}); err != nil {
		t.Fatalf("load: %v", err)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEveryChangeSurvivesClosingAndReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	st := session.State{ClientID: "gate-01", Version: packet.V311, ExpiryInterval: session.NeverExpires,
		Subscriptions: []session.Subscription{{Filter: "acs/+/gate/gate-01/cmd/#", QoS: 1}}}
	must(t, s.SaveSession(st))
	must(t, s.SaveSession(session.State{ClientID: "gone", Version: packet.V5, ExpiryInterval: 10}))
	must(t, s.PutMessage("gone", session.Message{Seq: 1, Topic: "a", Payload: []byte("x"), QoS: 1}))
	for seq := uint64(1); seq <= 300; seq++ {
		must(t, s.PutMessage("gate-01", session.Message{Seq: seq, Topic: "acs/s/gate/gate-01/cmd/open", Payload: fmt.Appendf(nil, "%d", seq), QoS: 1}))
	}
	// 256 follows 255 in delivery order only with a big-endian key.
	must(t, s.PutMessage("gate-01", session.Message{Seq: 2, State: session.AwaitAck, PacketID: 2, Topic: "acs/s/gate/gate-01/cmd/open", Payload: []byte("2"), QoS: 1}))
	must(t, s.DeleteMessage("gate-01", 1))
	must(t, s.DeleteSession("gone"))
	must(t, s.PutRetained(session.Retained{Topic: "acs/s/gate/gate-01/status", Payload: []byte("on"), QoS: 1, Stored: t0}))
	must(t, s.PutRetained(session.Retained{Topic: "acs/s/gate/gate-01/status", Payload: []byte("off"), QoS: 1, Stored: t0}))
	must(t, s.PutRetained(session.Retained{Topic: "acs/s/gate/gate-02/status", Payload: []byte("on"), QoS: 0, Stored: t0}))
	must(t, s.DeleteRetained("acs/s/gate/gate-02/status"))
	must(t, s.DeleteRetained("never/set"))
	must(t, s.Close())

	s = open(t, path)
	defer s.Close()
	all := loadAll(t, s)
	if len(all) != 1 {
		t.Fatalf("sessions after reopen: %d, want 1 (deleted session came back?)", len(all))
	}
	got := all["gate-01"]
	if !reflect.DeepEqual(got.st, st) {
		t.Fatalf("state after reopen:\n got %+v\nwant %+v", got.st, st)
	}
	if len(got.msgs) != 299 {
		t.Fatalf("messages after reopen: %d, want 299", len(got.msgs))
	}
	for i, m := range got.msgs {
		if m.Seq != uint64(i+2) {
			t.Fatalf("message %d has Seq %d: not in Seq order", i, m.Seq)
		}
	}
	if m := got.msgs[0]; m.State != session.AwaitAck || m.PacketID != 2 {
		t.Fatalf("replaced message: state %d packet id %d, want awaiting ack with id 2", m.State, m.PacketID)
	}
	var retained []session.Retained
	must(t, s.LoadRetained(func(m session.Retained) error { retained = append(retained, m); return nil }))
	want := []session.Retained{{Topic: "acs/s/gate/gate-01/status", Payload: []byte("off"), QoS: 1, Stored: t0}}
	if !reflect.DeepEqual(retained, want) {
		t.Fatalf("retained after reopen:\n got %+v\nwant %+v", retained, want)
	}
}

func TestMissingSessionsAndMessagesAreNotFound(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName))
	defer s.Close()
	if err := s.PutMessage("nobody", session.Message{Seq: 1, Topic: "a", Payload: []byte("x"), QoS: 1}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("PutMessage to a missing session = %v, want ErrNotFound", err)
	}
	if err := s.DeleteMessage("nobody", 1); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("DeleteMessage of a missing session = %v, want ErrNotFound", err)
	}
	must(t, s.SaveSession(session.State{ClientID: "c", Version: packet.V311, ExpiryInterval: 1}))
	if err := s.DeleteMessage("c", 1); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("DeleteMessage of a missing message = %v, want ErrNotFound", err)
	}
	must(t, s.DeleteSession("nobody"))
	if err := s.SaveSession(session.State{ClientID: strings.Repeat("x", bolt.MaxKeySize+1), Version: packet.V311}); err == nil || !strings.Contains(err.Error(), "key too large") {
		t.Fatalf("a client id over bbolt's key limit: %v, want a 'key too large' error", err)
	}
}

// holdFirstCommit blocks the first commit until n more writes have queued behind it. started is
// closed when the first commit begins; batches returns the size of every batch so far.
func holdFirstCommit(t *testing.T, s *Store, n int) (started <-chan struct{}, batches func() []int) {
	var (
		mu    sync.Mutex
		sizes []int
	)
	begun := make(chan struct{})
	release := make(chan struct{})
	s.queued = func(pending int) {
		if s.committing && pending == n {
			close(release)
		}
	}
	s.beforeCommit = func(size int) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, size)
		mu.Unlock()
		if first {
			close(begun)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				t.Errorf("only some of %d writes queued behind the first commit within 10s", n)
			}
		}
	}
	return begun, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), sizes...)
	}
}

func TestWritesArrivingDuringACommitShareTheNextOne(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName))
	defer s.Close()
	const n = 8
	_, batches := holdFirstCommit(t, s, n)
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	put := func(id string) {
		defer wg.Done()
		errs <- s.SaveSession(session.State{ClientID: id, Version: packet.V311, ExpiryInterval: 1})
	}
	wg.Add(1)
	go put("leader")
	for i := range n {
		wg.Add(1)
		go put(fmt.Sprintf("c%d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if got := batches(); !reflect.DeepEqual(got, []int{1, n}) {
		t.Fatalf("batch sizes %v, want [1 %d]: writes that queued during a commit must share the next one", got, n)
	}
	if got := len(loadAll(t, s)); got != n+1 {
		t.Fatalf("%d sessions stored, want %d", got, n+1)
	}
}

func TestOneFailingWriteDoesNotFailItsBatch(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName))
	defer s.Close()
	must(t, s.SaveSession(session.State{ClientID: "c", Version: packet.V311, ExpiryInterval: 1}))
	started, batches := holdFirstCommit(t, s, 3)
	var wg sync.WaitGroup
	results := make([]error, 4)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = f() }()
	}
	run(0, func() error { return s.DeleteRetained("leader") })
	// The three writes start once the leader holds its commit, so they share the next one.
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first write did not begin its commit within 10s")
	}
	run(1, func() error {
		return s.PutMessage("c", session.Message{Seq: 1, Topic: "a", Payload: []byte("1"), QoS: 1})
	})
	run(2, func() error {
		return s.PutMessage("nobody", session.Message{Seq: 1, Topic: "a", Payload: []byte("x"), QoS: 1})
	})
	run(3, func() error {
		return s.PutMessage("c", session.Message{Seq: 2, Topic: "a", Payload: []byte("2"), QoS: 1})
	})
	wg.Wait()
	if results[0] != nil || results[1] != nil || results[3] != nil {
		t.Fatalf("writes that were fine failed with their batch: %v", results)
	}
	if got := batches(); !reflect.DeepEqual(got, []int{1, 3}) {
		t.Fatalf("batch sizes %v, want [1 3]: the three writes must have been tried together", got)
	}
	if !errors.Is(results[2], session.ErrNotFound) {
		t.Fatalf("write to a missing session = %v, want ErrNotFound", results[2])
	}
	if got := len(loadAll(t, s)["c"].msgs); got != 2 {
		t.Fatalf("%d messages stored for c, want 2", got)
	}
}
