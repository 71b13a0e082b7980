package hil

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// maxMessages bounds what the observer keeps; the oldest messages are dropped and counted.
const maxMessages = 10000

// Message is one message the observer received from the controller's topics, with the time it
// arrived.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	At       time.Time
}

// JSON decodes the payload as a JSON object (nil if it is not one).
func (m Message) JSON() map[string]any {
	var v map[string]any
	if json.Unmarshal(m.Payload, &v) != nil {
		return nil
	}
	return v
}

func (m Message) String() string {
	return fmt.Sprintf("%s %s %s", m.At.Format("15:04:05.000"), m.Topic, m.Payload)
}

// Observer is the suite's own MQTT client: it watches every topic of the controller and publishes
// its commands, as the platform that manages the controller would.
type Observer struct {
	client mqtt.Client
	prefix string

	mu      sync.Mutex // protects msgs, dropped and changed
	msgs    []Message
	dropped int
	changed chan struct{} // closed and replaced on every message
}

// Connect connects an observer to brokerURL and subscribes to prefix/#.
func Connect(ctx context.Context, brokerURL, clientID, prefix string) (*Observer, error) {
	o := &Observer{prefix: prefix, changed: make(chan struct{})}
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).SetOrderMatters(true)
	o.client = mqtt.NewClient(opts)
	if err := wait(ctx, o.client.Connect()); err != nil {
		return nil, fmt.Errorf("observer: connect to %s: %w", brokerURL, err)
	}
	if err := wait(ctx, o.client.Subscribe(prefix+"/#", 1, o.receive)); err != nil {
		o.client.Disconnect(100)
		return nil, fmt.Errorf("observer: subscribe %s/#: %w", prefix, err)
	}
	return o, nil
}

func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *Observer) receive(_ mqtt.Client, m mqtt.Message) {
	msg := Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), At: time.Now()}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.msgs) >= maxMessages {
		o.msgs = o.msgs[1:]
		o.dropped++
	}
	o.msgs = append(o.msgs, msg)
	close(o.changed)
	o.changed = make(chan struct{})
}

// Publish sends a command to the controller: {"corr": corr} on {prefix}/cmd/{name}, QoS 1. It
// returns when the broker has acknowledged it.
func (o *Observer) Publish(ctx context.Context, name, corr string) error {
	payload, _ := json.Marshal(map[string]string{"corr": corr})
	if err := wait(ctx, o.client.Publish(o.prefix+"/cmd/"+name, 1, false, payload)); err != nil {
		return fmt.Errorf("observer: publish cmd/%s: %w", name, err)
	}
	return nil
}

// WaitFor returns the first message on {prefix}/{suffix} that arrived at or after since and
// satisfies match (nil matches any).
func (o *Observer) WaitFor(ctx context.Context, since time.Time, suffix string, match func(Message) bool) (Message, error) {
	topic := o.prefix + "/" + suffix
	for {
		o.mu.Lock()
		for _, m := range o.msgs {
			if m.Topic == topic && !m.At.Before(since) && (match == nil || match(m)) {
				o.mu.Unlock()
				return m, nil
			}
		}
		changed := o.changed
		o.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("no matching message on %s since %s: %w", topic, since.Format("15:04:05.000"), ctx.Err())
		}
	}
}

// Since returns the messages that arrived at or after t, for evidence.
func (o *Observer) Since(t time.Time) []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Message
	for _, m := range o.msgs {
		if !m.At.Before(t) && !strings.HasSuffix(m.Topic, "/telemetry") {
			out = append(out, m)
		}
	}
	return out
}

// Close disconnects the observer.
func (o *Observer) Close() {
	o.client.Disconnect(250)
}

// FieldIs matches a JSON message whose field key equals want.
func FieldIs(key string, want any) func(Message) bool {
	return func(m Message) bool {
		v := m.JSON()
		return v != nil && v[key] == want
	}
}

// Latest returns the last message received on {prefix}/{suffix}.
func (o *Observer) Latest(suffix string) (Message, bool) {
	topic := o.prefix + "/" + suffix
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.msgs) - 1; i >= 0; i-- {
		if o.msgs[i].Topic == topic {
			return o.msgs[i], true
		}
	}
	return Message{}, false
}
