package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	persist "github.com/gatehouse-iot/gatehouse/broker/session"
)

// ListenerKind is the transport of a listener.
type ListenerKind string

// Listener transports.
const (
	TCP       ListenerKind = "tcp"       // plain MQTT over TCP
	TLS       ListenerKind = "tls"       // MQTT over TLS (optionally with client certificates)
	WebSocket ListenerKind = "websocket" // MQTT over WebSocket, subprotocol "mqtt" (TLS when TLS is set)
)

// Listener is one network endpoint of the broker.
type Listener struct {
	// Name identifies the listener for Broker.Addr; defaults to the kind ("tcp", "tls", "websocket"),
	// with a number appended when several listeners share a kind ("tcp2").
	Name string
	Kind ListenerKind
	// Addr is host:port; ":0" and "127.0.0.1:0" bind a free port.
	Addr string
	// TLS is required for Kind TLS and optional for WebSocket. Set ClientAuth and ClientCAs for
	// client certificates.
	TLS *tls.Config
	// UseIdentityAsUsername takes the verified client certificate's Common Name as the username
	// (mosquitto's use_identity_as_username); the certificate is then the credential and the
	// password is not checked. Only meaningful with client certificates.
	UseIdentityAsUsername bool
	// WebSocketPath is the HTTP path of a WebSocket listener; "" accepts any path.
	WebSocketPath string
}

// Config configures a Broker. The zero value is usable: one TCP listener on ":1883", anonymous
// clients refused unless AllowAnonymous is set, limits at their defaults.
type Config struct {
	Listeners []Listener

	// AllowAnonymous admits clients that send no username. Without it, such a client is refused
	// with CONNACK 0x05 (3.x) / 0x87 (5.0).
	AllowAnonymous bool
	// Authenticator checks username and password (for example *auth.PasswordFile). Nil with
	// AllowAnonymous admits everybody; nil without it refuses everybody (as mosquitto 2.0 does).
	Authenticator auth.Authenticator
	// ACL decides topic access on SUBSCRIBE, PUBLISH and delivery. Nil allows everything.
	ACL auth.ACL

	// MaxConnections bounds open network connections; 0 means unlimited.
	MaxConnections int
	// MaxPacketSize is the largest packet accepted from a client, in bytes (5.0 advertises it as
	// Maximum Packet Size); 0 means the protocol maximum.
	MaxPacketSize uint32
	// MaxInflight bounds outgoing QoS 1/2 messages in flight per client, and is advertised to 5.0
	// clients as the broker's Receive Maximum (mosquitto's max_inflight_messages). Default 100.
	MaxInflight uint16
	// MaxQueued bounds the QoS 0 messages waiting to be written to one client; beyond it they are
	// dropped and counted (Stats.DroppedQueueFull). QoS 1/2 messages are never dropped: beyond the
	// in-flight window they wait in the session. Default 1000.
	MaxQueued int
	// MaxKeepAlive caps the keepalive a client may ask for (5.0: announced as Server Keep Alive
	// when the client asks for more, or for 0); 0 means no cap.
	MaxKeepAlive uint16
	// RetainUnavailable turns retained messages off (5.0: Retain Available 0 in CONNACK, a retained
	// PUBLISH gets DISCONNECT 0x9A).
	RetainUnavailable bool
	// TopicAliasMaximum is announced to 5.0 clients; aliases above it get DISCONNECT 0x94.
	// Default 10; set NoTopicAliases to announce none.
	TopicAliasMaximum uint16
	NoTopicAliases    bool
	// ConnectTimeout closes a connection that has not sent a complete CONNECT in time. Default 10s.
	ConnectTimeout time.Duration
	// WriteTimeout closes a connection whose peer does not read. Default 10s.
	WriteTimeout time.Duration
	// MaxSessionExpiry caps the Session Expiry Interval of 5.0 sessions, in seconds; 0 = no cap.
	MaxSessionExpiry uint32
	// ResponseInformation is the prefix returned to 5.0 clients that request response
	// information (the client id is appended). Default "gatehouse/response/".
	ResponseInformation string

	// Faults turns fault modes on (see Fault). SlowConnackDelay is the delay of slow-connack
	// (default 2s).
	Faults           []FaultRule
	SlowConnackDelay time.Duration

	// SysInterval publishes $SYS/broker/... topics at this interval; 0 disables them.
	SysInterval time.Duration

	// Tracer sees every packet in and out; nil for none.
	Tracer Tracer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Store keeps persistent sessions (subscriptions, queued and in-flight QoS 1/2 messages, wills)
	// across restarts of the broker; nil keeps them in this process only.
	Store persist.Store
}

// Defaults of Config, applied by New to zero fields.
const (
	DefaultMaxInflight       = 100
	DefaultMaxQueued         = 1000
	DefaultTopicAliasMaximum = 10
	DefaultConnectTimeout    = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultSlowConnackDelay  = 2 * time.Second
	// ProtocolMaxPacketSize is the largest packet MQTT can express: 268,435,455 bytes of remaining
	// length plus a 5-byte fixed header.
	ProtocolMaxPacketSize = 268435455 + 5
)

func (c *Config) applyDefaults() {
	if len(c.Listeners) == 0 {
		c.Listeners = []Listener{{Kind: TCP, Addr: ":1883"}}
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.TopicAliasMaximum == 0 && !c.NoTopicAliases {
		c.TopicAliasMaximum = DefaultTopicAliasMaximum
	}
	if c.NoTopicAliases {
		c.TopicAliasMaximum = 0
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SlowConnackDelay == 0 {
		c.SlowConnackDelay = DefaultSlowConnackDelay
	}
	if c.ResponseInformation == "" {
		c.ResponseInformation = "gatehouse/response/"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	counts := map[ListenerKind]int{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Kind == "" {
			l.Kind = TCP
		}
		counts[l.Kind]++
		if l.Name == "" {
			l.Name = string(l.Kind)
			if n := counts[l.Kind]; n > 1 {
				l.Name = fmt.Sprintf("%s%d", l.Kind, n)
			}
		}
	}
}

func (c *Config) validate() error {
	var errs []error
	names := map[string]bool{}
	for i, l := range c.Listeners {
		where := fmt.Sprintf("listener %d (%s)", i, l.Name)
		if names[l.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate listener name %q", where, l.Name))
		}
		names[l.Name] = true
		switch l.Kind {
		case TCP, WebSocket:
		case TLS:
			if l.TLS == nil {
				errs = append(errs, fmt.Errorf("%s: a TLS listener needs a TLS configuration (certificate and key)", where))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown listener kind %q (tcp, tls, websocket)", where, l.Kind))
		}
		if l.Addr == "" {
			errs = append(errs, fmt.Errorf("%s: empty address (use host:port, \":0\" for a free port)", where))
		}
		if l.UseIdentityAsUsername && (l.TLS == nil || l.TLS.ClientCAs == nil) {
			errs = append(errs, fmt.Errorf("%s: use_identity_as_username needs TLS with a client CA (cafile)", where))
		}
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("max_connections %d: must be 0 (unlimited) or positive", c.MaxConnections))
	}
	if c.MaxPacketSize != 0 && c.MaxPacketSize < 16 {
		errs = append(errs, fmt.Errorf("max_packet_size %d: too small to carry a CONNECT (at least 16)", c.MaxPacketSize))
	}
	if c.MaxQueued < 0 {
		errs = append(errs, fmt.Errorf("max_queued_messages %d: must be positive", c.MaxQueued))
	}
	if c.ConnectTimeout < 0 || c.WriteTimeout < 0 || c.SlowConnackDelay < 0 || c.SysInterval < 0 {
		errs = append(errs, errors.New("timeouts and intervals must not be negative"))
	}
	if _, err := newFaultTable(c.Faults); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
