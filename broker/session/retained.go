package session

import (
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Retained is a retained application message as a RetainedStore keeps it.
type Retained struct {
	Topic   string
	Payload []byte // never empty: an empty retained payload deletes (MQTT-3.3.1-10, 5.0 MQTT-3.3.1-6)
	QoS     byte
	// Props are the 5.0 properties delivered with the message (payload format, content type,
	// response topic, correlation data, user properties).
	Props packet.Properties
	// Expiry is when the Message Expiry Interval ends; zero = never. Stored is when the broker
	// received the message.
	Expiry    time.Time
	Stored    time.Time
	Publisher string
}

// RetainedStore is implemented by a Store that also keeps retained messages, so that they survive
// a restart of the broker. The broker checks for it with a type assertion on Config.Store: a Store
// without it keeps sessions only.
type RetainedStore interface {
	// PutRetained creates or replaces the retained message of m.Topic.
	PutRetained(m Retained) error
	// DeleteRetained removes the retained message of topic; removing one that is not there is not
	// an error (an empty retained PUBLISH on a topic without one is legal).
	DeleteRetained(topic string) error
	// LoadRetained calls fn for every retained message, in topic order.
	LoadRetained(fn func(m Retained) error) error
}
