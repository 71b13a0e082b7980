// Package conffile reads the reference broker's YAML configuration file. Its keys mirror
// mosquitto.conf's where they mean the same thing (listener, allow_anonymous, password_file,
// acl_file, max_connections, ...), so that an operator who knows mosquitto can read it.
//
// Decoding is strict: an unknown key, a value of the wrong type or a bad value is refused with
// file:line:column and the reason.
package conffile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
)

// File is the configuration file as written. Zero values mean "not set".
type File struct {
	Listeners []ListenerConf `yaml:"listeners"`

	AllowAnonymous *bool  `yaml:"allow_anonymous"`
	PasswordFile   string `yaml:"password_file"`
	ACLFile        string `yaml:"acl_file"`

	MaxConnections      *int    `yaml:"max_connections"`
	MaxPacketSize       *uint32 `yaml:"max_packet_size"`
	MaxInflightMessages *uint16 `yaml:"max_inflight_messages"`
	MaxQueuedMessages   *int    `yaml:"max_queued_messages"`
	MaxKeepalive        *uint16 `yaml:"max_keepalive"`
	MaxTopicAlias       *uint16 `yaml:"max_topic_alias"`
	RetainAvailable     *bool   `yaml:"retain_available"`
	// PersistentClientExpiration caps the expiry of persistent sessions (mosquitto's name), as a
	// Go duration ("1h", "30m").
	PersistentClientExpiration string `yaml:"persistent_client_expiration"`

	Persistence         *bool  `yaml:"persistence"`
	PersistenceLocation string `yaml:"persistence_location"`

	// SysInterval is the $SYS publication period in seconds (mosquitto's sys_interval); 0 = off.
	SysInterval *int `yaml:"sys_interval"`

	ConnectTimeout   string   `yaml:"connect_timeout"`    // Go duration
	Faults           []string `yaml:"faults"`             // NAME or NAME@CLIENTID
	SlowConnackDelay string   `yaml:"slow_connack_delay"` // Go duration
	LogLevel         string   `yaml:"log_level"`          // debug, info, warn, error
	MetricsListen    string   `yaml:"metrics_listen"`     // host:port for /metrics
}

// ListenerConf is one listener (mosquitto: a "listener" block).
type ListenerConf struct {
	Name     string `yaml:"name"`
	Listener string `yaml:"listener"` // host:port
	// Protocol is mqtt (default) or websockets, as in mosquitto.
	Protocol              string `yaml:"protocol"`
	CertFile              string `yaml:"certfile"`
	KeyFile               string `yaml:"keyfile"`
	CAFile                string `yaml:"cafile"`
	RequireCertificate    bool   `yaml:"require_certificate"`
	UseIdentityAsUsername bool   `yaml:"use_identity_as_username"`
	HTTPPath              string `yaml:"http_path"`
}

// Error is a problem at a place in the configuration file.
type Error struct {
	Path   string
	Line   int // 1-based; 0 when unknown
	Column int
	Reason string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Column, e.Reason)
}

// Read decodes the file at path strictly.
func Read(path string) (*File, *Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Doc keeps the parsed document so that later checks can name the place of a bad value.
type Doc struct {
	path string
	file *ast.File
}

// Parse decodes data (read from path) strictly.
func Parse(path string, data []byte) (*File, *Doc, error) {
	doc := &Doc{path: path}
	if f, err := parser.ParseBytes(data, 0); err == nil {
		doc.file = f
	}
	var f File
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, nil, yamlError(path, err)
	}
	return &f, doc, nil
}

// yamlError turns a go-yaml error into an *Error with the token's position and a short reason.
func yamlError(path string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		e := &Error{Path: path, Reason: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
		var uf *yaml.UnknownFieldError
		if errors.As(err, &uf) {
			e.Reason = "unknown key: " + strings.TrimPrefix(uf.Message, "unknown field ")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			e.Reason = "wrong type: " + te.Error()
			if i := strings.LastIndex(e.Reason, "] "); i >= 0 {
				e.Reason = "wrong type: " + e.Reason[i+2:]
			}
		}
		return e
	}
	return &Error{Path: path, Reason: err.Error()}
}

// at returns an *Error located at the node of a YAML path such as "$.listeners[0].listener".
func (d *Doc) at(yamlPath, format string, args ...any) error {
	e := &Error{Path: d.path, Reason: fmt.Sprintf(format, args...)}
	if d.file != nil {
		if p, err := yaml.PathString(yamlPath); err == nil {
			if n, err := p.FilterFile(d.file); err == nil && n != nil {
				// A mapping is reported at its first key rather than at its first ':'.
				switch m := n.(type) {
				case *ast.MappingNode:
					if len(m.Values) > 0 {
						n = m.Values[0].Key
					}
				case *ast.MappingValueNode:
					n = m.Key
				}
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					e.Line, e.Column = tk.Position.Line, tk.Position.Column
				}
			}
		}
	}
	return e
}

// Settings is what the CLI needs besides broker.Config.
type Settings struct {
	LogLevel      string
	MetricsListen string
	DataDir       string
}

// Apply checks every value and writes the file's settings over cfg (which holds the defaults or
// command-line values to be overridden). Paths in the file are taken as they are written.
func (f *File) Apply(d *Doc, cfg *broker.Config, st *Settings) error {
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	for i, l := range f.Listeners {
		base := fmt.Sprintf("$.listeners[%d]", i)
		if l.Listener == "" {
			fail(d.at(base, "listener %d: missing key listener (host:port)", i))
			continue
		}
		if _, _, err := net.SplitHostPort(l.Listener); err != nil {
			fail(d.at(base+".listener", "bad value %q for listener: want host:port", l.Listener))
			continue
		}
		bl := broker.Listener{Name: l.Name, Addr: l.Listener, Kind: broker.TCP, UseIdentityAsUsername: l.UseIdentityAsUsername, WebSocketPath: l.HTTPPath}
		switch l.Protocol {
		case "", "mqtt":
		case "websockets":
			bl.Kind = broker.WebSocket
		default:
			fail(d.at(base+".protocol", "bad value %q for protocol: want mqtt or websockets", l.Protocol))
		}
		if l.CertFile != "" || l.KeyFile != "" {
			tc, err := TLSConfig(l.CertFile, l.KeyFile, l.CAFile, l.RequireCertificate)
			if err != nil {
				fail(d.at(base, "listener %d: %v", i, err))
				continue
			}
			bl.TLS = tc
			if bl.Kind == broker.TCP {
				bl.Kind = broker.TLS
			}
		} else if l.CAFile != "" || l.RequireCertificate || l.UseIdentityAsUsername {
			fail(d.at(base, "listener %d: cafile, require_certificate and use_identity_as_username need certfile and keyfile", i))
		}
		cfg.Listeners = append(cfg.Listeners, bl)
	}
	if f.AllowAnonymous != nil {
		cfg.AllowAnonymous = *f.AllowAnonymous
	}
	if f.PasswordFile != "" {
		pf, err := auth.LoadPasswordFile(f.PasswordFile)
		if err != nil {
			fail(d.at("$.password_file", "password_file: %v", err))
		} else {
			cfg.Authenticator = pf
		}
	}
	if f.ACLFile != "" {
		acl, err := auth.LoadACLFile(f.ACLFile)
		if err != nil {
			fail(d.at("$.acl_file", "acl_file: %v", err))
		} else {
			cfg.ACL = acl
		}
	}
	if v := f.MaxConnections; v != nil {
		if *v < 0 {
			fail(d.at("$.max_connections", "bad value %d for max_connections: want 0 (unlimited) or more", *v))
		}
		cfg.MaxConnections = *v
	}
	if v := f.MaxPacketSize; v != nil {
		if *v != 0 && *v < 16 {
			fail(d.at("$.max_packet_size", "bad value %d for max_packet_size: want 0 (protocol maximum) or at least 16", *v))
		}
		cfg.MaxPacketSize = *v
	}
	if v := f.MaxInflightMessages; v != nil {
		if *v == 0 {
			fail(d.at("$.max_inflight_messages", "bad value 0 for max_inflight_messages: want 1 to 65535"))
		}
		cfg.MaxInflight = *v
	}
	if v := f.MaxQueuedMessages; v != nil {
		if *v <= 0 {
			fail(d.at("$.max_queued_messages", "bad value %d for max_queued_messages: want 1 or more", *v))
		}
		cfg.MaxQueued = *v
	}
	if v := f.MaxKeepalive; v != nil {
		cfg.MaxKeepAlive = *v
	}
	if v := f.MaxTopicAlias; v != nil {
		cfg.TopicAliasMaximum = *v
		cfg.NoTopicAliases = *v == 0
	}
	if v := f.RetainAvailable; v != nil {
		cfg.RetainUnavailable = !*v
	}
	if s := f.PersistentClientExpiration; s != "" {
		dur, err := time.ParseDuration(s)
		if err != nil || dur <= 0 {
			fail(d.at("$.persistent_client_expiration", "bad value %q for persistent_client_expiration: want a duration such as 1h", s))
		} else {
			cfg.MaxSessionExpiry = uint32(min(dur/time.Second, 0xFFFFFFFE))
		}
	}
	if f.Persistence != nil && *f.Persistence {
		if f.PersistenceLocation == "" {
			fail(d.at("$.persistence", "persistence: true needs persistence_location (a directory)"))
		}
		st.DataDir = f.PersistenceLocation
	}
	if v := f.SysInterval; v != nil {
		if *v < 0 {
			fail(d.at("$.sys_interval", "bad value %d for sys_interval: want seconds, 0 = off", *v))
		}
		cfg.SysInterval = time.Duration(*v) * time.Second
	}
	if s := f.ConnectTimeout; s != "" {
		dur, err := time.ParseDuration(s)
		if err != nil || dur <= 0 {
			fail(d.at("$.connect_timeout", "bad value %q for connect_timeout: want a duration such as 10s", s))
		}
		cfg.ConnectTimeout = dur
	}
	if s := f.SlowConnackDelay; s != "" {
		dur, err := time.ParseDuration(s)
		if err != nil || dur < 0 {
			fail(d.at("$.slow_connack_delay", "bad value %q for slow_connack_delay: want a duration such as 2s", s))
		}
		cfg.SlowConnackDelay = dur
	}
	for i, s := range f.Faults {
		r, err := broker.ParseFault(s)
		if err != nil {
			fail(d.at(fmt.Sprintf("$.faults[%d]", i), "bad value for faults: %v", err))
			continue
		}
		cfg.Faults = append(cfg.Faults, r)
	}
	switch f.LogLevel {
	case "":
	case "debug", "info", "warn", "error":
		st.LogLevel = f.LogLevel
	default:
		fail(d.at("$.log_level", "bad value %q for log_level: want debug, info, warn or error", f.LogLevel))
	}
	if f.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(f.MetricsListen); err != nil {
			fail(d.at("$.metrics_listen", "bad value %q for metrics_listen: want host:port", f.MetricsListen))
		}
		st.MetricsListen = f.MetricsListen
	}
	return errors.Join(errs...)
}

// TLSConfig builds a server TLS configuration from PEM files: a certificate and key, and
// optionally a CA that verifies client certificates (required when requireCert).
func TLSConfig(certFile, keyFile, caFile string, requireCert bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both certfile and keyfile")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certfile/keyfile: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cafile %s: no PEM certificate in it", caFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if requireCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if requireCert {
		return nil, errors.New("require_certificate needs cafile")
	}
	return tc, nil
}
