// Package topic is the broker's subscription index: a tree of topic filters, one level per node,
// that finds every subscription matching a topic name without allocating.
//
// Matching follows MQTT 3.1.1 and 5.0 section 4.7: '+' matches exactly one level (an empty level
// too), '#' matches its parent level and any number of levels below it, filters starting with a
// wildcard do not match topic names starting with '$' (MQTT-4.7.2-1), and matching is byte-exact,
// case sensitive and without normalisation (MQTT-4.7.3-4). Shared subscriptions of 5.0
// ("$share/{group}/{filter}", section 4.8.2) deliver each message to one member of the group.
//
// The tree does not check filter syntax: the caller validates with ValidateFilter and
// ValidateTopic, which name the normative statement a bad filter or topic breaks.
package topic

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Options are the subscription options of one subscription (5.0 section 3.8.3.1; 3.1.1 uses QoS only).
type Options struct {
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier (5.0), 0 = none
}

// Tree is the subscription index: filter → subscribers. K identifies a subscriber (the broker uses
// a session pointer). A Tree is safe for concurrent use; Match takes only a read lock, so matching
// runs in parallel and waits only while a Subscribe or Unsubscribe changes the tree.
type Tree[K comparable] struct {
	mu    sync.RWMutex // protects root and everything below it, count and nodes
	root  node[K]
	count int // subscriptions, shared members included
	nodes int // nodes below root, so that tests can prove pruning
}

// node is one level of a filter. Exact levels hang in children; the wildcards have their own
// slots so that Match does not look them up by name.
type node[K comparable] struct {
	parent   *node[K]
	level    string // this node's level as written in the filter ("+" and "#" included)
	filter   string // the filter ending at this node, without any "$share/{group}/" prefix
	children map[string]*node[K]
	plus     *node[K]
	hash     *node[K]
	subs     subList[K]  // ordinary subscriptions of filter
	groups   []*group[K] // shared subscriptions of filter, one per share name
}

// group is a shared subscription: one filter, one share name, several members.
type group[K comparable] struct {
	name    string
	filter  string // as given to Subscribe: "$share/{name}/{filter}"
	members subList[K]
	next    atomic.Uint32 // round robin position; advanced under the read lock
}

type entry[K comparable] struct {
	key K
	o   Options
}

// indexAt is the list length from which a subList keeps a map from key to position, so that a
// filter with thousands of subscribers still subscribes and unsubscribes in constant time while
// the common one-subscriber node stays small.
const indexAt = 16

// subList is an unordered list of subscriptions with O(1) lookup once it grows.
type subList[K comparable] struct {
	items []entry[K]
	index map[K]int
}

func (l *subList[K]) find(k K) int {
	if l.index != nil {
		if i, ok := l.index[k]; ok {
			return i
		}
		return -1
	}
	for i := range l.items {
		if l.items[i].key == k {
			return i
		}
	}
	return -1
}

// set adds or replaces the options of k and reports whether k was already there.
func (l *subList[K]) set(k K, o Options) bool {
	if i := l.find(k); i >= 0 {
		l.items[i].o = o
		return true
	}
	l.items = append(l.items, entry[K]{key: k, o: o})
	if l.index != nil {
		l.index[k] = len(l.items) - 1
	} else if len(l.items) >= indexAt {
		l.index = make(map[K]int, len(l.items)*2)
		for i := range l.items {
			l.index[l.items[i].key] = i
		}
	}
	return false
}

// remove deletes k by moving the last entry into its place.
func (l *subList[K]) remove(k K) bool {
	i := l.find(k)
	if i < 0 {
		return false
	}
	last := len(l.items) - 1
	if i != last {
		l.items[i] = l.items[last]
		if l.index != nil {
			l.index[l.items[i].key] = i
		}
	}
	var zero entry[K]
	l.items[last] = zero // drop the reference to the key
	l.items = l.items[:last]
	if l.index != nil {
		delete(l.index, k)
		if len(l.items) < indexAt/2 {
			l.index = nil
		}
	}
	if len(l.items) == 0 {
		l.items = nil
	}
	return true
}

// New returns an empty tree.
func New[K comparable]() *Tree[K] { return &Tree[K]{} }

// Subscribe adds or replaces the subscription of key to filter; filter may be
// "$share/{group}/{filter}" (5.0 shared subscription). It reports whether key already had a
// subscription to exactly this filter, whose options are now replaced (MQTT-3.8.4-3).
func (t *Tree[K]) Subscribe(key K, filter string, o Options) (replaced bool) {
	share, inner := splitShare(filter)
	t.mu.Lock()
	defer t.mu.Unlock()
	// Strings kept in the tree must own their bytes: a decoder may hand out strings that alias a
	// read buffer it reuses. Copy once, and only when something new is stored.
	owned := false
	own := func() {
		if !owned {
			filter = strings.Clone(filter)
			share, inner = splitShare(filter)
			owned = true
		}
	}
	n := &t.root
	for start := 0; ; {
		level, next, last := cut(inner, start)
		c := t.lookup(n, level, last)
		if c == nil {
			own()
			level, _, _ = cut(inner, start)
			c = t.child(n, level, last, inner[:start+len(level)])
		}
		n = c
		if last {
			break
		}
		start = next
	}
	if share == "" {
		replaced = n.subs.set(key, o)
	} else {
		g := n.group(share)
		if g == nil {
			own()
			g = &group[K]{name: share, filter: filter}
			n.groups = append(n.groups, g)
		}
		replaced = g.members.set(key, o)
	}
	if !replaced {
		t.count++
	}
	return replaced
}

// Unsubscribe removes the subscription of key to filter and reports whether it existed. Nodes
// left without subscriptions or children are removed, so memory follows the live subscriptions.
func (t *Tree[K]) Unsubscribe(key K, filter string) (existed bool) {
	share, inner := splitShare(filter)
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.find(inner)
	if n == nil {
		return false
	}
	if share == "" {
		existed = n.subs.remove(key)
	} else if g := n.group(share); g != nil {
		existed = g.members.remove(key)
		if len(g.members.items) == 0 {
			n.removeGroup(g)
		}
	}
	if existed {
		t.count--
		t.prune(n)
	}
	return existed
}

// Len returns the number of subscriptions; each member of a shared subscription counts once.
func (t *Tree[K]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// Match calls fn for every subscription matching topic. For shared subscriptions it calls fn for
// exactly one member of each matching group, chosen round robin; share is the group name, or ""
// for an ordinary subscription. filter is the filter as given to Subscribe ("$share/..." included).
//
// A subscriber with several overlapping subscriptions is reported once per subscription: the
// caller merges them (3.1.1: highest QoS; 5.0: all subscription identifiers, MQTT-3.3.4-3..5).
//
// fn runs under the tree's read lock: it must not call methods of this tree and should not block,
// or it delays every Subscribe and Unsubscribe. Match does not allocate.
func (t *Tree[K]) Match(topic string, fn func(key K, filter string, share string, o Options)) {
	t.MatchEligible(topic, nil, fn)
}

// MatchEligible is Match with a predicate for shared subscriptions: members for which eligible
// returns false (for example, sessions that are not connected) are skipped in the round robin;
// when no member of a group is eligible the group still delivers to one member, so that a
// message is never lost for a group. A nil eligible accepts every member.
func (t *Tree[K]) MatchEligible(topic string, eligible func(K) bool, fn func(key K, filter string, share string, o Options)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m := matcher[K]{topic: topic, dollar: strings.HasPrefix(topic, "$"), eligible: eligible, fn: fn}
	m.walk(&t.root, 0, true)
}

// Each calls fn for every subscription in the tree, shared members included, until fn returns
// false. It is meant for snapshots and diagnostics; fn runs under the read lock like Match's.
func (t *Tree[K]) Each(fn func(key K, filter string, share string, o Options) bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	each(&t.root, fn)
}

func each[K comparable](n *node[K], fn func(K, string, string, Options) bool) bool {
	for _, e := range n.subs.items {
		if !fn(e.key, n.filter, "", e.o) {
			return false
		}
	}
	for _, g := range n.groups {
		for _, e := range g.members.items {
			if !fn(e.key, g.filter, g.name, e.o) {
				return false
			}
		}
	}
	for _, c := range n.children {
		if !each(c, fn) {
			return false
		}
	}
	if n.plus != nil && !each(n.plus, fn) {
		return false
	}
	if n.hash != nil && !each(n.hash, fn) {
		return false
	}
	return true
}

// matcher carries the arguments of one Match through the recursion without a closure.
type matcher[K comparable] struct {
	topic    string
	dollar   bool
	eligible func(K) bool
	fn       func(K, string, string, Options)
}

// walk matches the levels of topic from byte start (one or more levels) below n.
func (m *matcher[K]) walk(n *node[K], start int, first bool) {
	level, next, last := cut(m.topic, start)
	// MQTT-4.7.2-1: a filter starting with a wildcard does not match a topic starting with '$'.
	wild := !(first && m.dollar)
	if wild && n.hash != nil {
		m.deliver(n.hash)
	}
	if wild && n.plus != nil {
		m.step(n.plus, next, last)
	}
	if c := n.children[level]; c != nil {
		m.step(c, next, last)
	}
}

func (m *matcher[K]) step(n *node[K], next int, last bool) {
	if !last {
		m.walk(n, next, false)
		return
	}
	m.deliver(n)
	// "sport/#" matches "sport": '#' includes its parent level (section 4.7.1.2).
	if n.hash != nil {
		m.deliver(n.hash)
	}
}

func (m *matcher[K]) deliver(n *node[K]) {
	for i := range n.subs.items {
		e := &n.subs.items[i]
		m.fn(e.key, n.filter, "", e.o)
	}
	for _, g := range n.groups {
		items := g.members.items
		count := uint32(len(items))
		if count == 0 {
			continue
		}
		pick := (g.next.Add(1) - 1) % count
		if m.eligible != nil {
			for i := uint32(0); i < count; i++ {
				if j := (pick + i) % count; m.eligible(items[j].key) {
					pick = j
					break
				}
			}
		}
		e := &items[pick]
		m.fn(e.key, g.filter, g.name, e.o)
	}
}

// cut returns the level of s that starts at byte start, the start of the next level and whether
// this level is the last one. It only slices s, so matching allocates nothing.
func cut(s string, start int) (level string, next int, last bool) {
	if i := strings.IndexByte(s[start:], '/'); i >= 0 {
		return s[start : start+i], start + i + 1, false
	}
	return s[start:], len(s), true
}

// splitShare separates a well-formed "$share/{group}/{filter}". A malformed one is kept as an
// ordinary filter: ValidateFilter rejects it before it gets here.
func splitShare(filter string) (share, inner string) {
	g, f, err := SplitShared(filter)
	if err != nil {
		return "", filter
	}
	return g, f
}

// child returns n's child for level, creating it. '#' is a wildcard only as the last level.
func (t *Tree[K]) child(n *node[K], level string, last bool, filter string) *node[K] {
	var slot **node[K]
	switch {
	case level == "+":
		slot = &n.plus
	case level == "#" && last:
		slot = &n.hash
	default:
		if c := n.children[level]; c != nil {
			return c
		}
		c := &node[K]{parent: n, level: level, filter: filter}
		if n.children == nil {
			n.children = make(map[string]*node[K], 1)
		}
		n.children[level] = c
		t.nodes++
		return c
	}
	if *slot == nil {
		*slot = &node[K]{parent: n, level: level, filter: filter}
		t.nodes++
	}
	return *slot
}

// lookup returns n's existing child for level, or nil.
func (t *Tree[K]) lookup(n *node[K], level string, last bool) *node[K] {
	switch {
	case level == "+":
		return n.plus
	case level == "#" && last:
		return n.hash
	default:
		return n.children[level]
	}
}

// find returns the node of filter without creating anything, or nil.
func (t *Tree[K]) find(filter string) *node[K] {
	n := &t.root
	for start := 0; ; {
		level, next, last := cut(filter, start)
		switch {
		case level == "+":
			n = n.plus
		case level == "#" && last:
			n = n.hash
		default:
			n = n.children[level]
		}
		if n == nil || last {
			return n
		}
		start = next
	}
}

// prune removes n and its ancestors while they hold nothing.
func (t *Tree[K]) prune(n *node[K]) {
	for n.parent != nil && n.empty() {
		p := n.parent
		switch {
		case p.plus == n:
			p.plus = nil
		case p.hash == n:
			p.hash = nil
		default:
			delete(p.children, n.level)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		n.parent = nil
		t.nodes--
		n = p
	}
}

func (n *node[K]) empty() bool {
	return len(n.subs.items) == 0 && len(n.groups) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}

func (n *node[K]) group(name string) *group[K] {
	for _, g := range n.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func (n *node[K]) removeGroup(g *group[K]) {
	for i, x := range n.groups {
		if x == g {
			last := len(n.groups) - 1
			n.groups[i] = n.groups[last]
			n.groups[last] = nil
			n.groups = n.groups[:last]
			break
		}
	}
	if len(n.groups) == 0 {
		n.groups = nil
	}
}
