package broker_test

import (
	"context"
	"log/slog"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// willGate is a broker log handler that holds the end of one client's connection at a log
// message the broker writes while it winds that connection up: "publishing will" just before it
// routes a will, "client disconnected" just before it ends the session. The handler blocks there
// until the spec opens the gate or the broker logs that a new connection of that client waits for
// the wind-up. It widens, deterministically, the window in which a new connection could overtake
// what the connection it replaces left behind.
type willGate struct {
	client  string
	hold    string        // the log message to hold at
	entered chan struct{} // closed when the broker logs hold for the client
	release chan struct{} // closed to let the broker go on
	enterMu sync.Once
	openMu  sync.Once
}

func newWillGate(client string) *willGate { return newGate(client, "publishing will") }

func newGate(client, hold string) *willGate {
	return &willGate{client: client, hold: hold, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *willGate) open() { g.openMu.Do(func() { close(g.release) }) }

func (g *willGate) Enabled(context.Context, slog.Level) bool { return true }

func (g *willGate) Handle(_ context.Context, r slog.Record) error {
	var client string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "client" {
			client = a.Value.String()
			return false
		}
		return true
	})
	if client != g.client {
		return nil
	}
	switch r.Message {
	case g.hold:
		g.enterMu.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-time.After(4 * wait): // bounded: a spec that never opens the gate fails, not hangs
		}
	case "waiting for the previous connection to wind up":
		g.open()
	}
	return nil
}

func (g *willGate) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g *willGate) WithGroup(string) slog.Handler      { return g }

var _ = Describe("Will before the next connection", func() {
	const (
		status  = "acs/s1/gate/gate-01/status"
		online  = `{"online":true}`
		offline = `{"online":false}`
	)
	type reconnect struct {
		name string
		v    packet.Version
		// old and next complete the CONNECT of the old and the new connection.
		old, next func(*packet.Connect)
		// willDelay: the will goes out on a timer after the old connection closed.
		willDelay bool
		// byReconnect: the will goes out because the new connection ends the old session.
		byReconnect bool
	}
	will := func(c *packet.Connect) {
		c.Will = &packet.Will{Topic: status, Payload: []byte(offline), QoS: 1, Retain: true}
	}
	persistent := func(delay uint32) func(*packet.Connect) {
		return func(c *packet.Connect) {
			will(c)
			c.CleanStart = false
			c.Props.SessionExpiry = 300
			c.Will.Props.WillDelay = delay
		}
	}
	for _, r := range []reconnect{
		{name: "3.1.1, the old connection closed by the device", v: packet.V311, old: will, next: will},
		{name: "5.0, Will Delay 0, the session resumed", v: packet.V5, old: persistent(0), next: persistent(0)},
		{name: "5.0, the Will Delay over before the device came back", v: packet.V5, old: persistent(1), next: persistent(1), willDelay: true},
		{name: "5.0, Will Delay 60, the session ended by Clean Start 1", v: packet.V5, old: persistent(60),
			next: func(c *packet.Connect) { persistent(60)(c); c.CleanStart = true }, byReconnect: true},
	} {
		It("publishes the old connection's will before the new connection's messages: "+r.name,
			Label("MQTT-3.1.2-8", "§3.1.4"), func() {
				gate := newWillGate("gate-01")
				DeferCleanup(gate.open)
				b := start(withConfig(func(c *brokerConfig) { c.Logger = slog.New(gate) }))
				watcher := connectWire(b, packet.V311, "watcher")
				watcher.subscribe(1, status, 1)

				old := connectWire(b, r.v, "gate-01", r.old)
				old.publish(status, 1, true, online, 1)
				Expect(string(watcher.receive().Payload)).To(Equal(online))

				// The device loses its connection; the broker sees it close and is about to
				// publish the will (now, or when the Will Delay is over) when the device
				// reconnects and reports itself online again.
				old.close()
				switch {
				case r.byReconnect:
					// Nothing to hold: the reconnection itself publishes the will.
					Eventually(func() int64 { return b.Stats().ClientsConnected.Load() }).WithTimeout(wait).Should(BeEquivalentTo(1))
					gate.open()
				case r.willDelay:
					Eventually(gate.entered).WithTimeout(2 * wait).Should(BeClosed())
				default:
					Eventually(gate.entered).WithTimeout(wait).Should(BeClosed())
				}
				newer := dialWire(b, r.v)
				newer.id = "gate-01 (new)"
				c := &packet.Connect{ClientID: "gate-01", CleanStart: true, KeepAlive: 60}
				r.next(c)
				newer.send(c)
				newer.send(&packet.Publish{Topic: status, QoS: 1, Retain: true, PacketID: 1, Payload: []byte(online)})
				Expect(expectPacket[*packet.Connack](newer).Code).To(Equal(packet.Success))
				Expect(expectPacket[*packet.Puback](newer).PacketID).To(BeEquivalentTo(1))
				gate.open()

				Expect(string(watcher.receive().Payload)).To(Equal(offline), "the old connection's will comes first")
				Expect(string(watcher.receive().Payload)).To(Equal(online), "then the new connection's status")
				late := connectWire(b, packet.V311, "late")
				late.subscribe(1, status, 1)
				got := late.receive()
				Expect(got.Retain).To(BeTrue())
				Expect(string(got.Payload)).To(Equal(online), "the retained status of a connected device")
			})
	}
})

var _ = Describe("Session store across a reconnection", func() {
	It("keeps the persistent session of a client whose previous clean session was still ending", Label("MQTT-3.1.2-6", "MQTT-4.1.0-1"), func() {
		store := session.NewMemory()
		gate := newGate("gate-01", "client disconnected")
		DeferCleanup(gate.open)
		b := start(withConfig(func(c *brokerConfig) { c.Store = store; c.Logger = slog.New(gate) }))
		watcher := connectWire(b, packet.V311, "watcher")
		watcher.subscribe(1, "acs/s1/gate/gate-01/status", 1)

		// A clean session ends with its connection; its will is published after that, so the
		// watcher seeing the will means the old session's end is complete.
		old := connectWire(b, packet.V311, "gate-01", func(c *packet.Connect) {
			c.Will = &packet.Will{Topic: "acs/s1/gate/gate-01/status", Payload: []byte(`{"online":false}`), QoS: 1}
		})
		old.close()
		Eventually(gate.entered).WithTimeout(wait).Should(BeClosed())

		newer := dialWire(b, packet.V311)
		newer.id = "gate-01 (new)"
		newer.send(&packet.Connect{ClientID: "gate-01", KeepAlive: 60}) // CleanSession 0
		newer.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "acs/s1/gate/gate-01/cmd/#", QoS: 1}}})
		Expect(expectPacket[*packet.Connack](newer).Code).To(Equal(packet.Success))
		Expect(expectPacket[*packet.Suback](newer).PacketID).To(BeEquivalentTo(1))
		gate.open()
		Expect(string(watcher.receive().Payload)).To(Equal(`{"online":false}`))

		var stored []string
		Expect(store.Load(func(st session.State, _ []session.Message) error {
			for _, sub := range st.Subscriptions {
				stored = append(stored, st.ClientID+" "+sub.Filter)
			}
			return nil
		})).To(Succeed())
		Expect(stored).To(ConsistOf("gate-01 acs/s1/gate/gate-01/cmd/#"), "the new persistent session is in the Store")
	})
})
