package session

import (
	"slices"
	"sync"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Memory is a Store held in memory. It outlives the broker that uses it, so tests can stop a
// broker and start another on the same Memory to check what a restart keeps.
type Memory struct {
	mu       sync.Mutex // protects sessions
	sessions map[string]*memEntry
}

type memEntry struct {
	state State
	msgs  map[uint64]Message
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{sessions: make(map[string]*memEntry)} }

// SaveSession implements Store.
func (m *Memory) SaveSession(st State) error {
	st = cloneState(st)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sessions[st.ClientID]
	if e == nil {
		e = &memEntry{msgs: make(map[uint64]Message)}
		m.sessions[st.ClientID] = e
	}
	e.state = st
	return nil
}

// DeleteSession implements Store.
func (m *Memory) DeleteSession(clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, clientID)
	return nil
}

// PutMessage implements Store.
func (m *Memory) PutMessage(clientID string, msg Message) error {
	msg = cloneMessage(msg)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sessions[clientID]
	if e == nil {
		return ErrNotFound
	}
	e.msgs[msg.Seq] = msg
	return nil
}

// DeleteMessage implements Store.
func (m *Memory) DeleteMessage(clientID string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.sessions[clientID]
	if e == nil {
		return ErrNotFound
	}
	if _, ok := e.msgs[seq]; !ok {
		return ErrNotFound
	}
	delete(e.msgs, seq)
	return nil
}

// Load implements Store.
func (m *Memory) Load(fn func(st State, msgs []Message) error) error {
	m.mu.Lock()
	type item struct {
		st   State
		msgs []Message
	}
	items := make([]item, 0, len(m.sessions))
	for _, e := range m.sessions {
		it := item{st: cloneState(e.state)}
		for _, msg := range e.msgs {
			it.msgs = append(it.msgs, cloneMessage(msg))
		}
		slices.SortFunc(it.msgs, func(a, b Message) int {
			switch {
			case a.Seq < b.Seq:
				return -1
			case a.Seq > b.Seq:
				return 1
			}
			return 0
		})
		items = append(items, it)
	}
	m.mu.Unlock()
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.st.ClientID < b.st.ClientID:
			return -1
		case a.st.ClientID > b.st.ClientID:
			return 1
		}
		return 0
	})
	for _, it := range items {
		if err := fn(it.st, it.msgs); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of sessions held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Messages returns the number of messages held for a session.
func (m *Memory) Messages(clientID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.sessions[clientID]; e != nil {
		return len(e.msgs)
	}
	return 0
}

func cloneState(st State) State {
	st.Subscriptions = slices.Clone(st.Subscriptions)
	st.AwaitingRelease = slices.Clone(st.AwaitingRelease)
	if st.Will != nil {
		w := *st.Will
		w.Payload = slices.Clone(w.Payload)
		w.Props = cloneProps(w.Props)
		st.Will = &w
	}
	return st
}

func cloneMessage(m Message) Message {
	m.Payload = slices.Clone(m.Payload)
	m.Props = cloneProps(m.Props)
	return m
}

// cloneProps copies the slices of a property set so that the copy shares no memory with p.
func cloneProps(p packet.Properties) packet.Properties {
	p.CorrelationData = slices.Clone(p.CorrelationData)
	p.SubscriptionIDs = slices.Clone(p.SubscriptionIDs)
	p.AuthData = slices.Clone(p.AuthData)
	p.User = slices.Clone(p.User)
	p.Raw = nil
	return p
}
