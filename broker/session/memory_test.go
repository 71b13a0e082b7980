package session_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMemoryKeepsSessionsAndMessagesInOrder(t *testing.T) {
	m := session.NewMemory()
	st := session.State{ClientID: "gate-01", Version: packet.V5, ExpiryInterval: 60,
		Subscriptions:   []session.Subscription{{Filter: "acs/+/gate/gate-01/cmd/#", QoS: 1, ID: 7}},
		AwaitingRelease: []uint16{4},
		Will:            &session.Will{Topic: "w", Payload: []byte("gone"), PublishAt: time.Unix(100, 0)}}
	if err := m.SaveSession(st); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{3, 1, 2} {
		if err := m.PutMessage("gate-01", session.Message{Seq: seq, Topic: "t", Payload: []byte{byte(seq)}, QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Replacing by Seq changes the state in place.
	if err := m.PutMessage("gate-01", session.Message{Seq: 2, State: session.AwaitAck, PacketID: 9, Topic: "t", Payload: []byte{2}, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteMessage("gate-01", 3); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteMessage("gate-01", 3); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
	if err := m.PutMessage("nobody", session.Message{Seq: 1}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("message for an unknown session: %v, want ErrNotFound", err)
	}
	// The store keeps copies: changing what was saved does not change the store.
	st.Subscriptions[0].Filter = "changed"
	st.Will.Payload[0] = 'X'

	var n int
	err := m.Load(func(got session.State, msgs []session.Message) error {
		n++
		if got.ClientID != "gate-01" || got.Subscriptions[0].Filter != "acs/+/gate/gate-01/cmd/#" || string(got.Will.Payload) != "gone" || got.AwaitingRelease[0] != 4 {
			t.Errorf("state %+v", got)
		}
		if len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Seq != 2 || msgs[1].PacketID != 9 || msgs[1].State != session.AwaitAck {
			t.Errorf("messages %+v", msgs)
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("load: %v, %d sessions", err, n)
	}
	if err := m.DeleteSession("gate-01"); err != nil || m.Len() != 0 || m.Messages("gate-01") != 0 {
		t.Errorf("delete session: %v, %d left", err, m.Len())
	}
}

func TestMemoryLoadStopsOnError(t *testing.T) {
	m := session.NewMemory()
	for _, id := range []string{"a", "b"} {
		_ = m.SaveSession(session.State{ClientID: id})
	}
	stop := errors.New("stop")
	calls := 0
	if err := m.Load(func(session.State, []session.Message) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("load: %v after %d calls", err, calls)
	}
}
