package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/conffile"
	metricsendpoint "github.com/gatehouse-iot/gatehouse/broker/metrics"
	"github.com/gatehouse-iot/gatehouse/broker/session/boltstore"
)

func init() { register(newBrokerCmd) }

type brokerFlags struct {
	config         string
	listen         []string
	wsListen       []string
	tlsListen      []string
	tlsCert        string
	tlsKey         string
	tlsClientCA    string
	requireCert    bool
	identityAsUser bool
	allowAnonymous bool
	passwordFile   string
	aclFile        string
	metricsListen  string
	faults         []string
	logLevel       string
	dataDir        string
	maxConnections int
	maxPacketSize  uint32
	sysInterval    time.Duration
}

func newBrokerCmd() *cobra.Command {
	var f brokerFlags
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the reference MQTT broker (3.1, 3.1.1, 5.0) with optional fault modes",
		Long: `Run Gatehouse's reference MQTT broker: MQTT 3.1, 3.1.1 and 5.0 over TCP, TLS and WebSocket,
strict about the specification, with named fault modes for conformance and certification runs.

Settings come from --config (YAML whose keys mirror mosquitto.conf: listeners, allow_anonymous,
password_file, acl_file, max_connections, max_packet_size, max_inflight_messages,
max_queued_messages, max_keepalive, retain_available, sys_interval, faults, ...), then from flags,
which override the file. Without any listener the broker listens on :1883.

Fault modes (--fault NAME or NAME@CLIENTID, repeatable):
  ` + faultList() + `

The broker prints one "listening <name> <kind> <address>" line per listener on standard output
and runs until interrupted (SIGINT, SIGTERM), then disconnects every client and exits.`,
		Example: `  gatehouse broker --listen 127.0.0.1:1883 --allow-anonymous
  gatehouse broker --config broker.yaml --fault drop-puback@gate-01
  gatehouse broker --tls-listen :8883 --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBroker(ctx, cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML configuration `FILE` (keys as in mosquitto.conf)")
	fl.StringArrayVar(&f.listen, "listen", nil, "TCP listener `ADDR` (host:port, repeatable; :0 picks a free port)")
	fl.StringArrayVar(&f.wsListen, "ws-listen", nil, "WebSocket listener `ADDR` (subprotocol mqtt, repeatable)")
	fl.StringArrayVar(&f.tlsListen, "tls-listen", nil, "TLS listener `ADDR` (repeatable; needs --tls-cert and --tls-key)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "server certificate PEM `FILE` for TLS listeners")
	fl.StringVar(&f.tlsKey, "tls-key", "", "server private key PEM `FILE` for TLS listeners")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca", "", "CA PEM `FILE` that verifies client certificates (mTLS)")
	fl.BoolVar(&f.requireCert, "tls-require-cert", false, "refuse TLS clients without a certificate signed by --tls-client-ca")
	fl.BoolVar(&f.identityAsUser, "use-identity-as-username", false, "take the client certificate's CN as the user name on TLS listeners")
	fl.BoolVar(&f.allowAnonymous, "allow-anonymous", false, "admit clients that send no user name")
	fl.StringVar(&f.passwordFile, "password-file", "", "password `FILE` in mosquitto_passwd format (see gatehouse passwd)")
	fl.StringVar(&f.aclFile, "acl-file", "", "ACL `FILE` in mosquitto acl_file format")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://`ADDR`/metrics")
	fl.StringArrayVar(&f.faults, "fault", nil, "turn a fault mode on: `NAME[@CLIENTID]` (repeatable, see above)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error (logs go to standard error)")
	fl.StringVar(&f.dataDir, "data-dir", "", "keep sessions and retained messages in `DIR` across restarts")
	fl.IntVar(&f.maxConnections, "max-connections", 0, "most open connections, 0 = unlimited")
	fl.Uint32Var(&f.maxPacketSize, "max-packet-size", 0, "largest packet accepted from a client in bytes, 0 = protocol maximum")
	fl.DurationVar(&f.sysInterval, "sys-interval", 0, "publish $SYS/broker/... topics at this interval, 0 = off")
	return cmd
}

// faultList lists the fault modes, wrapped for --help.
func faultList() string {
	var sb strings.Builder
	line := 0
	for i, f := range broker.Faults() {
		if i > 0 {
			sb.WriteString(",")
			line++
			if line+len(f) > 88 {
				sb.WriteString("\n  ")
				line = 0
			} else {
				sb.WriteString(" ")
			}
		}
		sb.WriteString(string(f))
		line += len(f)
	}
	return sb.String()
}

func runBroker(ctx context.Context, cmd *cobra.Command, f *brokerFlags) error {
	var cfg broker.Config
	var st conffile.Settings
	if f.config != "" {
		file, doc, err := conffile.Read(f.config)
		if err != nil {
			return err
		}
		if err := file.Apply(doc, &cfg, &st); err != nil {
			return err
		}
	}
	fl := cmd.Flags()
	for _, a := range f.listen {
		cfg.Listeners = append(cfg.Listeners, broker.Listener{Kind: broker.TCP, Addr: a})
	}
	for _, a := range f.wsListen {
		cfg.Listeners = append(cfg.Listeners, broker.Listener{Kind: broker.WebSocket, Addr: a})
	}
	if len(f.tlsListen) > 0 {
		tc, err := conffile.TLSConfig(f.tlsCert, f.tlsKey, f.tlsClientCA, f.requireCert)
		if err != nil {
			return fmt.Errorf("--tls-listen: %w", err)
		}
		for _, a := range f.tlsListen {
			cfg.Listeners = append(cfg.Listeners, broker.Listener{Kind: broker.TLS, Addr: a, TLS: tc, UseIdentityAsUsername: f.identityAsUser})
		}
	}
	if fl.Changed("allow-anonymous") {
		cfg.AllowAnonymous = f.allowAnonymous
	}
	if f.passwordFile != "" {
		pf, err := auth.LoadPasswordFile(f.passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		cfg.Authenticator = pf
	}
	if f.aclFile != "" {
		acl, err := auth.LoadACLFile(f.aclFile)
		if err != nil {
			return fmt.Errorf("--acl-file: %w", err)
		}
		cfg.ACL = acl
	}
	for _, s := range f.faults {
		r, err := broker.ParseFault(s)
		if err != nil {
			return fmt.Errorf("--fault: %w", err)
		}
		cfg.Faults = append(cfg.Faults, r)
	}
	if fl.Changed("max-connections") {
		cfg.MaxConnections = f.maxConnections
	}
	if fl.Changed("max-packet-size") {
		cfg.MaxPacketSize = f.maxPacketSize
	}
	if fl.Changed("sys-interval") {
		cfg.SysInterval = f.sysInterval
	}
	if fl.Changed("metrics-listen") {
		st.MetricsListen = f.metricsListen
	}
	if fl.Changed("log-level") || st.LogLevel == "" {
		st.LogLevel = f.logLevel
	}
	if f.dataDir != "" {
		st.DataDir = f.dataDir
	}
	if st.DataDir != "" {
		store, err := boltstore.OpenDir(st.DataDir, boltstore.Options{})
		if err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		// Closed after Shutdown: every change acknowledged to a client is already on disk.
		defer store.Close()
		cfg.Store = store
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(st.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", st.LogLevel)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, l := range effectiveListeners(cfg) {
		if a := b.Addr(l.Name); a != nil {
			fmt.Fprintf(out, "listening %s %s %s\n", l.Name, l.Kind, a)
		}
	}
	var metrics *http.Server
	if st.MetricsListen != "" {
		ln, err := net.Listen("tcp", st.MetricsListen)
		if err != nil {
			_ = b.Shutdown(context.Background())
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsendpoint.Handler(b))
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = metrics.Serve(ln) }()
		fmt.Fprintf(out, "metrics http://%s/metrics\n", ln.Addr())
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if metrics != nil {
		_ = metrics.Shutdown(sctx)
	}
	return b.Shutdown(sctx)
}

// effectiveListeners mirrors the naming broker.New applies, so that addresses can be printed.
func effectiveListeners(cfg broker.Config) []broker.Listener {
	ls := cfg.Listeners
	if len(ls) == 0 {
		return []broker.Listener{{Name: "tcp", Kind: broker.TCP}}
	}
	out := make([]broker.Listener, len(ls))
	counts := map[broker.ListenerKind]int{}
	for i, l := range ls {
		if l.Kind == "" {
			l.Kind = broker.TCP
		}
		counts[l.Kind]++
		if l.Name == "" {
			l.Name = string(l.Kind)
			if n := counts[l.Kind]; n > 1 {
				l.Name = fmt.Sprintf("%s%d", l.Kind, n)
			}
		}
		out[i] = l
	}
	return out
}
