package conffile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/conffile"
)

func load(t *testing.T, text string) (broker.Config, conffile.Settings, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg broker.Config
	var st conffile.Settings
	f, doc, err := conffile.Read(path)
	if err != nil {
		return cfg, st, err
	}
	return cfg, st, f.Apply(doc, &cfg, &st)
}

func TestGoodFile(t *testing.T) {
	cfg, st, err := load(t, `# reference broker for the bench
listeners:
  - listener: 127.0.0.1:0
  - name: ws
    listener: 127.0.0.1:0
    protocol: websockets
allow_anonymous: true
max_connections: 500
max_packet_size: 65536
max_inflight_messages: 20
max_queued_messages: 200
max_keepalive: 120
retain_available: false
sys_interval: 10
connect_timeout: 3s
faults: [drop-puback@gate-01, no-will]
log_level: debug
metrics_listen: 127.0.0.1:9100
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || cfg.Listeners[1].Kind != broker.WebSocket || cfg.Listeners[1].Name != "ws" {
		t.Errorf("listeners: %+v", cfg.Listeners)
	}
	if !cfg.AllowAnonymous || cfg.MaxConnections != 500 || cfg.MaxPacketSize != 65536 || cfg.MaxInflight != 20 ||
		cfg.MaxQueued != 200 || cfg.MaxKeepAlive != 120 || !cfg.RetainUnavailable || cfg.SysInterval != 10*time.Second ||
		cfg.ConnectTimeout != 3*time.Second {
		t.Errorf("config: %+v", cfg)
	}
	want := []broker.FaultRule{{Fault: broker.FaultDropPuback, ClientID: "gate-01"}, {Fault: broker.FaultNoWill}}
	if len(cfg.Faults) != 2 || cfg.Faults[0] != want[0] || cfg.Faults[1] != want[1] {
		t.Errorf("faults: %+v", cfg.Faults)
	}
	if st.LogLevel != "debug" || st.MetricsListen != "127.0.0.1:9100" {
		t.Errorf("settings: %+v", st)
	}
	if _, err := broker.New(cfg); err != nil {
		t.Errorf("broker.New refuses the loaded config: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := []struct {
		name, text string
		line, col  int
		reason     string
	}{
		{"unknown key", "allow_anonymous: true\nmax_conections: 5\n", 2, 1, "unknown key"},
		{"unknown listener key", "listeners:\n  - listener: 127.0.0.1:1883\n    port: 1883\n", 3, 5, "unknown key"},
		{"wrong type", "max_connections: lots\n", 1, 18, "wrong type"},
		{"wrong type bool", "allow_anonymous: maybe\n", 1, 18, "wrong type"},
		{"negative", "max_connections: -3\n", 1, 18, "bad value -3 for max_connections"},
		{"bad listener", "listeners:\n  - listener: localhost\n", 2, 15, "bad value \"localhost\" for listener"},
		{"bad protocol", "listeners:\n  - listener: 127.0.0.1:1\n    protocol: quic\n", 3, 15, "bad value \"quic\" for protocol"},
		{"bad fault", "faults:\n  - drop-everything\n", 2, 5, "unknown fault mode \"drop-everything\""},
		{"bad duration", "connect_timeout: soon\n", 1, 18, "bad value \"soon\" for connect_timeout"},
		{"bad log level", "log_level: loud\n", 1, 12, "bad value \"loud\" for log_level"},
		{"zero inflight", "max_inflight_messages: 0\n", 1, 24, "max_inflight_messages"},
		{"missing password file", "password_file: /nonexistent/passwd\n", 1, 16, "password_file"},
		{"tls without key", "listeners:\n  - listener: 127.0.0.1:1\n    certfile: a.pem\n", 2, 5, "certfile and keyfile"},
		{"persistence without location", "persistence: true\n", 1, 14, "persistence_location"},
		{"syntax", "listeners: [\n", 1, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(t, tc.text)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *conffile.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *conffile.Error", err)
			}
			if !strings.HasSuffix(ce.Path, "broker.yaml") {
				t.Errorf("path %q", ce.Path)
			}
			if ce.Line != tc.line || (tc.col != 0 && ce.Column != tc.col) {
				t.Errorf("at %d:%d, want %d:%d (%v)", ce.Line, ce.Column, tc.line, tc.col, err)
			}
			if !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", ce.Reason, tc.reason)
			}
			if !strings.Contains(err.Error(), "broker.yaml:") {
				t.Errorf("message %q does not start with file:line:column", err)
			}
		})
	}
}

// TestExampleFixture keeps the example in fixtures/broker valid.
func TestExampleFixture(t *testing.T) {
	f, doc, err := conffile.Read("../../fixtures/broker/broker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg broker.Config
	var st conffile.Settings
	if err := f.Apply(doc, &cfg, &st); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || !cfg.AllowAnonymous || cfg.SysInterval != 10*time.Second {
		t.Errorf("config: %+v", cfg)
	}
	if _, err := broker.New(cfg); err != nil {
		t.Error(err)
	}
}
