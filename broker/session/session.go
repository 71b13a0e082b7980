// Package session defines the persistent state of an MQTT session, in a form that can be
// serialised, and the Store that keeps it across restarts of the broker.
//
// The broker keeps live sessions in memory and writes through to a Store only for sessions that
// outlive their connection (3.x CleanSession 0, 5.0 Session Expiry Interval > 0). The interface is
// per operation — a session's metadata, then one call per message added, changed or acknowledged —
// so that a disk store (bbolt) can write each change as one small transaction instead of rewriting
// whole sessions.
package session

import (
	"errors"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// ErrNotFound is returned by a Store for a session or message it does not hold.
var ErrNotFound = errors.New("session: not found")

// NeverExpires is the Session Expiry Interval meaning "never" (5.0 §3.1.2.11.2), also used for
// 3.x sessions with CleanSession 0.
const NeverExpires = 0xFFFFFFFF

// Subscription is one topic filter of a session with its options.
type Subscription struct {
	Filter            string // as subscribed, including a "$share/{group}/" prefix
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier, 0 = none
}

// Will is a will message kept with a session while its delay runs (5.0 Will Delay Interval).
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   packet.Properties
	// PublishAt is when the will is due (the connection's loss plus the will delay).
	PublishAt time.Time
}

// State is everything about a session except its messages.
type State struct {
	ClientID string
	Version  packet.Version
	Username string
	// ExpiryInterval is the Session Expiry Interval in seconds (NeverExpires for 3.x persistent
	// sessions). DisconnectedAt is when the last connection ended (zero while connected).
	ExpiryInterval uint32
	DisconnectedAt time.Time
	Subscriptions  []Subscription
	// AwaitingRelease holds the packet identifiers of incoming QoS 2 messages that were
	// acknowledged with PUBREC and await PUBREL.
	AwaitingRelease []uint16
	Will            *Will
	// NextPacketID is the next packet identifier the broker will try for an outgoing message.
	NextPacketID uint16
}

// MessageState tells where an outgoing QoS 1/2 message is in its flow.
type MessageState byte

// Outgoing message states.
const (
	Queued    MessageState = iota // not sent yet (waiting for a free in-flight slot or a connection)
	AwaitAck                      // PUBLISH sent; awaiting PUBACK (QoS 1) or PUBREC (QoS 2)
	AwaitComp                     // PUBREL sent; awaiting PUBCOMP (QoS 2)
)

// Message is an outgoing QoS 1/2 application message owed to a session.
type Message struct {
	Seq      uint64 // order within the session; messages are delivered by increasing Seq
	State    MessageState
	PacketID uint16 // 0 while Queued
	Topic    string
	Payload  []byte
	QoS      byte // delivery QoS (1 or 2)
	Retain   bool
	// Props are the PUBLISH properties to forward (payload format, content type, response topic,
	// correlation data, user properties) and the subscription identifiers.
	Props packet.Properties
	// Expiry is when the Message Expiry Interval ends; zero = never.
	Expiry    time.Time
	Publisher string
}

// Store keeps sessions and their messages. Implementations must be safe for concurrent use.
type Store interface {
	// SaveSession creates or replaces a session's state (not its messages).
	SaveSession(st State) error
	// DeleteSession removes a session and all its messages.
	DeleteSession(clientID string) error
	// PutMessage adds a message to a session or replaces the one with the same Seq.
	PutMessage(clientID string, m Message) error
	// DeleteMessage removes one message (acknowledged, expired or discarded).
	DeleteMessage(clientID string, seq uint64) error
	// Load calls fn for every session with its messages in Seq order.
	Load(fn func(st State, msgs []Message) error) error
}
