// Package retain keeps the broker's retained messages: at most one per topic, indexed by topic
// level so that a subscription with '+' or '#' visits only the branches it can match instead of
// scanning every retained message.
//
// Rules (MQTT 3.1.1 section 3.3.1.3, 5.0 section 3.3.1.3): a retained PUBLISH replaces the message
// stored for its topic (3.1.1 MQTT-3.3.1-5, 5.0 MQTT-3.3.1-5); one with an empty payload removes it
// and is not stored itself (3.1.1 MQTT-3.3.1-10/11, 5.0 MQTT-3.3.1-6/7). Wildcard lookups follow
// section 4.7: filters starting with '+' or '#' do not match topics starting with '$'
// (MQTT-4.7.2-1). A message whose 5.0 Message Expiry Interval has passed is no longer delivered
// (MQTT-3.3.2-5) and is removed when a lookup meets it or when Sweep runs.
package retain

import (
	"strings"
	"sync"
	"time"
)

// Message is one retained application message.
type Message struct {
	Topic   string
	Payload []byte // kept as given: the caller must not modify it after Set
	QoS     byte
	Props   any       // 5.0 properties to deliver with the message; opaque to this package
	Stored  time.Time // when the broker received it
	Expiry  time.Time // when it stops being delivered; zero = never
}

// expired reports whether m must no longer be delivered at now.
func (m *Message) expired(now time.Time) bool {
	return !m.Expiry.IsZero() && !now.Before(m.Expiry)
}

// Store is the retained-message store. It is safe for concurrent use: lookups share a read lock.
type Store struct {
	mu    sync.RWMutex // protects root, count and nodes
	root  node
	count int // stored messages
	nodes int // nodes below root, so that tests can prove deleted branches are freed
}

type node struct {
	parent   *node
	level    string
	children map[string]*node
	msg      *Message // nil when no message is retained at exactly this topic
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{} }

// Set stores m as the retained message of m.Topic, replacing any message there. An empty payload
// deletes the retained message of the topic and stores nothing (3.1.1 MQTT-3.3.1-10/11,
// 5.0 MQTT-3.3.1-6/7).
func (s *Store) Set(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(m.Payload) == 0 {
		if n := s.find(m.Topic); n != nil && n.msg != nil {
			s.remove(n)
		}
		return
	}
	// Keys and the stored topic must own their bytes: a decoder may hand out strings that alias
	// a read buffer it reuses. Copy once, and only when a new node needs it.
	owned := false
	n := &s.root
	for start := 0; ; {
		level, next, last := cut(m.Topic, start)
		c := n.children[level]
		if c == nil {
			if !owned {
				m.Topic, owned = strings.Clone(m.Topic), true
				level, _, _ = cut(m.Topic, start)
			}
			c = &node{parent: n, level: level}
			if n.children == nil {
				n.children = make(map[string]*node, 1)
			}
			n.children[level] = c
			s.nodes++
		}
		n = c
		if last {
			break
		}
		start = next
	}
	if n.msg == nil {
		s.count++
		if !owned {
			m.Topic = strings.Clone(m.Topic)
		}
	} else {
		m.Topic = n.msg.Topic // same bytes, already owned
	}
	n.msg = &m
}

// Get returns the message retained at exactly topic. It does not look at Expiry (the store has no
// clock): the caller compares Expiry with its own time, or uses Match, which does.
func (s *Store) Get(topic string) (Message, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.find(topic); n != nil && n.msg != nil {
		return *n.msg, true
	}
	return Message{}, false
}

// Match calls fn for every retained message whose topic matches filter, until fn returns false.
// Messages expired at now are skipped, and removed once the read lock is released. filter must be a valid topic filter without a
// "$share/" prefix (shared subscriptions receive no retained messages, 5.0 section 4.8.2).
// fn runs under the store's read lock and must not call the store.
func (s *Store) Match(filter string, now time.Time, fn func(Message) bool) {
	s.mu.RLock()
	w := walker{filter: filter, now: now, fn: fn}
	w.walk(&s.root, 0, true)
	s.mu.RUnlock()
	if w.expired {
		// Walk the same branches again under the write lock and remove what has expired there.
		s.mu.Lock()
		rm := walker{filter: filter, now: now, store: s}
		rm.walk(&s.root, 0, true)
		s.mu.Unlock()
	}
}

// Sweep removes every message expired at now and returns how many it removed, so that a broker
// can bound the memory of messages nobody asks for.
func (s *Store) Sweep(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.count
	s.sweep(&s.root, now)
	return before - s.count
}

// Len returns the number of retained messages, expired ones not yet removed included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// All calls fn for every retained message, expired or not, until fn returns false; it is meant for
// persistence snapshots. fn runs under the read lock and must not call the store.
func (s *Store) All(fn func(Message) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	all(&s.root, fn)
}

func all(n *node, fn func(Message) bool) bool {
	if n.msg != nil && !fn(*n.msg) {
		return false
	}
	for _, c := range n.children {
		if !all(c, fn) {
			return false
		}
	}
	return true
}

// walker carries one Match through the recursion without a closure.
type walker struct {
	filter  string
	now     time.Time
	fn      func(Message) bool
	expired bool   // met an expired message: Match removes them after releasing the read lock
	store   *Store // set (with the write lock held) to remove expired messages instead of reporting
	stopped bool
}

// walk matches the filter levels from byte start below n.
func (w *walker) walk(n *node, start int, first bool) {
	level, next, last := cut(w.filter, start)
	switch {
	case level == "#" && last:
		// '#' matches n itself ("sport/#" matches "sport"; the root never holds a message) and
		// everything below it; at the first level it skips '$' topics (MQTT-4.7.2-1).
		w.emit(n)
		for _, c := range n.children {
			if w.stopped {
				return
			}
			if first && strings.HasPrefix(c.level, "$") {
				continue
			}
			w.subtree(c)
		}
	case level == "+":
		for _, c := range n.children {
			if w.stopped {
				return
			}
			if first && strings.HasPrefix(c.level, "$") {
				continue // MQTT-4.7.2-1
			}
			w.step(c, next, last)
		}
	default:
		if c := n.children[level]; c != nil {
			w.step(c, next, last)
		}
	}
}

func (w *walker) step(c *node, next int, last bool) {
	if last {
		w.emit(c)
		return
	}
	w.walk(c, next, false)
}

func (w *walker) subtree(n *node) {
	w.emit(n)
	for _, c := range n.children {
		if w.stopped {
			return
		}
		w.subtree(c)
	}
}

func (w *walker) emit(n *node) {
	if w.stopped || n.msg == nil {
		return
	}
	if n.msg.expired(w.now) {
		w.expired = true
		if w.store != nil {
			w.store.remove(n) // deleting from a map while ranging over it is safe
		}
		return
	}
	if w.fn != nil && !w.fn(*n.msg) {
		w.stopped = true
	}
}

// sweep removes expired messages below n. Called with the write lock held.
func (s *Store) sweep(n *node, now time.Time) {
	for _, c := range n.children {
		s.sweep(c, now)
	}
	if n.msg != nil && n.msg.expired(now) {
		s.remove(n)
	} else if n.parent != nil && n.msg == nil && len(n.children) == 0 {
		s.prune(n)
	}
}

func (s *Store) find(topic string) *node {
	n := &s.root
	for start := 0; ; {
		level, next, last := cut(topic, start)
		n = n.children[level]
		if n == nil || last {
			return n
		}
		start = next
	}
}

// remove deletes the message of n and the branch it leaves empty.
func (s *Store) remove(n *node) {
	n.msg = nil
	s.count--
	s.prune(n)
}

func (s *Store) prune(n *node) {
	for n.parent != nil && n.msg == nil && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.level)
		if len(p.children) == 0 {
			p.children = nil
		}
		n.parent = nil
		s.nodes--
		n = p
	}
}

// cut returns the level of s starting at byte start, the start of the next level and whether it
// is the last level; it only slices s.
func cut(s string, start int) (level string, next int, last bool) {
	if i := strings.IndexByte(s[start:], '/'); i >= 0 {
		return s[start : start+i], start + i + 1, false
	}
	return s[start:], len(s), true
}
