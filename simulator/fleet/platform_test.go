package fleet_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// platform is the building-management platform's side: a real MQTT client that subscribes to
// everything the fleet publishes and sends commands.
type platform struct {
	t      *testing.T
	client mqtt.Client

	mu      sync.Mutex // protects msgs and changed
	msgs    []received
	changed chan struct{}
}

type received struct {
	Topic    string
	Payload  string
	Retained bool
	QoS      byte
}

func (r received) json() map[string]any {
	var v map[string]any
	_ = json.Unmarshal([]byte(r.Payload), &v)
	return v
}

var clientSeq struct {
	sync.Mutex
	n int
}

func newPlatform(t *testing.T, url, filter string) *platform {
	t.Helper()
	clientSeq.Lock()
	clientSeq.n++
	id := fmt.Sprintf("platform-%d", clientSeq.n)
	clientSeq.Unlock()
	p := &platform{t: t, changed: make(chan struct{})}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true)
	p.client = mqtt.NewClient(o)
	if tok := p.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("platform connect: %v", tok.Error())
	}
	tok := p.client.Subscribe(filter, 2, func(_ mqtt.Client, m mqtt.Message) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.msgs = append(p.msgs, received{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), QoS: m.Qos()})
		close(p.changed)
		p.changed = make(chan struct{})
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("platform subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { p.client.Disconnect(100) })
	return p
}

func (p *platform) send(topic, payload string) {
	p.t.Helper()
	tok := p.client.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		p.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// wait returns the first message from index from on that matches, failing after timeout.
func (p *platform) wait(from int, timeout time.Duration, what string, match func(received) bool) (received, int) {
	p.t.Helper()
	deadline := time.After(timeout)
	for i := from; ; {
		p.mu.Lock()
		for ; i < len(p.msgs); i++ {
			if match(p.msgs[i]) {
				m := p.msgs[i]
				p.mu.Unlock()
				return m, i
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("no %s within %s; received:\n%s", what, timeout, p.dump())
		}
	}
}

func (p *platform) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

func (p *platform) count(match func(received) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.msgs {
		if match(m) {
			n++
		}
	}
	return n
}

func (p *platform) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, m := range p.msgs {
		fmt.Fprintf(&b, "  %s qos=%d retained=%t %s\n", m.Topic, m.QoS, m.Retained, m.Payload)
	}
	return b.String()
}

func topicIs(topic string) func(received) bool {
	return func(r received) bool { return r.Topic == topic }
}

func topicAnd(topic string, pred func(map[string]any) bool) func(received) bool {
	return func(r received) bool { return r.Topic == topic && pred(r.json()) }
}

func field(k string, v any) func(map[string]any) bool {
	return func(m map[string]any) bool { return fmt.Sprint(m[k]) == fmt.Sprint(v) }
}
