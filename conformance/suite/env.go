package suite

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Feature names an optional capability of a broker. A check that needs one calls c.Require; a
// broker without it gets "not supported" for that check, never a failure.
type Feature string

// The optional features checks can require.
const (
	// FeatureRetain: retained messages (5.0 Retain Available; in 3.1.1 retained messages are
	// mandatory, so only configuration turns them off).
	FeatureRetain Feature = "retain"
	// FeatureQoS1 and FeatureQoS2: the broker accepts and delivers messages of that QoS (5.0
	// Maximum QoS; 3.1.1 lets a broker grant a lower QoS than requested).
	FeatureQoS1 Feature = "qos1"
	FeatureQoS2 Feature = "qos2"
	// FeatureWildcards: subscriptions with + and # (5.0 Wildcard Subscription Available).
	FeatureWildcards Feature = "wildcards"
	// FeatureSharedSubscriptions: $share/ subscriptions (5.0 Shared Subscription Available).
	FeatureSharedSubscriptions Feature = "shared-subscriptions"
	// FeatureSubscriptionIDs: subscription identifiers (5.0 Subscription Identifiers Available).
	FeatureSubscriptionIDs Feature = "subscription-identifiers"
	// FeatureTopicAliases: topic aliases from clients (5.0 Topic Alias Maximum above 0).
	FeatureTopicAliases Feature = "topic-aliases"
	// FeatureWebSocket: a WebSocket listener the suite knows of (Config.WebSocketURL, or the
	// target is reached over WebSocket).
	FeatureWebSocket Feature = "websocket"
	// FeatureACL: a topic the broker's access control denies to the suite's clients
	// (Config.DeniedTopic).
	FeatureACL Feature = "acl"
)

// AllFeatures lists every feature, for --without and documentation.
func AllFeatures() []Feature {
	return []Feature{FeatureRetain, FeatureQoS1, FeatureQoS2, FeatureWildcards, FeatureSharedSubscriptions,
		FeatureSubscriptionIDs, FeatureTopicAliases, FeatureWebSocket, FeatureACL}
}

// ParseFeature checks a feature name given on the command line.
func ParseFeature(s string) (Feature, error) {
	for _, f := range AllFeatures() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(AllFeatures()))
	for _, f := range AllFeatures() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown feature %q (known: %s)", s, strings.Join(names, ", "))
}

// Capabilities is what the broker offers in one protocol version, and where each answer came
// from: announced in a 5.0 CONNACK, given in the configuration, or assumed.
type Capabilities struct {
	// Spoken is false when the broker refused a CONNECT of this version; every check of the
	// version is then not supported.
	Spoken bool
	// Why says why a version is not spoken (the probe's CONNACK or error).
	Why string
	// Has maps each feature to whether the broker offers it.
	Has map[Feature]bool
	// Source maps each feature to where the answer came from.
	Source map[Feature]string
	// Connack is the CONNACK of the 5.0 probe (nil for 3.1.1): Receive Maximum, Topic Alias
	// Maximum, Maximum Packet Size, Server Keep Alive and the rest, for checks that need them.
	Connack *packet.Connack
}

// Env is what every check can read about the broker under test and the run. The runner builds it
// before the checks run; checks reach it through C.Env.
type Env struct {
	// Broker is the target's name ("embedded reference broker", "mosquitto 2.0.11", a URL).
	Broker string
	// URL is what connections dial; TLS configures mqtts:// and wss://.
	URL string
	TLS *tls.Config
	// Username and Password are presented in every CONNECT when HasCredentials is set.
	Username, Password string
	HasCredentials     bool
	// WebSocketURL is a WebSocket listener of the same broker, for the WebSocket checks; empty
	// when there is none.
	WebSocketURL string
	// DeniedTopic is a topic the broker's access control denies to the suite's clients; empty
	// when none is known.
	DeniedTopic string
	// Timeout is the deadline of an expectation that a conforming broker meets at once.
	Timeout time.Duration
	// Window is how long a check watches for a packet that must not arrive.
	Window time.Duration
	// Caps holds the capabilities per version ("3.1.1", "5.0").
	Caps map[string]Capabilities
}

// Has reports whether the broker offers feature f in version v.
func (e *Env) Has(v string, f Feature) bool { return e.Caps[v].Has[f] }

// Defaults of Config.
const (
	DefaultTimeout = 2 * time.Second
	DefaultWindow  = 250 * time.Millisecond
)

// Config says what to run the checks against and how.
type Config struct {
	// Target is the broker under test, already started (see broker/target).
	Target target.Running
	// Versions are the protocol versions whose checks run; default: every catalogued version
	// that has checks.
	Versions []string
	// LabelFilter selects checks with a Ginkgo label expression, e.g. "MQTT-3.3.1-4 || must".
	LabelFilter string
	// Timeout and Window: see Env. Defaults DefaultTimeout and DefaultWindow.
	Timeout time.Duration
	Window  time.Duration
	// Without lists features to treat as not offered whatever the broker says or announces.
	Without []Feature
	// WebSocketURL and DeniedTopic: see Env.
	WebSocketURL string
	DeniedTopic  string
	// Seed orders the checks at random, reproducibly; 0 picks one from the clock.
	Seed int64
	// Verbose prints every check as it runs, not only failures.
	Verbose bool
	// NoColor turns colours off in the console output.
	NoColor bool
	// Shard and Shards split the checks over Shards processes running at once against the same
	// broker: this process runs the checks whose declaration index modulo Shards is Shard
	// (see Merge). Zero Shards runs every check.
	Shard, Shards int
	// Quiet prints nothing while the checks run (a shard's parent reports for it).
	Quiet bool
}

// newEnv builds the environment of a run: connection settings from the target, capabilities from
// the configuration and from probing each version.
func newEnv(ctx context.Context, cfg Config) (*Env, error) {
	if cfg.Target == nil {
		return nil, fmt.Errorf("suite: no target: start one with broker/target first")
	}
	e := &Env{
		Broker:       cfg.Target.Name(),
		URL:          cfg.Target.URL(),
		TLS:          cfg.Target.TLSConfig(),
		WebSocketURL: cfg.WebSocketURL,
		DeniedTopic:  cfg.DeniedTopic,
		Timeout:      cfg.Timeout,
		Window:       cfg.Window,
		Caps:         map[string]Capabilities{},
	}
	e.Username, e.Password, e.HasCredentials = cfg.Target.Credentials()
	if e.Timeout <= 0 {
		e.Timeout = DefaultTimeout
	}
	if e.Window <= 0 {
		e.Window = DefaultWindow
	}
	if e.WebSocketURL == "" {
		switch {
		case strings.HasPrefix(e.URL, "ws://") || strings.HasPrefix(e.URL, "wss://"):
			e.WebSocketURL = e.URL
		default:
			if ep, ok := cfg.Target.(target.Endpoints); ok {
				e.WebSocketURL = ep.Endpoints()[target.TransportWS]
			}
		}
	}
	without := map[Feature]bool{}
	for _, f := range cfg.Without {
		without[f] = true
	}
	for _, v := range cfg.Versions {
		var caps Capabilities
		switch v {
		case spec.Version311:
			caps = e.caps311()
		case spec.Version5:
			caps = e.probe5(ctx)
		default:
			return nil, fmt.Errorf("suite: unknown MQTT version %q (%s)", v, strings.Join(spec.Versions(), ", "))
		}
		for f := range without {
			caps.Has[f] = false
			caps.Source[f] = "turned off in the configuration (--without " + string(f) + ")"
		}
		e.Caps[v] = caps
	}
	return e, nil
}

// configured sets the features that come from the configuration rather than the protocol.
func (e *Env) configured(caps *Capabilities) {
	caps.Has[FeatureWebSocket] = e.WebSocketURL != ""
	caps.Source[FeatureWebSocket] = "configuration (a WebSocket URL is known)"
	if e.WebSocketURL == "" {
		caps.Source[FeatureWebSocket] = "configuration (no WebSocket URL given)"
	}
	caps.Has[FeatureACL] = e.DeniedTopic != ""
	caps.Source[FeatureACL] = "configuration (a denied topic is known)"
	if e.DeniedTopic == "" {
		caps.Source[FeatureACL] = "configuration (no denied topic given)"
	}
}

// caps311 assumes what MQTT 3.1.1 makes mandatory or leaves undeclared: a 3.1.1 broker announces
// nothing, so optional behaviour (a lower granted QoS, refused wildcards) is detected by the
// checks themselves from the SUBACK.
func (e *Env) caps311() Capabilities {
	caps := Capabilities{Spoken: true, Has: map[Feature]bool{}, Source: map[Feature]string{}}
	for _, f := range []Feature{FeatureRetain, FeatureQoS1, FeatureQoS2, FeatureWildcards} {
		caps.Has[f] = true
		caps.Source[f] = "assumed: MQTT 3.1.1 brokers announce no capabilities (checks detect lower grants from SUBACK)"
	}
	for _, f := range []Feature{FeatureSharedSubscriptions, FeatureSubscriptionIDs, FeatureTopicAliases} {
		caps.Has[f] = false
		caps.Source[f] = "not part of MQTT 3.1.1"
	}
	e.configured(&caps)
	return caps
}

// probe5 connects once with MQTT 5.0 and reads what the CONNACK announces.
func (e *Env) probe5(ctx context.Context) Capabilities {
	caps := Capabilities{Has: map[Feature]bool{}, Source: map[Feature]string{}}
	e.configured(&caps)
	ctx, cancel := context.WithTimeout(ctx, e.Timeout+5*time.Second)
	defer cancel()
	conn, err := wire.Dial(ctx, e.URL, wire.Options{Version: packet.V5, Name: "probe", TLS: e.TLS})
	if err != nil {
		caps.Why = "the probe could not connect: " + err.Error()
		return caps
	}
	defer conn.Close()
	p := &packet.Connect{ClientID: "ghprobe" + unique(), CleanStart: true, KeepAlive: 30}
	if e.HasCredentials {
		p.Username, p.UsernameFlag = e.Username, true
		p.Password, p.PasswordFlag = []byte(e.Password), true
	}
	ack, err := conn.Connect(e.Timeout, p)
	switch {
	case err != nil:
		caps.Why = "the broker did not accept an MQTT 5.0 CONNECT: " + err.Error()
		return caps
	case ack.Code != packet.Success:
		caps.Why = fmt.Sprintf("the broker refused an MQTT 5.0 CONNECT with reason code 0x%02X", byte(ack.Code))
		return caps
	}
	_ = conn.Disconnect()
	caps.Spoken, caps.Connack = true, ack
	pr := &ack.Props
	announced := func(f Feature, id packet.PropID, value byte) {
		if pr.Present.Has(id) {
			caps.Has[f] = value == 1
			caps.Source[f] = fmt.Sprintf("announced in CONNACK (%s = %d)", id, value)
			return
		}
		caps.Has[f] = true
		caps.Source[f] = fmt.Sprintf("CONNACK has no %s, which means available", id)
	}
	announced(FeatureRetain, packet.PropRetainAvailable, pr.RetainAvailable)
	announced(FeatureWildcards, packet.PropWildcardSubAvailable, pr.WildcardSubAvailable)
	announced(FeatureSubscriptionIDs, packet.PropSubIDAvailable, pr.SubIDAvailable)
	announced(FeatureSharedSubscriptions, packet.PropSharedSubAvailable, pr.SharedSubAvailable)
	maxQoS := byte(2)
	caps.Source[FeatureQoS1] = "CONNACK has no Maximum QoS, which means QoS 2"
	if pr.Present.Has(packet.PropMaximumQoS) {
		maxQoS = pr.MaximumQoS
		caps.Source[FeatureQoS1] = fmt.Sprintf("announced in CONNACK (Maximum QoS = %d)", maxQoS)
	}
	caps.Source[FeatureQoS2] = caps.Source[FeatureQoS1]
	caps.Has[FeatureQoS1], caps.Has[FeatureQoS2] = maxQoS >= 1, maxQoS >= 2
	caps.Has[FeatureTopicAliases] = pr.TopicAliasMaximum > 0
	caps.Source[FeatureTopicAliases] = fmt.Sprintf("announced in CONNACK (Topic Alias Maximum = %d)", pr.TopicAliasMaximum)
	return caps
}

// Describe lists the capabilities of each version, for reports.
func (e *Env) Describe() []string {
	var out []string
	versions := make([]string, 0, len(e.Caps))
	for v := range e.Caps {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		c := e.Caps[v]
		if !c.Spoken {
			out = append(out, fmt.Sprintf("MQTT %s: not spoken (%s)", v, c.Why))
			continue
		}
		for _, f := range AllFeatures() {
			state := "no"
			if c.Has[f] {
				state = "yes"
			}
			out = append(out, fmt.Sprintf("MQTT %s %s: %s — %s", v, f, state, c.Source[f]))
		}
	}
	return out
}
