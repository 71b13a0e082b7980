package brokertest_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, b *brokertest.Broker, id string, mod func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	if mod != nil {
		mod(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func TestPahoPublishSubscribeRetainWill(t *testing.T) {
	b := brokertest.Start(t)
	got := make(chan paho.Message, 10)
	sub := connect(t, b, "sub", nil)
	if tok := sub.Subscribe("acs/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := connect(t, b, "pub", nil)
	for q := byte(0); q <= 2; q++ {
		if tok := pub.Publish("acs/site/gate/g1/state", q, false, []byte{'0' + q}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish qos %d: %v", q, tok.Error())
		}
	}
	for q := byte(0); q <= 2; q++ {
		select {
		case m := <-got:
			if string(m.Payload()) != string([]byte{'0' + q}) || m.Qos() != min(q, 1) {
				t.Fatalf("message %d: payload %q qos %d", q, m.Payload(), m.Qos())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not delivered; trace:\n%s", q, b.Trace().Dump(30))
		}
	}

	// Retained: a later subscriber gets it with the retain flag.
	if tok := pub.Publish("acs/site/gate/g1/status", 1, true, `{"online":true}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish retained: %v", tok.Error())
	}
	late := connect(t, b, "late", nil)
	ret := make(chan paho.Message, 1)
	late.Subscribe("acs/+/gate/+/status", 1, func(_ paho.Client, m paho.Message) { ret <- m })
	select {
	case m := <-ret:
		if !m.Retained() || string(m.Payload()) != `{"online":true}` {
			t.Fatalf("retained: got retained=%t payload %q", m.Retained(), m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retained message not delivered")
	}

	// Will: published when the connection is lost without DISCONNECT.
	wills := make(chan paho.Message, 1)
	sub.Subscribe("acs/site/gate/g2/status", 1, func(_ paho.Client, m paho.Message) { wills <- m }).WaitTimeout(5 * time.Second)
	dev := b.Dial(t)
	conn := &packet.Connect{ClientID: "g2", CleanStart: true, KeepAlive: 30,
		Will: &packet.Will{Topic: "acs/site/gate/g2/status", Payload: []byte(`{"online":false}`), QoS: 1}}
	if _, err := dev.Write(packet.Build(conn, packet.V311)); err != nil {
		t.Fatal(err)
	}
	b.Trace().WaitFor(t, 5*time.Second, brokertest.All(brokertest.Out(packet.TypeConnack), brokertest.Client("g2")))
	_ = dev.Close()
	select {
	case m := <-wills:
		if string(m.Payload()) != `{"online":false}` {
			t.Fatalf("will payload %q", m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("will not published; trace:\n%s", b.Trace().Dump(30))
	}
}
