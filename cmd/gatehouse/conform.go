package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
)

func init() { register(newConformCmd) }

// conformFlags are the options of gatehouse conform.
type conformFlags struct {
	target      string
	protocol    string
	labelFilter string
	reportDir   string
	username    string
	password    string
	caFile      string
	certFile    string
	keyFile     string
	insecure    bool
	timeout     time.Duration
	window      time.Duration
	without     []string
	wsURL       string
	deniedTopic string
	seed        int64
	verbose     bool
	noColor     bool
}

func newConformCmd() *cobra.Command {
	var f conformFlags
	cmd := &cobra.Command{
		Use:   "conform",
		Short: "Check a broker against the MQTT 3.1.1 and 5.0 normative statements",
		Long: `conform runs the broker conformance suite: checks traced to the normative statements of
MQTT 3.1.1 and 5.0, each labelled with the statement IDs it checks. It exits 0 only when every
MUST check holds; SHOULD deviations are warnings, and optional features the broker does not offer
are reported as not supported. The reports (HTML with the statement coverage matrix, JUnit XML,
the JSON record, statements.json with the evidence of every statement) go to --report-dir.

Targets: ` + target.Usage + `

Examples:
  gatehouse conform --target embedded --report-dir gatehouse-report/conformance
  gatehouse conform --target mosquitto --protocol 3.1.1 --label-filter 'MQTT-3.3.1-4 || MQTT-3.1.2-24'
  gatehouse conform --target mqtts://broker.example:8883 --ca-file ca.pem --username gate --password s3cret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConform(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", "embedded", "broker under test: "+target.Usage)
	fl.StringVar(&f.protocol, "protocol", "all", "MQTT version whose checks run: 3.1.1, 5.0 or all")
	fl.StringVar(&f.labelFilter, "label-filter", "", "Ginkgo label expression selecting checks, e.g. 'MQTT-3.3.1-4 || must'")
	fl.StringVar(&f.reportDir, "report-dir", "", "directory for report.html, junit.xml, the JSON record and statements.json (none when empty)")
	fl.StringVar(&f.username, "username", "", "user name the checks' clients present")
	fl.StringVar(&f.password, "password", "", "password the checks' clients present")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of the CAs that sign the broker's certificate (mqtts://, wss://)")
	fl.StringVar(&f.certFile, "cert-file", "", "client certificate (PEM) for brokers that require one")
	fl.StringVar(&f.keyFile, "key-file", "", "key of the client certificate (PEM)")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the broker's certificate (test brokers only)")
	fl.DurationVar(&f.timeout, "timeout", suite.DefaultTimeout, "deadline of each expectation a conforming broker meets at once")
	fl.DurationVar(&f.window, "window", suite.DefaultWindow, "how long a check watches for a packet that must not arrive")
	fl.StringSliceVar(&f.without, "without", nil, "features to treat as not offered (repeatable): "+features())
	fl.StringVar(&f.wsURL, "websocket-url", "", "a WebSocket listener of the same broker, for the WebSocket checks (ws://host:port/mqtt)")
	fl.StringVar(&f.deniedTopic, "denied-topic", "", "a topic the broker's access control denies to the checks' clients, for the authorization checks")
	fl.Int64Var(&f.seed, "seed", 0, "order of the checks (0: from the clock); the report records it")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every check as it runs")
	fl.BoolVar(&f.noColor, "no-color", false, "no colours in the console output")
	return cmd
}

func features() string {
	names := make([]string, 0, len(suite.AllFeatures()))
	for _, f := range suite.AllFeatures() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// usageError is a bad flag value: exit code 2, like cobra's own flag errors.
func usageError(err error) error { return &exitError{code: 2, err: err} }

func runConform(cmd *cobra.Command, f conformFlags) error {
	var versions []string
	switch f.protocol {
	case "all", "":
		versions = spec.Versions()
	case spec.Version311, "3", "311":
		versions = []string{spec.Version311}
	case spec.Version5, "5":
		versions = []string{spec.Version5}
	default:
		return usageError(fmt.Errorf("--protocol %q: want 3.1.1, 5.0 or all", f.protocol))
	}
	tg, err := target.Parse(f.target)
	if err != nil {
		return usageError(fmt.Errorf("--target: %w", err))
	}
	if f.username != "" || f.password != "" {
		tg.Username, tg.Password = f.username, f.password
	}
	tg.TLS = target.TLSOptions{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, Insecure: f.insecure}
	cfg := suite.Config{
		Versions: versions, LabelFilter: f.labelFilter, Timeout: f.timeout, Window: f.window,
		WebSocketURL: f.wsURL, DeniedTopic: f.deniedTopic, Seed: f.seed, Verbose: f.verbose, NoColor: f.noColor,
	}
	for _, w := range f.without {
		feat, err := suite.ParseFeature(strings.TrimSpace(w))
		if err != nil {
			return usageError(fmt.Errorf("--without: %w", err))
		}
		cfg.Without = append(cfg.Without, feat)
	}
	if f.timeout <= 0 || f.window <= 0 {
		return usageError(errors.New("--timeout and --window must be positive"))
	}

	conformance.Prepare(&tg, &cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "gatehouse conform: starting target %s\n", tg)
	running, err := tg.Start(ctx)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = running.Stop(sctx)
	}()
	cfg.Target = running
	res, err := conformance.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	for _, l := range res.Summary() {
		fmt.Fprintln(out, l)
	}
	if f.reportDir != "" {
		ver, _ := buildInfo()
		paths, err := res.WriteReports(f.reportDir, "gatehouse conform", ver)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "reports: %s, %s, %s\n", paths.HTML, paths.JUnit, paths.Statements)
	}
	if res.Failed() {
		return &exitError{code: 1, err: errors.New("conform: at least one MUST check failed")}
	}
	return nil
}
