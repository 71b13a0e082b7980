package stage

import (
	"maps"
	"strings"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// session is the state the server keeps for the device between connections, as a broker does
// for a persistent session: its subscriptions, the messages the server sent and the device has
// not acknowledged, and the QoS 2 messages the device sent that await their PUBREL.
type session struct {
	subs   map[string]packet.QoS // topic filter → granted QoS
	out    map[uint16]*outbound  // messages to the device in flight, by packet identifier
	order  []uint16              // in-flight identifiers in the order first sent (MQTT-4.6.0-1 applies to the server too)
	nextID uint16
	// inQoS2 holds the identifiers of QoS 2 messages from the device that the server owns
	// (PUBREC sent) and whose PUBREL has not come yet (MQTT-4.3.3-2).
	inQoS2 map[uint16]bool
}

// outbound is one QoS 1 or 2 message the server sent to the device.
type outbound struct {
	pub      *packet.Publish
	released bool // QoS 2: PUBREC received, PUBREL sent, PUBCOMP awaited
}

func newSession() *session {
	return &session{
		subs:   map[string]packet.QoS{},
		out:    map[uint16]*outbound{},
		inQoS2: map[uint16]bool{},
	}
}

// allocID returns a packet identifier not in use, or 0 when all 65,535 are (MQTT-2.3.1-2 binds
// the server as well).
func (s *session) allocID() uint16 {
	for range 65535 {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.out[s.nextID]; !used {
			return s.nextID
		}
	}
	return 0
}

func (s *session) forget(id uint16) {
	delete(s.out, id)
	for i, x := range s.order {
		if x == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// grant returns the QoS of the best subscription matching topic and whether there is one.
func (s *session) grant(topic string) (packet.QoS, bool) {
	best, ok := packet.QoS(0), false
	for f, q := range s.subs {
		if Match(f, topic) {
			ok = true
			best = max(best, q)
		}
	}
	return best, ok
}

func (s *session) subscriptions() map[string]packet.QoS { return maps.Clone(s.subs) }

// Match reports whether topic name matches topic filter (MQTT 3.1.1 and 5.0 section 4.7): '+'
// matches one level, '#' its parent and every level below, and filters starting with a wildcard
// do not match topics starting with '$' (MQTT-4.7.2-1).
func Match(filter, topic string) bool {
	if strings.HasPrefix(filter, "$share/") {
		// $share/{group}/{filter}: the group is not part of the match.
		rest := filter[len("$share/"):]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return false
		}
		filter = rest[i+1:]
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		if level != "+" && level != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}
