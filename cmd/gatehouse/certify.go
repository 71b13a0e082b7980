package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

func init() { register(newCertifyCmd) }

// certifyFlags are the options of gatehouse certify.
type certifyFlags struct {
	profile, clientID, deviceID, prefix, listen, benchPath, reportDir string
	timeout, connectTimeout, ackLimit, reconnectLimit, eventLimit     time.Duration
	verbose                                                           bool
}

func newCertifyCmd() *cobra.Command {
	var f certifyFlags
	cmd := &cobra.Command{
		Use:   "certify",
		Short: "Certify a device's firmware over MQTT against a device profile",
		Long: `certify plays the broker for one device and tests what its firmware does on the wire: the
CONNECT it sends, its keepalive, its will, QoS 1 resends with DUP after a lost connection, QoS 2
exchanges broken by lost connections (exactly once), packet identifiers, subscribing again when the
broker lost its session, refused connections, and for MQTT 5.0 devices the server's DISCONNECT,
Topic Alias Maximum, Receive Maximum and Server Keep Alive. The gate, turnstile and camera profiles
add the device contract: retained online status and will, retained state, commands answered with
their correlation id within a limit, messages at the contract's QoS. The protocol profile judges
any MQTT client on the protocol alone.

Point the device at the address certify listens on (printed as "listening on HOST:PORT") and let it
connect; certify drives it through the profile — commands, dropped connections, withheld
acknowledgements — so the device must reconnect by itself. With --bench the relays of a
hardware-in-the-loop bench cut the device's power and drive its inputs (a vehicle on the loop); the
simulated bench (fixtures/benches/sim.yaml) brings its own simulated gate controller.

Every requirement gets a verdict with its evidence (packet trace excerpts, timings against their
limits); MUST failures fail the certification (exit 1), SHOULD failures are warnings. --report-dir
receives a self-contained report.html, junit.xml, the JSON record and the full trace.txt.`,
		Example: `  gatehouse certify --profile gate --client-id gate-01 --listen 0.0.0.0:1883 --report-dir report
  gatehouse certify --profile protocol --client-id sensor-7 --listen 127.0.0.1:0
  gatehouse certify --profile gate --bench fixtures/benches/sim.yaml --listen 127.0.0.1:0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCertify(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.profile, "profile", "", "device profile: "+strings.Join(certdevice.Profiles(), ", "))
	fl.StringVar(&f.clientID, "client-id", "", "the device's MQTT client identifier (default with --bench: the bench controller's)")
	fl.StringVar(&f.deviceID, "device-id", "", "the {id} level of the device's topics (default: the client id)")
	fl.StringVar(&f.prefix, "prefix", "", "the {prefix} of the device's topics, e.g. acs/site-1 (default: learnt from the device's command subscription)")
	fl.StringVar(&f.listen, "listen", certdevice.DefaultListen, "address to listen on for the device (127.0.0.1:0 picks a free port; a device on the network needs a reachable address)")
	fl.StringVar(&f.benchPath, "bench", "", "hardware-in-the-loop bench file: its relays cut the device's power and drive its inputs")
	fl.StringVar(&f.reportDir, "report-dir", "", "directory for report.html, junit.xml, the JSON record and trace.txt (none when empty)")
	fl.DurationVar(&f.timeout, "timeout", certdevice.DefaultTimeout, "bound on the whole certification")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 0, "how long to wait for the device's first connection (default: --timeout)")
	fl.DurationVar(&f.ackLimit, "ack-limit", certdevice.DefaultAckLimit, "how long a command may take to be acknowledged")
	fl.DurationVar(&f.reconnectLimit, "reconnect-limit", certdevice.DefaultReconnectLimit, "how long the device may take to come back after a lost connection")
	fl.DurationVar(&f.eventLimit, "event-limit", certdevice.DefaultEventLimit, "how long a physical event may take to be reported")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print each step of the run")
	return cmd
}

func runCertify(ctx context.Context, out io.Writer, f certifyFlags) error {
	var b *bench.Bench
	if f.benchPath != "" {
		var err error
		if b, err = bench.Load(f.benchPath); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("certify: %w", err)}
		}
		if f.clientID == "" {
			f.clientID = b.Controller.ClientID
			if f.clientID == "" {
				f.clientID = b.Controller.ID
			}
		}
		if f.deviceID == "" {
			f.deviceID = b.Controller.ID
		}
	}
	var bp *benchPhysical
	cfg := certdevice.Config{
		Profile: f.profile, ClientID: f.clientID, DeviceID: f.deviceID, Prefix: f.prefix, Listen: f.listen,
		Timeout: f.timeout, ConnectTimeout: f.connectTimeout, AckLimit: f.ackLimit,
		ReconnectLimit: f.reconnectLimit, EventLimit: f.eventLimit, Version: version,
		Listening: func(addr net.Addr) (certdevice.Physical, error) {
			// The line tests and scripts read to learn the port; printed before anything waits.
			fmt.Fprintf(out, "certify: listening on %s for client %q (profile %s)\n", addr, f.clientID, f.profile)
			if b == nil {
				return nil, nil
			}
			var err error
			if bp, err = openBench(b, addr.String()); err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "certify: bench %q open (%s)\n", b.Name, bp.kind())
			return bp, nil
		},
	}
	if f.verbose {
		cfg.Progress = func(line string) { fmt.Fprintln(out, "certify:", line) }
	}
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("certify: %w", err)}
	}
	res, err := certdevice.Certify(ctx, cfg)
	if bp != nil {
		if cerr := bp.Close(); cerr != nil {
			fmt.Fprintln(out, "certify: closing the bench:", cerr)
		}
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintln(out, res.Summary())
	if f.reportDir != "" {
		paths, err := res.WriteReport(f.reportDir)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("certify: %w", err)}
		}
		fmt.Fprintf(out, "certify: report %s (JSON %s, JUnit %s, trace %s/trace.txt)\n", paths.HTML, strings.Join(paths.JSON, ", "), paths.JUnit, paths.Dir)
	}
	if res.Failed() {
		return &exitError{code: 1, err: fmt.Errorf("certify: %s %s did not pass: %s", f.profile, f.clientID, strings.Join(res.Failures(), ", "))}
	}
	return nil
}

// benchPhysical reaches a device through a hardware-in-the-loop bench: relays landed on its
// input terminals cut its power and play a vehicle on the loop, a press of a button, a broken
// photo-eye beam. On the simulated bench it also runs the simulated gate controller, connected
// to the certifier.
type benchPhysical struct {
	b     *bench.Bench
	rig   *rig.Rig
	board *sim.Board
	gate  *gate.Gate
	stop  func() // stops the signal handler that returns the relays to safety
}

func openBench(b *bench.Bench, addr string) (_ *benchPhysical, err error) {
	p := &benchPhysical{b: b}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if !b.UsesDriver(bench.Sim) {
		if p.rig, err = rig.Open(b, &pins.Opener{}); err != nil {
			return nil, fmt.Errorf("open bench %s: %w", b.Path, err)
		}
		p.stop = p.rig.HandleSignals(nil)
		return p, nil
	}
	if p.board, err = sim.NewBoard(b); err != nil {
		return nil, fmt.Errorf("simulated bench %s: %w", b.Path, err)
	}
	c := b.Controller
	// The simulated controller is an exit gate, so that a vehicle's passage bills at QoS 2 and
	// the certification follows a QoS 2 exchange.
	p.gate, err = gate.New(device.Config{
		ID: c.ID, Site: c.Site, ClientID: c.ClientID, Broker: "tcp://" + addr, Keepalive: c.Keepalive,
		Telemetry: -1, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, Seed: uint64(b.Sim.Seed),
	}, gate.Config{TravelTime: b.Sim.Travel, Role: "exit"})
	if err != nil {
		return nil, fmt.Errorf("simulated controller: %w", err)
	}
	if err := p.gate.Start(); err != nil {
		return nil, fmt.Errorf("simulated controller: %w", err)
	}
	p.board.Attach(p.gate)
	if p.rig, err = rig.Open(b, &pins.Opener{Sim: p.board}); err != nil {
		return nil, fmt.Errorf("open bench %s: %w", b.Path, err)
	}
	p.stop = p.rig.HandleSignals(nil)
	return p, nil
}

func (p *benchPhysical) kind() string {
	if p.board != nil {
		return "simulated bench with a simulated exit gate controller"
	}
	return "relays through periph.io"
}

// terminal sets the level a controller input terminal sees, through the relay wired to it.
func (p *benchPhysical) terminal(name string, active bool) error {
	w, ok := p.b.RelayFor(name)
	if !ok {
		return fmt.Errorf("bench %s has no relay wired to the %s terminal", p.b.Name, name)
	}
	rel, err := p.rig.Relay(w.Relay)
	if err != nil {
		return err
	}
	// A normally-closed contact feeds the terminal while the relay is released.
	return rel.Set(active == (w.Contact != bench.NormallyClosed))
}

// Power switches the controller's supply through the relay on its power terminal.
func (p *benchPhysical) Power(_ context.Context, on bool) error { return p.terminal("power", on) }

// Stimulate plays a physical event on the controller's input terminals.
func (p *benchPhysical) Stimulate(ctx context.Context, s device.Stimulus) error {
	switch s.Kind {
	case device.StimVehicleArrive:
		return p.terminal("loop", true)
	case device.StimVehicleLeave:
		return p.terminal("loop", false)
	case device.StimPhotoEye:
		return p.terminal("photo_eye", s.Active)
	case device.StimInput:
		return p.terminal(s.Terminal, s.Active)
	case device.StimOpenButton, device.StimCloseButton:
		w, ok := p.b.RelayFor(s.Kind)
		if !ok {
			return fmt.Errorf("bench %s has no relay wired to the %s terminal", p.b.Name, s.Kind)
		}
		rel, err := p.rig.Relay(w.Relay)
		if err != nil {
			return err
		}
		return rel.Pulse(ctx, p.b.Limits.Pulse)
	}
	return fmt.Errorf("bench %s drives a gate controller: %s has no relay", p.b.Name, s.Kind)
}

// Close returns the relays to safety and stops what the bench started.
func (p *benchPhysical) Close() error {
	var errs []error
	if p.stop != nil {
		p.stop()
	}
	if p.rig != nil {
		errs = append(errs, p.rig.Close())
	}
	if p.gate != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, p.gate.Close(ctx))
		cancel()
	}
	if p.board != nil {
		errs = append(errs, p.board.Close())
	}
	return errors.Join(errs...)
}
