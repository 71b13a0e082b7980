package device_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
	"github.com/gatehouse-iot/gatehouse/conformance/device/firmwarebug"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/camera"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
	"github.com/gatehouse-iot/gatehouse/simulator/device/turnstile"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Limits of the runs in these tests: devices with a 1s keepalive and fast reconnection, so that
// a whole certification takes seconds. A paho client whose connection drops in the middle of its
// session resumption can take its 10s write timeout to notice, hence the reconnect limit.
const (
	reconnectLimit = 20 * time.Second
	runTimeout     = 3 * time.Minute
)

func fastConfig(profile, clientID string) certdevice.Config {
	return certdevice.Config{
		Profile: profile, ClientID: clientID, Listen: "127.0.0.1:0",
		Timeout: runTimeout, ConnectTimeout: 20 * time.Second, ReconnectLimit: reconnectLimit,
	}
}

// simDevice is a simulated device running in this process.
type simDevice interface {
	device.Device
	SetPower(on bool) error
}

// variant is one device to certify: a kind, how it is broken (if at all), whether the certifier
// reaches its physical side.
type variant struct {
	name     string
	kind     string
	profile  string // the certification profile; the kind's own when empty
	physical bool
	fault    string          // a simulator fault injected once the device runs
	bug      firmwarebug.Bug // a firmware bug played by a shim between device and certifier
}

// newSim builds a simulated device of the kind, connected to broker.
func newSim(kind, id, broker string) (simDevice, error) {
	// A 2s keepalive: short enough for a quick run, long enough that a busy machine's
	// scheduling does not pass for a late PINGREQ.
	cfg := device.Config{
		ID: id, Broker: broker, Keepalive: 2 * time.Second, Telemetry: 5 * time.Second,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, Seed: 7,
	}
	switch kind {
	case device.KindGate:
		return gate.New(cfg, gate.Config{Role: "exit", TravelTime: 200 * time.Millisecond, HoldTime: 30 * time.Second})
	case device.KindTurnstile:
		return turnstile.New(cfg, turnstile.Config{PassWindow: time.Second})
	case device.KindCamera:
		return camera.New(cfg, camera.Config{SnapshotSize: 4096, MotionTime: 200 * time.Millisecond})
	}
	return nil, fmt.Errorf("no simulated %s", kind)
}

// certifySim certifies a simulated device of the variant in this process and returns the result.
func certifySim(v variant) (*certdevice.Result, error) {
	id := v.kind + "-" + v.name
	var d simDevice
	var shim *firmwarebug.Shim
	stopTraffic := func() {}
	profile := v.profile
	if profile == "" {
		profile = v.kind
	}
	cfg := fastConfig(profile, id)
	cfg.Listening = func(addr net.Addr) (certdevice.Physical, error) {
		broker := "tcp://" + addr.String()
		if v.bug != "" {
			var err error
			if shim, err = firmwarebug.Start(addr.String(), v.bug); err != nil {
				return nil, err
			}
			broker = shim.URL()
		}
		var err error
		if d, err = newSim(v.kind, id, broker); err != nil {
			return nil, err
		}
		if err := d.Start(); err != nil {
			return nil, err
		}
		if v.fault != "" {
			if err := d.Inject(fault.Fault{Kind: v.fault}); err != nil {
				return nil, err
			}
		}
		if profile == certdevice.ProfileProtocol {
			stopTraffic = startTraffic(d, v.kind)
		}
		if v.physical {
			return certdevice.SimulatedPhysical(d), nil
		}
		return nil, nil
	}
	res, err := certdevice.Certify(context.Background(), cfg)
	stopTraffic()
	if d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = d.Close(ctx)
		cancel()
	}
	if shim != nil {
		_ = shim.Close()
	}
	return res, err
}

// startTraffic plays a device's everyday events while it is certified on the protocol profile,
// until the function it returns is called. That profile sends no commands, and the reference
// devices publish at QoS 1 by themselves only when they (re)connect — a moment that races the
// certifier setting up its hold of an acknowledgement. In service they see cards, plates and
// button pushes, each published at QoS 1, as the mosquitto_pub devices here are fed a line every
// 300ms. Every trafficEvery: a card at a turnstile, a plate at a camera, the open and close
// buttons of a gate in turn. A stimulus the device refuses (off, jammed) is skipped: the
// certifier then finds no message to judge, and says so.
func startTraffic(d simDevice, kind string) (stop func()) {
	return repeat(trafficEvery, func(n int) bool {
		st := device.Stimulus{Kind: device.StimCard}
		switch {
		case kind == device.KindCamera:
			st.Kind = device.StimPlate
		case kind == device.KindGate && n%2 == 0:
			st.Kind = device.StimOpenButton
		case kind == device.KindGate:
			st.Kind = device.StimCloseButton
		}
		_ = d.Stimulate(st)
		return true
	})
}

// trafficEvery spaces the events: longer than the idle time after which the device sends PINGREQ
// (so that the keepalive and silent-server phases still see it go quiet), and several times
// within the 10s the certifier waits for a QoS 1 message of the device's own.
const trafficEvery = 2 * time.Second

// repeat calls fn every interval with the tick's number (0, 1, …) until fn returns false or the
// returned stop is called; stop returns once fn no longer runs.
func repeat(every time.Duration, fn func(n int) bool) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if !fn(n) {
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// runAll runs fn for every item at once and returns the results and errors by name. It makes no
// Ginkgo assertion: it may run outside any spec (see background).
func runAll[T any](items []T, name func(T) string, fn func(T) (*certdevice.Result, error)) (map[string]*certdevice.Result, map[string]error) {
	var mu sync.Mutex
	out := map[string]*certdevice.Result{}
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := fn(it)
			mu.Lock()
			defer mu.Unlock()
			out[name(it)] = res
			if err != nil {
				errs[name(it)] = err
			}
		}()
	}
	wg.Wait()
	return out, errs
}

// background is the work of one container — certifications that take seconds of waiting each —
// started when the suite starts, so that the containers' runs overlap instead of following each
// other; the container's BeforeAll waits for it.
type background struct {
	label string
	fn    func()
	once  sync.Once
	done  chan struct{}
}

var backgrounds []*background

// inBackground registers fn as the work of the container labelled label.
func inBackground(label string, fn func()) *background {
	b := &background{label: label, fn: fn, done: make(chan struct{})}
	backgrounds = append(backgrounds, b)
	return b
}

func (b *background) start() {
	b.once.Do(func() {
		go func() {
			defer close(b.done)
			b.fn()
		}()
	})
}

// wait starts the work if the suite did not, and waits for it.
func (b *background) wait() {
	b.start()
	<-b.done
}

var _ = ginkgo.BeforeSuite(func() {
	filter := ginkgo.GinkgoLabelFilter()
	for _, b := range backgrounds {
		if ginkgo.Label(b.label).MatchesLabelFilter(filter) {
			b.start()
		}
	}
})

// failedOthers lists the requirements other than except that failed, with their messages.
func failedOthers(res *certdevice.Result, except ...string) []string {
	var out []string
outer:
	for _, q := range res.Requirements {
		for _, e := range except {
			if q.ID == e {
				continue outer
			}
		}
		if q.Outcome.Failed() {
			out = append(out, q.ID+": "+q.Message)
		}
	}
	return out
}

// outcome returns the outcome of one requirement, "" when it is not in the result.
func outcome(res *certdevice.Result, id string) report.Outcome {
	q, ok := res.Requirement(id)
	if !ok {
		return ""
	}
	return q.Outcome
}

// explain is what a failed expectation prints: the summary and the trace.
func explain(res *certdevice.Result) string {
	if res == nil {
		return "no result"
	}
	return res.Summary() + "\n" + strings.Join(res.Trace, "\n")
}

// feedLines writes a new numbered line to w every interval until the returned stop is called,
// which also closes w: the stream of distinct messages a mosquitto_pub -l "device" publishes.
func feedLines(w io.WriteCloser, prefix string, every time.Duration) (stop func()) {
	stopRepeat := repeat(every, func(n int) bool {
		_, err := fmt.Fprintf(w, "%s %d\n", prefix, n+1)
		return err == nil
	})
	return func() {
		stopRepeat()
		_ = w.Close()
	}
}

// process is a child process with its output collected and its end awaitable.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex // protects output
	output strings.Builder
	lines  chan string // stdout lines as they come (bounded; extra lines are only collected)
	exited chan struct{}
	err    error
}

// startProcess runs a command; stdout lines are collected and offered on lines.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, lines: make(chan string, 64), exited: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			p.output.WriteString(l + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- l:
			default:
			}
		}
	}()
	go func() {
		<-scanned
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

type lockedWriter struct{ p *process }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.output.Write(b)
}

func (p *process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// awaitLine returns the first stdout line containing marker, within timeout.
func (p *process) awaitLine(marker string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, marker) {
				return l, nil
			}
		case <-p.exited:
			return "", fmt.Errorf("the process exited before printing %q: %v\n%s", marker, p.err, p.Output())
		case <-deadline.C:
			return "", fmt.Errorf("no line with %q within %s:\n%s", marker, timeout, p.Output())
		}
	}
}

// wait waits for the process to end, within timeout; it kills it when it does not.
func (p *process) wait(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return -1, fmt.Errorf("did not end within %s:\n%s", timeout, p.Output())
	}
	if p.cmd.ProcessState == nil {
		return -1, p.err
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// stop ends a long-running process: SIGTERM, then SIGKILL if it does not end in time.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(terminate)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// requireTool finds an external tool a spec needs; when it is missing the spec fails in CI
// (CI=true) and is skipped elsewhere, both naming the command that installs it.
func requireTool(name, install string) string {
	p, err := testenv.LookTool(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is required by this spec; install it with: %s", name, install)
	if testenv.InCI() {
		ginkgo.Fail(msg)
	}
	ginkgo.Skip(msg)
	return ""
}

// terminate asks a child process to stop cleanly.
var terminate = syscall.SIGTERM

// listenAddr extracts HOST:PORT from certify's "listening on HOST:PORT ..." line.
func listenAddr(line string) string {
	_, rest, _ := strings.Cut(line, "listening on ")
	addr, _, _ := strings.Cut(rest, " ")
	return addr
}
