package device

import (
	"fmt"
	"net/url"
	"time"
)

// Config is what every device kind shares. Zero values take the defaults written beside each
// field. Kind-specific settings live in the kind's package.
type Config struct {
	ID     string // required
	Site   string // default "site-1"
	Prefix string // topic prefix template, default "acs/{site}"

	// Broker is the broker URL: tcp://host:port or mqtt://host:port. Empty requires a Publisher
	// option (a device without a network, for tests and benches).
	Broker   string
	Username string
	Password string
	ClientID string // default: ID

	Keepalive time.Duration // default 30s
	// Telemetry is the period of telemetry messages: default 10s, negative disables them.
	Telemetry time.Duration
	// CleanSession asks for a clean session at each connection. The default (false) keeps the
	// session, so that QoS 1/2 messages in flight (a billing charge) survive a connection loss.
	CleanSession   bool
	ConnectTimeout time.Duration // default 10s
	ReconnectMin   time.Duration // first reconnect backoff, default 500ms
	ReconnectMax   time.Duration // backoff ceiling, default 30s
	BootTime       time.Duration // from power on (or reboot) to the first connection attempt, default 0 (reboot: 1s)

	Seed     uint64
	Firmware string // default "1.4.2"
	Model    string // default per kind

	AckLatency time.Duration // added to every command ack
	FailRate   float64       // probability that a command is acked "failed", 0..1
	Outbox     int           // QoS 1/2 messages kept while offline, default 256
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Site == "" {
		c.Site = "site-1"
	}
	if c.ClientID == "" {
		c.ClientID = c.ID
	}
	if c.Keepalive == 0 {
		c.Keepalive = 30 * time.Second
	}
	if c.Telemetry == 0 {
		c.Telemetry = 10 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 500 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 30 * time.Second
	}
	if c.Firmware == "" {
		c.Firmware = "1.4.2"
	}
	if c.Outbox == 0 {
		c.Outbox = 256
	}
	return c
}

// Validate names the first problem of a configuration.
func (c Config) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("device id is empty")
	}
	if c.FailRate < 0 || c.FailRate > 1 {
		return fmt.Errorf("device %s: fail_rate %v is outside 0..1", c.ID, c.FailRate)
	}
	if c.Keepalive < 0 || c.Keepalive > 65535*time.Second {
		return fmt.Errorf("device %s: keepalive %s is outside 0..65535s", c.ID, c.Keepalive)
	}
	if c.Broker != "" {
		if _, err := brokerAddr(c.Broker); err != nil {
			return fmt.Errorf("device %s: %w", c.ID, err)
		}
	}
	return nil
}

// brokerAddr turns a broker URL into host:port.
func brokerAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("broker URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	default:
		return "", fmt.Errorf("broker URL %q: scheme %q is not supported by simulated devices (use tcp:// or mqtt://)", raw, u.Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("broker URL %q: want host:port", raw)
	}
	return u.Host, nil
}
