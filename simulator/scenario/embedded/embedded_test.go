package embedded

import (
	"context"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, url, id string, clean bool, onMsg mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(false)
	if onMsg != nil {
		o.SetDefaultPublishHandler(onMsg)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// A restart comes back on the same address and keeps persistent sessions: a subscriber that does
// not subscribe again still receives what is published after the restart.
func TestRestartKeepsAddressAndSessions(t *testing.T) {
	b, err := Start(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	url := b.URL()
	got := make(chan string, 4)
	sub := client(t, url, "keeper", false, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) })
	if tok := sub.Subscribe("site/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if b.URL() != url || b.Restarts() != 1 {
		t.Fatalf("after restart: %s (restarts %d), want %s", b.URL(), b.Restarts(), url)
	}
	pub := client(t, url, "publisher", true, nil)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	// The subscriber reconnects on its own; publish until its session delivers.
	for {
		select {
		case p := <-got:
			if p != "after restart" {
				t.Fatalf("got %q", p)
			}
			return
		case <-tick.C:
			pub.Publish("site/gate/1/state", 1, false, "after restart")
		case <-deadline:
			t.Fatal("the persistent subscriber got nothing after the restart: its session was lost")
		}
	}
}

func TestStartRefusesUnknownFaultModes(t *testing.T) {
	_, err := Start(context.Background(), "", nil, "no-will", "made-up-fault")
	if err == nil || !strings.Contains(err.Error(), "made-up-fault") {
		t.Fatalf("Start with an unknown fault mode: %v", err)
	}
	b, err := Start(context.Background(), "", nil, "no-will")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	if !strings.Contains(b.Describe(), "no-will") {
		t.Fatalf("Describe() = %q does not name the fault mode", b.Describe())
	}
}
