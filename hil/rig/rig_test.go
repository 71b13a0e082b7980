package rig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/hiltest"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		signalChild()
		return
	}
	goleak.VerifyTestMain(m)
}

const fixtures = "../../fixtures/benches"

func loadBench(t testing.TB, name string) *bench.Bench {
	t.Helper()
	b, err := bench.Load(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simRig opens the simulated bench with a fake controller attached.
func simRig(t testing.TB, b *bench.Bench) (*Rig, *sim.Board, *hiltest.Controller) {
	t.Helper()
	bd, err := sim.NewBoard(b)
	if err != nil {
		t.Fatal(err)
	}
	c := hiltest.NewController()
	bd.Attach(c)
	r, err := Open(b, &pins.Opener{Sim: bd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		_ = bd.Close()
	})
	return r, bd, c
}

func mustRelay(t testing.TB, r *Rig, name string) *Relay {
	t.Helper()
	rel, err := r.Relay(name)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func mustInput(t testing.TB, r *Rig, name string) *Input {
	t.Helper()
	in, err := r.Input(name)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// assertSafe checks every relay pin of the simulated bench is at its safe level.
func assertSafe(t testing.TB, b *bench.Bench, bd *sim.Board) {
	t.Helper()
	for _, rel := range b.Relays {
		if l, _ := bd.Level(rel.Pin); l != rel.Safe() {
			t.Errorf("relay %s pin %s = %v, want its safe level %v", rel.Name, rel.Pin, l, rel.Safe())
		}
	}
}

// advance moves the fake clock of the synctest bubble by d and lets everything due run.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func TestOpenSetsRelaysSafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		_, bd, c := simRig(t, b)
		assertSafe(t, b, bd)
		advance(10 * time.Millisecond) // past the wires' propagation delay
		// Safe state: the controller is powered (power is on a normally-closed contact) and no
		// button is pressed.
		if !c.InputActive("power") || c.InputActive("open_button") || c.InputActive("photo_eye") {
			t.Errorf("controller inputs after open: power %v open_button %v photo_eye %v", c.InputActive("power"), c.InputActive("open_button"), c.InputActive("photo_eye"))
		}
	})
}

func TestInterlockRefusesAndChangesNoPin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		r, bd, _ := simRig(t, b)
		if err := mustRelay(t, r, "open_button").Set(true); err != nil {
			t.Fatal(err)
		}
		before := len(bd.Log())
		err := mustRelay(t, r, "close_button").Set(true)
		var ie *InterlockError
		if !errors.As(err, &ie) || ie.Relay != "close_button" || ie.Active != "open_button" {
			t.Fatalf("Set(close_button) = %v, want an interlock error naming open_button", err)
		}
		for _, tr := range bd.Log()[before:] {
			if tr.Pin == "R2" {
				t.Errorf("refused Set changed pin R2: %v", tr)
			}
		}
		if l, _ := bd.Level("R2"); l != gpio.Low {
			t.Errorf("R2 = %v, want low (released)", l)
		}
		if ev := r.Events(); len(ev) != 1 || ev[0].Kind != RelayInterlock {
			t.Errorf("events = %v, want one relay-interlock", ev)
		}
		// Released, the other member may be energised.
		if err := mustRelay(t, r, "open_button").Set(false); err != nil {
			t.Fatal(err)
		}
		if err := mustRelay(t, r, "close_button").Set(true); err != nil {
			t.Errorf("close_button after open_button released: %v", err)
		}
	})
}

func TestWatchdogReleasesAfterMaxPulse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		r, bd, _ := simRig(t, b)
		rel := mustRelay(t, r, "open_button") // max_pulse 2s
		if err := rel.Set(true); err != nil {
			t.Fatal(err)
		}
		advance(1999 * time.Millisecond)
		if !rel.Active() {
			t.Fatal("watchdog released the relay before its max_pulse")
		}
		advance(time.Millisecond)
		if rel.Active() {
			t.Fatal("relay still energised after its max_pulse")
		}
		if l, _ := bd.Level("R1"); l != gpio.Low {
			t.Errorf("R1 = %v after the watchdog, want low", l)
		}
		ev := r.Events()
		if len(ev) != 1 || ev[0].Kind != MaxPulse || ev[0].Name != "open_button" || !strings.Contains(ev[0].Detail, "held 2s") {
			t.Errorf("events = %v, want one max-pulse for open_button held 2s", ev)
		}
	})
}

func TestWatchdogDoesNotReleaseALaterPulse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _, _ := simRig(t, loadBench(t, "sim.yaml"))
		rel := mustRelay(t, r, "open_button")
		_ = rel.Set(true)
		advance(1500 * time.Millisecond)
		_ = rel.Set(false)
		_ = rel.Set(true)
		advance(1500 * time.Millisecond) // 3s after the first Set, 1.5s into the second
		if !rel.Active() {
			t.Error("the first energising's watchdog released the second one")
		}
		if ev := r.Events(); len(ev) != 0 {
			t.Errorf("events = %v, want none", ev)
		}
	})
}

func TestPanicRestoresSafeLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		r, bd, _ := simRig(t, b)
		recovered := make(chan any, 1)
		go func() {
			defer func() { recovered <- recover() }()
			defer r.RestoreOnPanic()
			_ = mustRelay(t, r, "open_button").Set(true)
			_ = mustRelay(t, r, "power").Set(true) // cuts the controller's power
			if l, _ := bd.Level("R5"); l != gpio.Low {
				t.Errorf("power relay pin = %v while energised, want low (active low)", l)
			}
			panic("bench step failed")
		}()
		if p := <-recovered; p != "bench step failed" {
			t.Fatalf("re-panicked with %v, want the original value", p)
		}
		assertSafe(t, b, bd)
		if err := mustRelay(t, r, "open_button").Set(true); !errors.Is(err, ErrHalted) {
			t.Errorf("Set after a panic = %v, want ErrHalted", err)
		}
		if ev := r.Events(); len(ev) != 1 || ev[0].Kind != Panic {
			t.Errorf("events = %v, want one panic", ev)
		}
	})
}

func TestInputDebouncedEdgeKeepsItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml") // bounce 3 within 1ms, debounce 5ms, propagation 2ms
		r, _, c := simRig(t, b)
		lock := mustInput(t, r, "lock") // active low
		start := time.Now()
		c.SetOutput("lock", true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		e, err := lock.WaitEdge(ctx, start, true)
		if err != nil {
			t.Fatal(err)
		}
		if d := e.At.Sub(start); d != b.Sim.Propagation {
			t.Errorf("edge stamped %v after the change, want the propagation delay %v", d, b.Sim.Propagation)
		}
		if e.Level != gpio.Low {
			t.Errorf("edge level %v, want low (lock is active low)", e.Level)
		}
		advance(50 * time.Millisecond)
		if edges := lock.Edges(); len(edges) != 1 {
			t.Errorf("edges = %v, want the bounce debounced into one", edges)
		}
	})
}

func TestInputGlitchShorterThanDebounceIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		b.Sim.Bounce = 0
		r, _, c := simRig(t, b)
		c.SetOutput("motor_open", true)
		advance(time.Millisecond)
		c.SetOutput("motor_open", false)
		advance(50 * time.Millisecond)
		if edges := mustInput(t, r, "motor_open").Edges(); len(edges) != 0 {
			t.Errorf("a 1ms glitch on a 5ms-debounced input gave edges %v", edges)
		}
	})
}

func TestWaitEdgeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _, _ := simRig(t, loadBench(t, "sim.yaml"))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := mustInput(t, r, "lock").WaitEdge(ctx, time.Now(), true)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "input lock: no edge to active") {
			t.Errorf("WaitEdge = %v, want a deadline error naming the input", err)
		}
	})
}

func TestInputInterlockReleasesRelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml")
		r, bd, c := simRig(t, b)
		_ = mustRelay(t, r, "loop").Set(true)
		c.SetOutput("motor_open", true)
		advance(20 * time.Millisecond)
		if len(r.Events()) != 0 {
			t.Fatalf("events before the fault: %v", r.Events())
		}
		c.SetOutput("motor_close", true) // a controller that drives both motor outputs
		advance(20 * time.Millisecond)
		ev := r.Events()
		if len(ev) == 0 || ev[0].Kind != InputInterlock || !strings.Contains(ev[0].Detail, "motor_close") {
			t.Errorf("events = %v, want an input-interlock between motor_open and motor_close", ev)
		}
		assertSafe(t, b, bd)
	})
}

// A controller that reverses the motor switches one output off and the other on at one instant;
// the debounced inputs may report the two in either order, and that is not an interlock breach.
func TestInputInterlockToleratesBreakBeforeMake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _, c := simRig(t, loadBench(t, "sim.yaml"))
		c.SetOutput("motor_open", true)
		advance(20 * time.Millisecond)
		c.SetOutput("motor_open", false)
		c.SetOutput("motor_close", true)
		advance(100 * time.Millisecond)
		if ev := r.Events(); len(ev) != 0 {
			t.Errorf("events = %v, want none for a clean reversal", ev)
		}
	})
}

func TestMissingHardwareIsAClearError(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"gpiochip-example.yaml", "relay open_button: gpiochip pin gpiochip0/5: /dev/gpiochip0 not found: GPIO hardware not found: is this a Raspberry Pi or another board with GPIO / is the gpio character device enabled (CONFIG_GPIO_CDEV)? run `ls /dev/gpiochip*`"},
		{"rpi-example.yaml", "relay open_button: rpi pin GPIO5: no Raspberry Pi detected ("},
		{"sysfs-example.yaml", "relay open_button: sysfs pin GPIO5: /sys/class/gpio not found"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			for _, dev := range []string{"/dev/gpiochip0", "/sys/class/gpio", "/sys/bus/platform/drivers/raspberrypi-firmware"} {
				if _, err := os.Stat(dev); err == nil {
					t.Skipf("%s exists: this machine has GPIO hardware, so this test of its absence does not apply", dev)
				}
			}
			r, err := Open(loadBench(t, tc.file), &pins.Opener{})
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded without GPIO hardware")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if !errors.Is(err, pins.ErrNoHardware) {
				t.Errorf("error does not wrap pins.ErrNoHardware: %v", err)
			}
			var pe *pins.PinError
			if !errors.As(err, &pe) {
				t.Errorf("error has no *pins.PinError: %v", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 10 {
				t.Errorf("%d problems reported, want one per pin (10):\n%v", n, err)
			}
		})
	}
}

// The signal test runs the rig in a child process (this test binary, re-run with childEnv set):
// the child energises relays and waits; the parent sends SIGTERM; the child's signal handler must
// release every relay before anything else, then the child prints the pin levels and exits.
const childEnv = "GATEHOUSE_RIG_SIGNAL_CHILD"

func signalChild() {
	b, err := bench.Load(filepath.Join(fixtures, "sim.yaml"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	bd, _ := sim.NewBoard(b)
	bd.Attach(hiltest.NewController())
	r, err := Open(b, &pins.Opener{Sim: bd})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	got := make(chan os.Signal, 1)
	r.HandleSignals(func(sig os.Signal) { got <- sig })
	for _, name := range []string{"open_button", "power", "loop"} {
		rel, _ := r.Relay(name)
		if err := rel.Set(true); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(2)
		}
	}
	fmt.Println("READY")
	select {
	case sig := <-got:
		var levels []string
		for _, rel := range b.Relays {
			l, _ := bd.Level(rel.Pin)
			levels = append(levels, fmt.Sprintf("%s=%v", rel.Name, l))
		}
		open, _ := r.Relay("open_button")
		fmt.Printf("SIGNAL %v LEVELS %s AFTER %v\n", sig, strings.Join(levels, " "), open.Set(true))
		os.Exit(0)
	case <-time.After(20 * time.Second):
		fmt.Println("ERROR no signal within 20s")
		os.Exit(3)
	}
}

func TestSignalReleasesRelays(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("child ended without output")
			}
			return l
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("child said nothing within 20s")
		}
		return ""
	}
	if l := next(); l != "READY" {
		t.Fatalf("child: %s", l)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	l := next()
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (%s)", err, l)
	}
	b := loadBench(t, "sim.yaml")
	for _, rel := range b.Relays {
		want := fmt.Sprintf("%s=%v", rel.Name, rel.Safe())
		if !strings.Contains(l, want) {
			t.Errorf("after SIGTERM: %s; want %s", l, want)
		}
	}
	if !strings.Contains(l, "SIGNAL terminated") || !strings.Contains(l, "rig halted") {
		t.Errorf("child: %s; want SIGTERM handled and a halted rig refusing to energise", l)
	}
}

// backlogPin is a timed input pin whose edges a test hands over in one batch, as a pin does to a
// read loop that fell behind on a loaded machine.
type backlogPin struct {
	gpio.PinIn // only the methods below are called

	edges chan sim.Edge
	halt  chan struct{}

	mu    sync.Mutex // protects level
	level gpio.Level
}

func newBacklogPin() *backlogPin {
	return &backlogPin{edges: make(chan sim.Edge, 64), halt: make(chan struct{})}
}

// push queues edges (with the times they happened) and leaves the pin at the last one's level.
func (p *backlogPin) push(edges ...sim.Edge) {
	for _, e := range edges {
		p.edges <- e
	}
	p.mu.Lock()
	p.level = edges[len(edges)-1].Level
	p.mu.Unlock()
}

func (p *backlogPin) NextEdge(timeout time.Duration) (sim.Edge, bool) {
	select {
	case e := <-p.edges:
		return e, true
	case <-p.halt:
		return sim.Edge{}, false
	case <-time.After(timeout):
		return sim.Edge{}, false
	}
}

func (p *backlogPin) WaitForEdge(timeout time.Duration) bool {
	_, ok := p.NextEdge(timeout)
	return ok
}

func (p *backlogPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *backlogPin) Halt() error {
	select {
	case <-p.halt:
	default:
		close(p.halt)
	}
	return nil
}

// watchPin starts a rig with one input on pin p, as Open would have.
func watchPin(t *testing.T, spec bench.Input, p gpio.PinIn) *Input {
	t.Helper()
	r := &Rig{bench: &bench.Bench{Name: "backlog", Inputs: []bench.Input{spec}}, byName: map[string]any{}, stop: make(chan struct{}), checks: map[*time.Timer]struct{}{}}
	in := newInput(r, spec, p)
	r.inputs = append(r.inputs, in)
	r.byName[spec.Name] = in
	r.goFn(in.watch)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return in
}

// A read loop that fell behind takes three changes' edges at once (on, off, on, each with its own
// contact bounce, 20ms apart). Judged by when it read them they are one burst that ends where it
// began; judged by when they happened they are three changes, each stamped with its first edge.
func TestInputBacklogKeepsEveryChangeAndItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newBacklogPin()
		in := watchPin(t, bench.Input{Name: "motor_open", Driver: bench.Sim, Pin: "S1", Active: gpio.High, Pull: gpio.PullDown, Debounce: 5 * time.Millisecond, Edge: gpio.BothEdges}, p)
		t0 := time.Now()
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		advance(60 * time.Millisecond)
		p.push(
			sim.Edge{Level: gpio.High, At: at(1 * time.Millisecond)}, sim.Edge{Level: gpio.Low, At: at(1200 * time.Microsecond)}, sim.Edge{Level: gpio.High, At: at(1500 * time.Microsecond)},
			sim.Edge{Level: gpio.Low, At: at(20 * time.Millisecond)}, sim.Edge{Level: gpio.High, At: at(20300 * time.Microsecond)}, sim.Edge{Level: gpio.Low, At: at(20600 * time.Microsecond)},
			sim.Edge{Level: gpio.High, At: at(40 * time.Millisecond)}, sim.Edge{Level: gpio.Low, At: at(40200 * time.Microsecond)}, sim.Edge{Level: gpio.High, At: at(40400 * time.Microsecond)},
		)
		advance(50 * time.Millisecond)
		var got []string
		for _, e := range in.Edges() {
			got = append(got, fmt.Sprintf("%v@%v", e.Active, e.At.Sub(t0)))
		}
		if want := []string{"true@1ms", "false@20ms", "true@40ms"}; !slices.Equal(got, want) {
			t.Errorf("edges %v, want %v", got, want)
		}
	})
}

// WaitSettled waits out a change in progress; on a quiet input in the wanted state it returns at
// once, and in the other state it fails at its deadline saying where the input is.
func TestWaitSettledWaitsForAChangeInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := loadBench(t, "sim.yaml") // propagation 2ms, bounce within 1ms, lock debounce 5ms
		r, _, c := simRig(t, b)
		lock := mustInput(t, r, "lock")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := lock.WaitSettled(ctx, false); err != nil || time.Since(start) != 0 {
			t.Fatalf("quiet inactive input: WaitSettled = %v after %v; want nil at once", err, time.Since(start))
		}
		c.SetOutput("lock", true)
		advance(2500 * time.Microsecond) // the change has begun and is bouncing
		if err := lock.WaitSettled(ctx, true); err != nil {
			t.Fatal(err)
		}
		if edges := lock.Edges(); len(edges) != 1 || time.Since(start) < b.Sim.Propagation+lock.Spec().Debounce {
			t.Errorf("WaitSettled returned after %v with edges %v; want the change recorded and its debounce time waited out", time.Since(start), edges)
		}
		short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel2()
		err := lock.WaitSettled(short, false)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "input lock: not settled inactive, still active") {
			t.Errorf("WaitSettled on an active input = %v, want a deadline error saying it is still active", err)
		}
	})
}
