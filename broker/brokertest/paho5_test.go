package brokertest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestPahoGolang5 drives the broker with eclipse/paho.golang, the MQTT 5.0 library the devices use:
// request/response with correlation data and user properties, and QoS 2.
func TestPahoGolang5(t *testing.T) {
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(id string, onPub func(paho.PublishReceived) (bool, error)) *paho.Client {
		nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cfg := paho.ClientConfig{Conn: nc}
		if onPub != nil {
			cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onPub}
		}
		c := paho.NewClient(cfg)
		ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
		if err != nil || ack.ReasonCode != 0 {
			t.Fatalf("%s connect: %v %+v", id, err, ack)
		}
		t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
		return c
	}
	got := make(chan *paho.Publish, 1)
	dev := dial("gate-01", func(pr paho.PublishReceived) (bool, error) { got <- pr.Packet; return true, nil })
	if _, err := dev.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "acs/s/gate/gate-01/cmd/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	app := dial("app", nil)
	_, err := app.Publish(ctx, &paho.Publish{Topic: "acs/s/gate/gate-01/cmd/open", QoS: 2, Payload: []byte(`{"corr":"c1"}`),
		Properties: &paho.PublishProperties{ResponseTopic: "app/resp", CorrelationData: []byte("c1"),
			User: paho.UserProperties{{Key: "site", Value: "s"}}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.QoS != 2 || p.Properties.ResponseTopic != "app/resp" || string(p.Properties.CorrelationData) != "c1" || p.Properties.User.Get("site") != "s" {
			t.Fatalf("received %+v props %+v", p, p.Properties)
		}
	case <-ctx.Done():
		t.Fatalf("command not delivered; trace:\n%s", b.Trace().Dump(30))
	}
	// The trace recorded the QoS 2 exchange with the device.
	b.Trace().WaitFor(t, 5*time.Second, brokertest.All(brokertest.In(packet.TypePubcomp), brokertest.Client("gate-01")))
}
