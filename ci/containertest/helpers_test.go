package containertest_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/gatehouse-iot/gatehouse/broker/target"
)

// startBroker starts a broker image as a container for the current spec and removes it after.
func startBroker(image string, o target.ContainerOptions) *target.Container {
	GinkgoHelper()
	tg, err := target.Parse("image:" + image)
	Expect(err).NotTo(HaveOccurred())
	return startTarget(tg, o)
}

func startTarget(tg target.Target, o target.ContainerOptions) *target.Container {
	GinkgoHelper()
	tg.Logf = func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := target.StartContainer(ctx, tg, o)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(c.Stop(ctx)).To(Succeed())
	}, NodeTimeout(60*time.Second))
	return c
}

// newNetwork creates a user-defined Docker network for the current spec and removes it after.
func newNetwork() *testcontainers.DockerNetwork {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nw, err := network.New(ctx)
	Expect(err).NotTo(HaveOccurred())
	// Registered first, so that it runs after the containers on it are removed.
	DeferCleanup(func(ctx SpecContext) {
		Expect(nw.Remove(ctx)).To(Succeed())
	}, NodeTimeout(30*time.Second))
	return nw
}

// received is one message a client got.
type received struct {
	Topic    string
	Payload  string
	Retained bool
}

// client is a paho MQTT 3.1.1 client that records what it receives and how its connection goes.
type client struct {
	c mqtt.Client

	mu       sync.Mutex // protects msgs, connects, lost
	msgs     []received
	connects int
	lost     []error
}

// clientOptions are the options of a test client: MQTT 3.1.1, no automatic reconnection unless
// the caller turns it on, every message to the recorder.
func clientOptions(addr, id string, clean bool) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	o.AddBroker("tcp://" + addr)
	o.SetClientID(id)
	o.SetProtocolVersion(4)
	o.SetCleanSession(clean)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(2 * time.Second)
	o.SetWriteTimeout(2 * time.Second)
	o.SetOrderMatters(true)
	return o
}

// dial connects a client built from o and disconnects it when the spec ends. It returns the
// client and whether the broker said a session was present.
func dial(o *mqtt.ClientOptions) (*client, bool) {
	GinkgoHelper()
	cl := &client{}
	o.SetDefaultPublishHandler(cl.record)
	onConnect := o.OnConnect
	o.SetOnConnectHandler(func(c mqtt.Client) {
		cl.mu.Lock()
		cl.connects++
		cl.mu.Unlock()
		if onConnect != nil {
			onConnect(c)
		}
	})
	onLost := o.OnConnectionLost
	o.SetConnectionLostHandler(func(c mqtt.Client, err error) {
		cl.mu.Lock()
		cl.lost = append(cl.lost, err)
		cl.mu.Unlock()
		if onLost != nil {
			onLost(c, err)
		}
	})
	cl.c = mqtt.NewClient(o)
	tok := cl.c.Connect()
	Expect(tok.WaitTimeout(10*time.Second)).To(BeTrue(), "CONNECT to %v timed out", o.Servers)
	Expect(tok.Error()).NotTo(HaveOccurred())
	DeferCleanup(func() { cl.c.Disconnect(100) })
	return cl, tok.(*mqtt.ConnectToken).SessionPresent()
}

func (cl *client) record(_ mqtt.Client, m mqtt.Message) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.msgs = append(cl.msgs, received{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()})
}

// subscribe subscribes at QoS 1 and waits for the SUBACK.
func (cl *client) subscribe(filter string) {
	GinkgoHelper()
	tok := cl.c.Subscribe(filter, 1, nil)
	Expect(tok.WaitTimeout(5 * time.Second)).To(BeTrue())
	Expect(tok.Error()).NotTo(HaveOccurred())
}

// publish publishes at QoS 1 and waits for the PUBACK: the broker owns the message then.
func (cl *client) publish(topic, payload string, retain bool) {
	GinkgoHelper()
	tok := cl.c.Publish(topic, 1, retain, payload)
	Expect(tok.WaitTimeout(5*time.Second)).To(BeTrue(), "no PUBACK for %s", topic)
	Expect(tok.Error()).NotTo(HaveOccurred())
}

// messages returns what the client received so far.
func (cl *client) messages() []received {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]received(nil), cl.msgs...)
}

// live returns the payloads published on topic while the client was subscribed, in arrival
// order (retained replays of a new subscription left out).
func (cl *client) live(topic string) []string {
	var out []string
	for _, m := range cl.messages() {
		if m.Topic == topic && !m.Retained {
			out = append(out, m.Payload)
		}
	}
	return out
}

func (cl *client) connections() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.connects
}

func (cl *client) losses() []error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]error(nil), cl.lost...)
}

func payloads(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cmd-%02d", i+1)
	}
	return out
}

// keepConnected reconnects a client whenever it loses its connection, until the spec ends, and
// calls up after each successful CONNECT. paho's own automatic reconnection is not used: it
// resends stored messages while a connect handler may be publishing, and races with it; here
// up runs once Connect has finished, resending included.
func keepConnected(o *mqtt.ClientOptions, up func(mqtt.Client)) *client {
	GinkgoHelper()
	lost := make(chan struct{}, 1)
	o.SetAutoReconnect(false)
	o.SetConnectionLostHandler(func(mqtt.Client, error) {
		select {
		case lost <- struct{}{}:
		default:
		}
	})
	cl, _ := dial(o)
	up(cl.c)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-lost:
			}
			// Bounded: a broker that never comes back ends the loop after a minute.
			for attempt := 0; attempt < 200; attempt++ {
				tok := cl.c.Connect()
				if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
					up(cl.c)
					break
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	DeferCleanup(func() {
		close(stop)
		wg.Wait()
	})
	return cl
}
