package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	parallel    int
	// shard and resultFile make the process one shard of a parallel run (set by the parent).
	shard      string
	resultFile string
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
	fl.IntVar(&f.parallel, "parallel", defaultParallel, "processes running the checks at once against the one broker (1: in this process, with live output)")
	fl.StringVar(&f.shard, "shard", "", "run shard I/N of the checks and write the result to --result-file (used by --parallel)")
	fl.StringVar(&f.resultFile, "result-file", "", "where a shard writes its result (used by --parallel)")
	_ = fl.MarkHidden("shard")
	_ = fl.MarkHidden("result-file")
	return cmd
}

// defaultParallel: the checks mostly wait on the broker, so a few processes share two cores well.
const defaultParallel = 4

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
	if err := suite.CheckLabelFilter(f.labelFilter); err != nil {
		return usageError(fmt.Errorf("--label-filter: %w", err))
	}
	if f.parallel < 1 {
		return usageError(fmt.Errorf("--parallel %d: want 1 or more", f.parallel))
	}
	if f.shard != "" {
		return runShard(cmd, f, tg, cfg)
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
	var res *suite.Result
	if f.parallel > 1 {
		res, err = runParallel(ctx, cmd, f, running, cfg)
	} else {
		res, err = conformance.Run(ctx, cfg)
	}
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

// runParallel runs the checks in f.parallel child processes of this binary, each a shard of the
// checks, all against the broker this process started, and merges their results. The broker
// under test is shared, which the checks are written for: each uses its own client identifiers
// and topics.
func runParallel(ctx context.Context, cmd *cobra.Command, f conformFlags, running target.Running, cfg suite.Config) (*suite.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("conform: find this program to run its shards: %w", err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-conform-")
	if err != nil {
		return nil, fmt.Errorf("conform: %w", err)
	}
	defer os.RemoveAll(dir)
	if ep, ok := running.(target.Endpoints); ok && cfg.WebSocketURL == "" {
		// The shards reach the broker by URL only; tell them of its WebSocket listener too.
		cfg.WebSocketURL = ep.Endpoints()[target.TransportWS]
	}
	seed := f.seed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	fmt.Fprintf(cmd.OutOrStdout(), "running the checks in %d processes against %s (seed %d)\n", f.parallel, running.URL(), seed)
	type shard struct {
		out  bytes.Buffer
		file string
		err  error
	}
	shards := make([]*shard, f.parallel)
	var wg sync.WaitGroup
	for i := range shards {
		s := &shard{file: filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))}
		shards[i] = s
		args := []string{"conform", "--target", running.URL(), "--shard", fmt.Sprintf("%d/%d", i, f.parallel),
			"--result-file", s.file, "--protocol", f.protocol, "--timeout", f.timeout.String(), "--window", f.window.String(),
			"--seed", strconv.FormatInt(seed, 10), "--no-color"}
		if f.labelFilter != "" {
			args = append(args, "--label-filter", f.labelFilter)
		}
		for _, w := range f.without {
			args = append(args, "--without", w)
		}
		if cfg.WebSocketURL != "" {
			args = append(args, "--websocket-url", cfg.WebSocketURL)
		}
		if cfg.DeniedTopic != "" {
			args = append(args, "--denied-topic", cfg.DeniedTopic)
		}
		for flag, v := range map[string]string{"--ca-file": f.caFile, "--cert-file": f.certFile, "--key-file": f.keyFile} {
			if v != "" {
				args = append(args, flag, v)
			}
		}
		if f.insecure {
			args = append(args, "--insecure")
		}
		c := exec.CommandContext(ctx, exe, args...)
		c.Stdout, c.Stderr = &s.out, &s.out
		c.Env = os.Environ()
		if u, p, ok := running.Credentials(); ok {
			// Credentials go through the environment, not the command line other users can read.
			c.Env = append(c.Env, shardUserEnv+"="+u, shardPasswordEnv+"="+p)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.err = c.Run()
		}()
	}
	wg.Wait()
	parts := make([]*suite.Result, 0, len(shards))
	for i, s := range shards {
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("conform: shard %d/%d gave no result (%v): %w\n%s", i, f.parallel, s.err, err, s.out.String())
		}
		var r suite.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("conform: shard %d/%d: %w", i, f.parallel, err)
		}
		parts = append(parts, &r)
	}
	res, err := suite.Merge(parts...)
	if err != nil {
		return nil, fmt.Errorf("conform: %w", err)
	}
	res.Broker = running.Name()
	printFailures(cmd.OutOrStdout(), res)
	return res, nil
}

// Credentials handed to shards.
const (
	shardUserEnv     = "GATEHOUSE_CONFORM_USERNAME"
	shardPasswordEnv = "GATEHOUSE_CONFORM_PASSWORD"
)

// runShard is a shard of a parallel run: the checks of shard I/N against the parent's broker,
// written as JSON to --result-file.
func runShard(cmd *cobra.Command, f conformFlags, tg target.Target, cfg suite.Config) error {
	var err error
	if _, err = fmt.Sscanf(f.shard, "%d/%d", &cfg.Shard, &cfg.Shards); err != nil || f.resultFile == "" {
		return usageError(fmt.Errorf("--shard %q: want I/N with --result-file", f.shard))
	}
	if u, ok := os.LookupEnv(shardUserEnv); ok {
		tg.Username, tg.Password = u, os.Getenv(shardPasswordEnv)
	}
	cfg.Quiet = true
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Target, err = tg.Start(ctx); err != nil {
		return err
	}
	res, err := conformance.Run(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("conform: shard result: %w", err)
	}
	if err := os.WriteFile(f.resultFile, b, 0o600); err != nil {
		return fmt.Errorf("conform: shard result: %w", err)
	}
	return nil
}

// printFailures prints what a parallel run's shards did not show: each failed or warned check
// with its message and packet trace.
func printFailures(w io.Writer, res *suite.Result) {
	for _, c := range res.Checks {
		if c.Verdict != suite.Fail && c.Verdict != suite.Warn {
			continue
		}
		fmt.Fprintf(w, "\n%s %s\n  %s\n  %s\n", strings.ToUpper(string(c.Verdict)), c.Name, c.Location, c.Message)
		for _, l := range c.Trace {
			fmt.Fprintln(w, "    "+l)
		}
	}
}
