package scenario

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// observer is an MQTT client that subscribes to the devices' topics before the fleet starts and
// records every message with its arrival time. Expectations are judged against this record only:
// what the broker delivered to a subscriber is what a platform would have seen.
type observer struct {
	client  mqtt.Client
	filters []string

	mu     sync.Mutex    // protects msgs and notify
	msgs   []Observed    // in arrival order
	notify chan struct{} // closed and replaced whenever a message is appended
	limit  int           // messages kept; past it arrivals are counted in dropped, not stored
	lost   atomic.Int64  // connection losses (a broker restart makes one)

	dropped atomic.Int64
}

// observerLimit bounds the record: a long scenario with a large fleet must not grow without end.
const observerLimit = 2_000_000

// clientOpts are the options every client of a run shares: MQTT 3.1.1, quick reconnection (a
// scenario may restart the broker), ordered delivery.
func clientOpts(url, id string, clean bool) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	o.AddBroker(url)
	o.SetClientID(id)
	o.SetProtocolVersion(4)
	o.SetCleanSession(clean)
	o.SetKeepAlive(30 * time.Second)
	o.SetConnectTimeout(5 * time.Second)
	o.SetWriteTimeout(5 * time.Second)
	o.SetAutoReconnect(true)
	o.SetConnectRetry(false)
	o.SetMaxReconnectInterval(500 * time.Millisecond)
	o.SetOrderMatters(true)
	return o
}

// connect connects a client, bounded by ctx.
func connect(ctx context.Context, c mqtt.Client) error {
	tok := c.Connect()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for a token, bounded by ctx.
func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startObserver connects and subscribes at QoS 2, so that QoS 2 messages reach the record at
// QoS 2 and exactly-once delivery can be judged. With a persistent session the broker keeps the
// subscription and the messages across a broker restart.
// onEvent, when set, hears about connection losses and reconnections (for the timeline).
func startObserver(ctx context.Context, url, clientID string, filters []string, persistent bool, onEvent func(string)) (*observer, error) {
	o := &observer{filters: filters, notify: make(chan struct{}), limit: observerLimit}
	opts := clientOpts(url, clientID, !persistent)
	opts.SetDefaultPublishHandler(o.record)
	// After a reconnection the subscription is made again: a broker that crashed or restarted
	// without keeping sessions has forgotten it. The retained messages it replays then are
	// recorded as retained replays, which expectations of publications ignore. A scenario that
	// restarts the broker also runs the observer on a persistent session, so that messages
	// published while it reconnects are not lost on a broker that keeps sessions.
	if onEvent == nil {
		onEvent = func(string) {}
	}
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		o.lost.Add(1)
		onEvent(fmt.Sprintf("lost its connection (%v); reconnecting", err))
	})
	var connected atomic.Bool
	subs := make(map[string]byte, len(filters))
	for _, f := range filters {
		subs[f] = 2
	}
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		if connected.Swap(true) {
			onEvent("reconnected")
			// Not waited for here: paho calls this handler from its own goroutine.
			c.SubscribeMultiple(subs, o.record)
		}
	})
	o.client = mqtt.NewClient(opts)
	if err := connect(ctx, o.client); err != nil {
		return nil, fmt.Errorf("observer: connect to %s: %w", url, err)
	}
	if err := wait(ctx, o.client.SubscribeMultiple(subs, o.record)); err != nil {
		o.client.Disconnect(0)
		return nil, fmt.Errorf("observer: subscribe %s: %w", strings.Join(filters, ", "), err)
	}
	return o, nil
}

func (o *observer) record(_ mqtt.Client, m mqtt.Message) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.msgs) >= o.limit {
		o.dropped.Add(1)
		return
	}
	o.msgs = append(o.msgs, Observed{
		N: len(o.msgs), Time: now, Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...),
		QoS: m.Qos(), Retained: m.Retained(), Dup: m.Duplicate(),
	})
	close(o.notify)
	o.notify = make(chan struct{})
}

// snapshot returns the record so far and a channel closed when it grows. The slice is shared:
// callers only read it (appends never change the elements already there).
func (o *observer) snapshot() ([]Observed, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.msgs[:len(o.msgs):len(o.msgs)], o.notify
}

func (o *observer) stop() {
	o.client.Disconnect(250)
}

// retainedSnapshot opens a fresh connection, subscribes to filter and returns the retained
// messages the broker sends for it. To know when the broker has sent them all, it then publishes
// a probe on a topic of its own, subscribed on the same connection: the broker handles the
// subscription (and sends its retained messages) before it receives the probe, so the probe
// arrives after them.
func retainedSnapshot(ctx context.Context, url, clientID, filter string) ([]Observed, error) {
	probe := "gatehouse/probe/" + clientID
	var mu sync.Mutex // protects got
	var got []Observed
	probed := make(chan struct{})
	var once sync.Once
	c := mqtt.NewClient(clientOpts(url, clientID, true))
	if err := connect(ctx, c); err != nil {
		return nil, fmt.Errorf("retained check: connect: %w", err)
	}
	defer c.Disconnect(0)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		if m.Topic() == probe {
			once.Do(func() { close(probed) })
			return
		}
		if !m.Retained() {
			return
		}
		mu.Lock()
		got = append(got, Observed{Time: time.Now(), Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), QoS: m.Qos(), Retained: true})
		mu.Unlock()
	}
	if err := wait(ctx, c.Subscribe(filter, 1, handler)); err != nil {
		return nil, fmt.Errorf("retained check: subscribe %s: %w", filter, err)
	}
	if err := wait(ctx, c.Subscribe(probe, 1, handler)); err != nil {
		return nil, fmt.Errorf("retained check: subscribe probe: %w", err)
	}
	if err := wait(ctx, c.Publish(probe, 1, false, "probe")); err != nil {
		return nil, fmt.Errorf("retained check: publish probe: %w", err)
	}
	select {
	case <-probed:
	case <-ctx.Done():
		return nil, fmt.Errorf("retained check: the probe did not come back: %w", ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range got {
		got[i].N = i
	}
	return got, nil
}
