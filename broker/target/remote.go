package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// remote is a broker that was already running.
type remote struct {
	url, addr  string
	tls        *tls.Config
	user, pass string
	hasCreds   bool
}

func startRemote(ctx context.Context, t Target) (Running, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Spec, err)
	}
	r := &remote{url: t.URL, addr: u.Host, user: t.Username, pass: t.Password, hasCreds: t.Username != "" || t.Password != ""}
	switch strings.ToLower(u.Scheme) {
	case "mqtts", "ssl", "tls", "wss":
		if r.tls, err = t.TLS.Config(); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Spec, err)
		}
	default:
		if !t.TLS.empty() {
			return nil, fmt.Errorf("target %s: TLS options given for a plain %s:// URL (use mqtts:// or wss://)", t.Spec, u.Scheme)
		}
	}
	// Only check that something listens; the caller's clients speak MQTT to it.
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, fmt.Errorf("target %s: the broker does not accept connections: %w", t.Spec, err)
	}
	_ = c.Close()
	return r, nil
}

func (r *remote) Name() string                        { return r.url }
func (r *remote) Addr() string                        { return r.addr }
func (r *remote) URL() string                         { return r.url }
func (r *remote) TLSConfig() *tls.Config              { return r.tls }
func (r *remote) Credentials() (string, string, bool) { return r.user, r.pass, r.hasCreds }
func (r *remote) Stop(context.Context) error          { return nil }
