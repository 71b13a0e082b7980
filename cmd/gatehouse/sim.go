package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
)

func init() { register(newSimCmd) }

// defaultFleet runs when no fleet file is given: one site's entrance.
var defaultFleet = fleet.Spec{Seed: 1, Groups: []fleet.Group{
	{Kind: "gate", Count: 1, ID: "gate-in-{n:02}", Role: "entry"},
	{Kind: "gate", Count: 1, ID: "gate-out-{n:02}", Role: "exit"},
	{Kind: "turnstile", Count: 4},
	{Kind: "camera", Count: 2},
}}

func newSimCmd() *cobra.Command {
	var (
		fleetFile, brokerURL, shard, username, password, record string
		statsEvery, startTimeout                                time.Duration
		seed                                                    uint64
		connectRate                                             float64
		verbose                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a long-lived simulated fleet of gates, turnstiles and cameras against a broker",
		Long: `Run a simulated fleet against a broker until interrupted (Ctrl-C or SIGTERM stops it
cleanly: each device publishes its offline status and sends DISCONNECT, then the command exits 0).

The fleet file is YAML:

  broker: tcp://127.0.0.1:1883   # or --broker
  seed: 42
  connect_rate: 200/s            # new connections per second at start (absent: unlimited)
  groups:
    - {kind: gate, count: 2, id: "gate-{n:02}", role: exit, keepalive: 30s, telemetry: 10s}
    - {kind: turnstile, count: 20, pass_window: 5s}
    - {kind: camera, count: 2, snapshot_size: 65536}

Without --fleet a small default fleet runs (two gates, four turnstiles, two cameras).
--shard I/N runs every N-th device starting at the I-th (0-based), so that N processes share one
fleet (for example the pods of a Kubernetes Indexed Job: args ["--shard", "$(JOB_COMPLETION_INDEX)/4"]).
--record FILE writes the shard's devices and counters as JSON on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := defaultFleet
			if fleetFile != "" {
				var err error
				if spec, err = loadFleet(fleetFile); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			flags := cmd.Flags()
			if flags.Changed("broker") {
				spec.Broker = brokerURL
			}
			if flags.Changed("username") {
				spec.Username = username
			}
			if flags.Changed("password") {
				spec.Password = password
			}
			if flags.Changed("seed") {
				spec.Seed = seed
			}
			if flags.Changed("connect-rate") {
				spec.ConnectRate = connectRate
			}
			if spec.Broker == "" {
				return &exitError{code: 2, err: errors.New("sim: no broker: give --broker URL or broker: in the fleet file")}
			}
			si, sn, err := parseShard(shard)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSim(ctx, cmd.OutOrStdout(), log, spec, si, sn, statsEvery, startTimeout, record)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fleetFile, "fleet", "", "fleet file (YAML)")
	f.StringVar(&brokerURL, "broker", "", "broker URL, tcp://HOST:PORT (required unless the fleet file has broker:)")
	f.StringVar(&shard, "shard", "0/1", "run every N-th device starting at the I-th: I/N")
	f.StringVar(&username, "username", "", "MQTT username of every device")
	f.StringVar(&password, "password", "", "MQTT password of every device")
	f.Uint64Var(&seed, "seed", 0, "seed (overrides the fleet file's)")
	f.Float64Var(&connectRate, "connect-rate", 0, "connections per second at start (overrides the fleet file's)")
	f.DurationVar(&statsEvery, "stats", 10*time.Second, "print the fleet's counters this often (0: never)")
	f.DurationVar(&startTimeout, "start-timeout", 2*time.Minute, "give up when the fleet is not online within this time")
	f.BoolVarP(&verbose, "verbose", "v", false, "log fleet events")
	f.StringVar(&record, "record", "", "write the shard's final counters as JSON to `FILE` on exit (shards' records merge by adding)")
	return cmd
}

// simRecord is what --record writes: one shard's run.
type simRecord struct {
	Shard    int         `json:"shard"`
	Shards   int         `json:"shards"`
	Seed     uint64      `json:"seed"`
	Broker   string      `json:"broker"`
	Started  time.Time   `json:"started"`
	Stopped  time.Time   `json:"stopped"`
	Devices  []string    `json:"devices"`
	Counters fleet.Stats `json:"counters"`
}

func runSim(ctx context.Context, out io.Writer, log *slog.Logger, spec fleet.Spec, shard, shards int, statsEvery, startTimeout time.Duration, record string) error {
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	began := time.Now()
	fl, err := fleet.Start(startCtx, spec, fleet.WithLogger(log), fleet.WithShard(shard, shards))
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: Start already stopped what it started
		}
		return fmt.Errorf("sim: %w", err)
	}
	fmt.Fprintf(out, "fleet online: %d devices (shard %d/%d, seed %d) against %s in %s\n",
		len(fl.IDs()), shard, shards, spec.Seed, spec.Broker, time.Since(began).Round(time.Millisecond))
	var tick <-chan time.Time
	if statsEvery > 0 {
		t := time.NewTicker(statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			printStats(out, fl.Stats())
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := fl.Stop(stopCtx)
			st := fl.Stats()
			printStats(out, st)
			fmt.Fprintln(out, "fleet stopped")
			if err != nil {
				return fmt.Errorf("sim: stop: %w", err)
			}
			if record != "" {
				b, _ := json.MarshalIndent(simRecord{Shard: shard, Shards: shards, Seed: spec.Seed, Broker: spec.Broker,
					Started: began.UTC(), Stopped: time.Now().UTC(), Devices: fl.IDs(), Counters: st}, "", "  ")
				if err := os.WriteFile(record, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("sim: record: %w", err)
				}
			}
			return nil
		}
	}
}

func printStats(out io.Writer, s fleet.Stats) {
	fmt.Fprintf(out, "devices=%d online=%d connects=%d reconnects=%d lost=%d published_qos0=%d qos1=%d qos2=%d commands=%d acks_ok=%d rejected=%d failed=%d dropped=%d\n",
		s.Devices, s.Online, s.Connects, s.Reconnects, s.ConnectionsLost, s.Published[0], s.Published[1], s.Published[2],
		s.Commands, s.AcksOK, s.AcksRejected, s.AcksFailed, s.Dropped+s.TelemetryDropped)
}

// parseShard parses I/N.
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("sim: --shard %q: want I/N with 0 <= I < N, e.g. 0/4", s)
	}
	return i, n, nil
}

// loadFleet decodes a fleet file with the scenario decoder (strict, the same group keys as a
// scenario's fleet, problems reported as file:line:column), then checks it with fleet.Validate.
func loadFleet(path string) (fleet.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return fleet.Spec{}, fmt.Errorf("fleet file: %w", err)
	}
	spec, err := scenario.ParseFleet(path, data)
	if err != nil {
		return fleet.Spec{}, err
	}
	if err := fleet.Validate(spec); err != nil {
		var se *fleet.SpecError
		if errors.As(err, &se) {
			return fleet.Spec{}, fmt.Errorf("%s: %s", position(path, data, se.Path), se.Msg)
		}
		return fleet.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// position finds where a field path ("groups[1].count") is in the file; the field's group or the
// file itself when the field is absent (a missing count).
func position(path string, data []byte, field string) string {
	for p := field; p != ""; {
		if yp, err := yaml.PathString("$." + p); err == nil {
			if node, err := yp.ReadNode(strings.NewReader(string(data))); err == nil && node != nil {
				pos := node.GetToken().Position
				return fmt.Sprintf("%s:%d:%d: %s", path, pos.Line, pos.Column, field)
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return path + ": " + field
}
