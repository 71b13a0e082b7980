// Package target is "a broker to run against", shared by the conformance suite, the scenario
// runner and the hardware-in-the-loop suite. A target is written as one string:
//
//	embedded                          the reference broker, in process, on 127.0.0.1:0
//	embedded?fault=drop-puback        ... with fault modes on (repeat fault=; NAME@CLIENTID for one client)
//	embedded?transport=ws             ... reached over WebSocket instead of TCP
//	embedded?deny=FILTER              ... with access control denying a topic filter to every client
//	mosquitto                         Debian's mosquitto, started on a free loopback port with a generated config
//	mosquitto?transport=ws            ... reached over its WebSocket listener
//	image:NAME                        a container image already present locally, started through testcontainers-go
//	image:NAME?port=1883&log=running  ... its MQTT port inside the container, a log line that says it is ready
//	mqtt://user:pass@host:port        a broker that is already running (also tcp://)
//	mqtts://host:port                 ... over TLS (also ssl://, tls://); see TLSOptions
//	ws://host:port/path, wss://...    ... over WebSocket
//
// Parse reads the string; Start brings the broker up (or checks that a remote one answers) and
// returns a Running broker with its address, URL, TLS configuration and credentials; Stop ends
// what Start began. Nothing is ever pulled from a registry: an image must be present locally.
package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
)

// Kind says what sort of broker a target is.
type Kind string

// The kinds of target.
const (
	Embedded  Kind = "embedded"  // the reference broker in this process
	Mosquitto Kind = "mosquitto" // Debian's mosquitto as a child process
	Image     Kind = "image"     // a container image through testcontainers-go
	Remote    Kind = "remote"    // a broker already running at an address
)

// Transports a target can be reached over.
const (
	TransportTCP = "tcp"
	TransportWS  = "ws"
)

// Target is a parsed target string plus the options that do not fit in it (TLS files,
// credentials given separately). The zero value is not a target; use Parse.
type Target struct {
	Kind Kind
	// Spec is the string the target was parsed from, with any password removed.
	Spec string

	// Remote: the broker's URL without credentials (mqtt://, mqtts://, ws://, wss://).
	URL string
	// Image: the image reference, and the MQTT port inside the container (default 1883/tcp).
	Image     string
	ImagePort string
	// ReadyLog: a line the image (or mosquitto) prints once it accepts connections; empty waits
	// for the port alone.
	ReadyLog string
	// Faults: the fault modes of an embedded broker.
	Faults []broker.FaultRule
	// DeniedTopics: topic filters an embedded broker's access control denies to every client
	// (publish, subscribe and receive), for authorization checks.
	DeniedTopics []string
	// Transport: how an embedded broker or mosquitto is reached, TransportTCP (default) or
	// TransportWS.
	Transport string
	// MosquittoBin: the mosquitto executable (default: found on PATH or in /usr/sbin).
	MosquittoBin string
	// Configure changes the embedded broker's configuration before it starts (tests use it to
	// set limits); nil leaves the defaults.
	Configure func(*broker.Config)

	// Logf receives the progress messages of starting a container (nil discards them).
	Logf func(format string, args ...any)

	// Username and Password are the credentials clients present; a URL's user info sets them.
	Username string
	Password string
	// TLS configures connections to mqtts:// and wss:// targets.
	TLS TLSOptions
}

// Running is a broker that Start brought up or found answering.
type Running interface {
	// Name says what the broker is, e.g. "embedded reference broker" or "mosquitto 2.0.11".
	Name() string
	// Addr returns host:port.
	Addr() string
	// URL returns the URL clients dial: mqtt://host:port, mqtts://host:port, ws://host:port/mqtt.
	URL() string
	// TLSConfig returns the client TLS configuration for mqtts:// and wss:// URLs, nil otherwise.
	TLSConfig() *tls.Config
	// Credentials returns the username and password clients present, ok false when there are none.
	Credentials() (username, password string, ok bool)
	// Stop shuts down what Start started (nothing for a remote broker). It is safe to call twice.
	Stop(ctx context.Context) error
}

// Endpoints is implemented by running brokers reachable over more than one transport: it maps
// "tcp" and "ws" to the URLs of those listeners.
type Endpoints interface {
	Endpoints() map[string]string
}

// Lifecycle is implemented by running brokers whose process the caller controls, for fault
// scenarios: crash it, freeze it, bring it back, cut it from the network.
type Lifecycle interface {
	// Kill ends the broker at once, as a crash or power loss would (no orderly shutdown).
	Kill(ctx context.Context) error
	// Pause freezes the broker: connections stay open but nothing is read or answered.
	Pause(ctx context.Context) error
	// Unpause resumes a paused broker.
	Unpause(ctx context.Context) error
	// Restart stops the broker and starts it again on the same address.
	Restart(ctx context.Context) error
	// Disconnect cuts the broker from the network without stopping it.
	Disconnect(ctx context.Context) error
}

// Usage lists the target forms, for error messages and --help.
const Usage = "embedded[?fault=NAME&transport=ws&deny=FILTER], mosquitto[?transport=ws], image:NAME[?port=1883&log=TEXT], " +
	"mqtt://[user:pass@]host:port, mqtts://host:port, ws://host:port/path, wss://host:port/path"

// Parse reads a target string; see the package documentation for the forms.
func Parse(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, fmt.Errorf("target: empty (want one of %s)", Usage)
	}
	if rest, ok := strings.CutPrefix(s, "image:"); ok {
		return parseImage(s, rest)
	}
	if strings.Contains(s, "://") {
		return parseRemote(s)
	}
	name, query, _ := strings.Cut(s, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: options after '?': %w", s, err)
	}
	switch Kind(name) {
	case Embedded:
		t := Target{Kind: Embedded, Spec: s, Transport: TransportTCP}
		for key, vals := range q {
			switch key {
			case "fault":
				for _, v := range vals {
					for _, one := range strings.Split(v, ",") {
						r, err := broker.ParseFault(one)
						if err != nil {
							return Target{}, fmt.Errorf("target %q: %w", s, err)
						}
						t.Faults = append(t.Faults, r)
					}
				}
			case "transport":
				if t.Transport, err = transport(s, vals); err != nil {
					return Target{}, err
				}
			case "deny":
				for _, v := range vals {
					if err := topic.ValidateFilter(v); err != nil {
						return Target{}, fmt.Errorf("target %q: deny: %w", s, err)
					}
					t.DeniedTopics = append(t.DeniedTopics, v)
				}
			default:
				return Target{}, fmt.Errorf("target %q: unknown option %q for embedded (fault, transport, deny)", s, key)
			}
		}
		return t, nil
	case Mosquitto:
		t := Target{Kind: Mosquitto, Spec: s, Transport: TransportTCP}
		for key, vals := range q {
			switch key {
			case "transport":
				if t.Transport, err = transport(s, vals); err != nil {
					return Target{}, err
				}
			case "bin":
				t.MosquittoBin = vals[len(vals)-1]
			default:
				return Target{}, fmt.Errorf("target %q: unknown option %q for mosquitto (transport, bin)", s, key)
			}
		}
		return t, nil
	}
	return Target{}, fmt.Errorf("target %q: unknown target %q (want one of %s)", s, name, Usage)
}

func transport(s string, vals []string) (string, error) {
	switch v := vals[len(vals)-1]; v {
	case TransportTCP, TransportWS:
		return v, nil
	default:
		return "", fmt.Errorf("target %q: transport %q: want tcp or ws", s, v)
	}
}

func parseImage(s, rest string) (Target, error) {
	ref, query, _ := strings.Cut(rest, "?")
	if ref == "" {
		return Target{}, fmt.Errorf("target %q: image name missing after \"image:\"", s)
	}
	t := Target{Kind: Image, Spec: s, Image: ref, ImagePort: "1883/tcp", Transport: TransportTCP}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: options after '?': %w", s, err)
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "port":
			n, perr := strconv.Atoi(strings.TrimSuffix(v, "/tcp"))
			if perr != nil || n < 1 || n > 65535 {
				return Target{}, fmt.Errorf("target %q: port %q: want a TCP port number", s, v)
			}
			t.ImagePort = strconv.Itoa(n) + "/tcp"
		case "log":
			t.ReadyLog = v
		default:
			return Target{}, fmt.Errorf("target %q: unknown option %q for an image (port, log)", s, key)
		}
	}
	return t, nil
}

func parseRemote(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", redact(s), err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss":
	default:
		return Target{}, fmt.Errorf("target %q: unknown scheme %q (mqtt, mqtts, ws, wss)", redact(s), u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return Target{}, fmt.Errorf("target %q: want host:port after %s://", redact(s), u.Scheme)
	}
	t := Target{Kind: Remote}
	if u.User != nil {
		t.Username = u.User.Username()
		t.Password, _ = u.User.Password()
		u.User = nil
	}
	t.URL = u.String()
	t.Spec = t.URL
	return t, nil
}

// redact hides the password of a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// String returns the target as it was given, without a password.
func (t Target) String() string { return t.Spec }

// Start brings the target up: starts the embedded broker, mosquitto or the container, or, for a
// remote broker, checks that its address accepts connections. ctx bounds the start-up.
func (t Target) Start(ctx context.Context) (Running, error) {
	switch t.Kind {
	case Embedded:
		return startEmbedded(ctx, t)
	case Mosquitto:
		return startMosquitto(ctx, t)
	case Image:
		return startImage(ctx, t)
	case Remote:
		return startRemote(ctx, t)
	}
	return nil, fmt.Errorf("target: kind %q: use Parse to make a target", t.Kind)
}
