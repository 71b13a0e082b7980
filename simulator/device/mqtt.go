package device

import (
	"net"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// The MQTT adapter: a paho.mqtt.golang 3.1.1 client per connection attempt, all of one power-on
// sharing one ordered in-memory store, so that QoS 1/2 messages in flight when a connection is
// lost are resent (with DUP) on the next connection, and one link (simulator/device/link) that
// keeps the keepalive and sends a released QoS 2 message's PUBREL where paho would resend its
// PUBLISH, so that billing stays exactly-once. Reconnection
// is the device's own (paho's automatic reconnect is off): exponential backoff with seeded
// jitter, scheduled on the device's clock, and no reconnection while the power is off.

// connect starts a connection attempt unless one is running.
func (s *Sim) connect() {
	if !s.powered || s.connecting || s.client != nil {
		return
	}
	s.connecting = true
	s.connGen++
	gen := s.connGen
	c := mqtt.NewClient(s.clientOptions(gen))
	s.client = c
	tok := c.Connect()
	s.spawn(func() {
		select {
		case <-tok.Done():
			s.post(func() { s.connected(gen, c, tok.Error()) })
		case <-s.stopping:
			// Close releases the wire, which ends the attempt; paho's own goroutines then exit.
		}
	})
}

func (s *Sim) clientOptions(gen uint64) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	o.AddBroker(s.cfg.Broker)
	o.SetClientID(s.cfg.ClientID)
	o.SetUsername(s.cfg.Username)
	o.SetPassword(s.cfg.Password)
	o.SetProtocolVersion(4)
	o.SetCleanSession(s.cfg.CleanSession)
	// The keepalive is the link's (simulator/device/link): paho's checks every Keep Alive/4 let
	// a gap between packets reach 1.25 × Keep Alive (MQTT-3.1.2-23). The link writes the
	// configured Keep Alive into the CONNECT, sends PINGREQ in time and gives up on a server
	// that does not answer one within min(Keep Alive, 10s).
	o.SetKeepAlive(0)
	o.SetConnectTimeout(s.cfg.ConnectTimeout)
	o.SetWriteTimeout(10 * time.Second)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetOrderMatters(true)
	o.SetStore(s.store)
	will, willPayload := s.topics.Status(), `{"online":false}`
	if f, ok := s.faults[fault.WrongWill]; ok {
		will, _ = f.StringParam("topic", s.topics.Base()+"/lwt")
		willPayload, _ = f.StringParam("payload", "offline")
	}
	o.SetWill(will, willPayload, 1, true)
	wire, lk, timeout := s.wire, s.link, s.cfg.ConnectTimeout
	o.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		c, err := wire.Dial(u.Host, timeout)
		if err != nil {
			return nil, err
		}
		return lk.Wrap(c), nil
	})
	handler := func(_ mqtt.Client, m mqtt.Message) {
		name, ok := commandName(s.topics, m.Topic())
		if !ok {
			return
		}
		payload := append([]byte(nil), m.Payload()...)
		s.post(func() {
			if s.powered && s.connGen == gen {
				s.command(name, payload, nil)
			}
		})
	}
	// Commands queued in the session may arrive before the subscription is renewed.
	o.SetDefaultPublishHandler(handler)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		s.post(func() { s.lost(gen, err) })
	})
	s.onMessage = handler
	return o
}

// commandName extracts {name} from {base}/cmd/{name}.
func commandName(t Topics, topic string) (string, bool) {
	prefix := t.Base() + "/cmd/"
	if !strings.HasPrefix(topic, prefix) {
		return "", false
	}
	name := topic[len(prefix):]
	if name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// connected handles the end of a connection attempt.
func (s *Sim) connected(gen uint64, c mqtt.Client, err error) {
	if gen != s.connGen {
		// The power went, or the device rebooted, while connecting. After a power cut the wire
		// already closed the socket; after a reboot a late success is closed cleanly.
		if err == nil {
			s.spawn(func() { c.Disconnect(100) })
		}
		return
	}
	s.connecting = false
	if err != nil {
		s.client = nil
		s.count(func(st *Stats) { st.ConnectFailures++ })
		s.log.Debug("connect failed", "device", s.cfg.ID, "err", err)
		s.scheduleReconnect()
		return
	}
	s.attempt = 0
	again := s.everOnline
	s.everOnline = true
	s.count(func(st *Stats) {
		st.Connects++
		if again {
			st.Reconnects++
		}
	})
	c.Subscribe(s.topics.Commands(), 1, s.onMessage)
	s.up = true
	status := s.publishPresence()
	queued := s.outbox
	s.outbox = nil
	for _, m := range queued {
		s.send(m)
	}
	// Online, for the device's owner, means the broker holds the retained online status.
	if status == nil {
		return
	}
	s.spawn(func() {
		select {
		case <-status.Done():
			if status.Error() == nil {
				s.post(func() {
					if gen == s.connGen && s.up {
						s.setOnline(true)
					}
				})
			}
		case <-s.stopping:
		}
	})
}

// lost handles the loss of an established connection.
func (s *Sim) lost(gen uint64, err error) {
	if gen != s.connGen || s.client == nil {
		return
	}
	s.client = nil
	s.up = false
	s.setOnline(false)
	s.count(func(st *Stats) { st.ConnectionsLost++ })
	s.log.Debug("connection lost", "device", s.cfg.ID, "err", err)
	s.scheduleReconnect()
}

// scheduleReconnect waits an exponential backoff with "equal jitter" (half fixed, half seeded
// random), so that a fleet that lost its broker does not come back in one burst.
func (s *Sim) scheduleReconnect() {
	if !s.powered {
		return
	}
	d := s.cfg.ReconnectMin << min(s.attempt, 20)
	if d <= 0 || d > s.cfg.ReconnectMax {
		d = s.cfg.ReconnectMax
	}
	s.attempt++
	d = d/2 + time.Duration(s.netRng.Int64N(int64(d/2)+1))
	s.after(d, s.connect)
}
