package sim

import (
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeController records what reaches its input terminals and lets a test set its outputs.
type fakeController struct {
	mu     sync.Mutex // protects inputs and out
	inputs []input
	out    func(terminal string, active bool, at time.Time)
	got    chan input
}

type input struct {
	terminal string
	active   bool
	at       time.Time
}

func newFakeController() *fakeController { return &fakeController{got: make(chan input, 64)} }

func (f *fakeController) SetInput(terminal string, active bool) error {
	in := input{terminal, active, time.Now()}
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	f.got <- in
	return nil
}

func (f *fakeController) OnOutput(fn func(string, bool, time.Time)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = fn
}

func (f *fakeController) setOutput(terminal string, active bool) {
	f.mu.Lock()
	fn := f.out
	f.mu.Unlock()
	fn(terminal, active, time.Now())
}

func loadSim(t *testing.T) *bench.Bench {
	t.Helper()
	b, err := bench.Load(filepath.Join("..", "..", "fixtures", "benches", "sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPin(t *testing.T, b *Board, name string) *Pin {
	t.Helper()
	p, err := b.Pin(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitInput(t *testing.T, c *fakeController) input {
	t.Helper()
	select {
	case in := <-c.got:
		return in
	case <-time.After(time.Second):
		t.Fatal("no change reached the controller within 1s")
		return input{}
	}
}

func TestRelayReachesTerminalAfterPropagation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bn := loadSim(t)
		bd, err := NewBoard(bn)
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		c := newFakeController()
		bd.Attach(c)
		r1 := mustPin(t, bd, "R1") // open_button, active high, normally open
		start := time.Now()
		if err := r1.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		in := waitInput(t, c)
		if in.terminal != "open_button" || !in.active {
			t.Fatalf("controller got %+v, want open_button active", in)
		}
		if d := in.at.Sub(start); d != bn.Sim.Propagation {
			t.Errorf("arrived after %v, want the propagation delay %v", d, bn.Sim.Propagation)
		}
		// Power is on the normally-closed contact of an active-low relay: driving the pin high
		// releases the relay and powers the controller; low energises it and cuts power.
		r5 := mustPin(t, bd, "R5")
		if err := r5.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		if in := waitInput(t, c); in.terminal != "power" || !in.active {
			t.Fatalf("controller got %+v, want power on", in)
		}
		if err := r5.Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
		if in := waitInput(t, c); in.terminal != "power" || in.active {
			t.Fatalf("controller got %+v, want power off", in)
		}
	})
}

func TestPressAndReleaseArriveInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bd, err := NewBoard(loadSim(t))
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		c := newFakeController()
		bd.Attach(c)
		r1 := mustPin(t, bd, "R1")
		for range 50 {
			_ = r1.Out(gpio.High)
			_ = r1.Out(gpio.Low)
		}
		for i := range 100 {
			in := waitInput(t, c)
			if in.active != (i%2 == 0) {
				t.Fatalf("change %d arrived as active=%v: order lost", i, in.active)
			}
		}
	})
}

func TestSenseInputBouncesThenSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bn := loadSim(t)
		bd, err := NewBoard(bn)
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		c := newFakeController()
		bd.Attach(c)
		s1 := mustPin(t, bd, "S1") // motor_open, active high, pulled down
		if err := s1.In(gpio.PullDown, gpio.BothEdges); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.setOutput("motor_open", true)
		var edges []Edge
		for {
			e, ok := s1.NextEdge(100 * time.Millisecond)
			if !ok {
				break
			}
			edges = append(edges, e)
		}
		if want := 1 + 2*bn.Sim.Bounce; len(edges) != want {
			t.Fatalf("got %d edges %v, want %d (one change and %d bounces)", len(edges), edges, want, bn.Sim.Bounce)
		}
		if edges[0].Level != gpio.High || edges[len(edges)-1].Level != gpio.High || s1.Read() != gpio.High {
			t.Errorf("edges %v, level %v: want to start and settle high", edges, s1.Read())
		}
		if d := edges[0].At.Sub(start); d != bn.Sim.Propagation {
			t.Errorf("first edge after %v, want %v", d, bn.Sim.Propagation)
		}
		for i := 1; i < len(edges); i++ {
			if edges[i].At.Before(edges[i-1].At) || edges[i].At.Sub(edges[0].At) > bn.Sim.BounceSpan {
				t.Errorf("edge %d at +%v: out of order or outside the bounce span %v", i, edges[i].At.Sub(edges[0].At), bn.Sim.BounceSpan)
			}
		}
	})
}

// bounceOffsets runs one output change and returns when each edge came, relative to the change.
func bounceOffsets(t *testing.T, seed int64) []time.Duration {
	var offs []time.Duration
	synctest.Test(t, func(t *testing.T) {
		bn := loadSim(t)
		bn.Sim.Seed = seed
		bd, err := NewBoard(bn)
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		c := newFakeController()
		bd.Attach(c)
		s2 := mustPin(t, bd, "S2")
		_ = s2.In(gpio.PullDown, gpio.BothEdges)
		start := time.Now()
		c.setOutput("motor_close", true)
		for {
			e, ok := s2.NextEdge(50 * time.Millisecond)
			if !ok {
				break
			}
			offs = append(offs, e.At.Sub(start))
		}
	})
	return offs
}

func TestBounceIsReproducibleFromItsSeed(t *testing.T) {
	a, b, c := bounceOffsets(t, 7), bounceOffsets(t, 7), bounceOffsets(t, 8)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("runs with one seed differ in length: %v vs %v", a, b)
	}
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 gave %v then %v", a, b)
		}
		if i < len(c) && a[i] != c[i] {
			same = false
		}
	}
	if same {
		t.Errorf("seeds 7 and 8 gave the same bounce %v", a)
	}
}

func TestLoopbackFollowsRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bd, err := NewBoard(loadSim(t))
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		r8, s8 := mustPin(t, bd, "R8"), mustPin(t, bd, "S8")
		_ = s8.In(gpio.PullDown, gpio.BothEdges)
		_ = r8.Out(gpio.High)
		synctest.Wait()
		if e, ok := s8.NextEdge(10 * time.Millisecond); !ok || e.Level != gpio.High {
			t.Fatalf("loopback input: edge %v ok %v, want high", e, ok)
		}
		for { // the settled level is what counts; let the bounce pass
			if _, ok := s8.NextEdge(10 * time.Millisecond); !ok {
				break
			}
		}
		if s8.Read() != gpio.High {
			t.Errorf("loopback input settled %v, want high", s8.Read())
		}
	})
}

func TestFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bn := loadSim(t)
		bd, err := NewBoard(bn, Fault{Kind: BrokenWire, Wire: "open_button"}, Fault{Kind: SlowWire, Wire: "close_button", Delay: 300 * time.Millisecond}, Fault{Kind: StuckOutput, Wire: "R3"})
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		c := newFakeController()
		bd.Attach(c)
		start := time.Now()
		_ = mustPin(t, bd, "R1").Out(gpio.High) // broken: never arrives
		_ = mustPin(t, bd, "R3").Out(gpio.High) // stuck: never changes
		_ = mustPin(t, bd, "R2").Out(gpio.High) // slow
		in := waitInput(t, c)
		if in.terminal != "close_button" || in.at.Sub(start) != bn.Sim.Propagation+300*time.Millisecond {
			t.Errorf("first arrival %+v after %v; want close_button after %v", in, in.at.Sub(start), bn.Sim.Propagation+300*time.Millisecond)
		}
		select {
		case in := <-c.got:
			t.Errorf("%+v reached the controller through a broken wire or a stuck pin", in)
		case <-time.After(time.Second):
		}
		if l, _ := bd.Level("R3"); l != gpio.Low {
			t.Errorf("stuck pin R3 = %v, want it unchanged (low)", l)
		}
	})
}

func TestInReleasesWaiterAndCloseStopsPins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bd, err := NewBoard(loadSim(t))
		if err != nil {
			t.Fatal(err)
		}
		s3 := mustPin(t, bd, "S3")
		_ = s3.In(gpio.PullUp, gpio.BothEdges)
		done := make(chan bool)
		go func() { done <- s3.WaitForEdge(-1) }()
		synctest.Wait()
		_ = s3.In(gpio.PullUp, gpio.BothEdges)
		if <-done {
			t.Error("WaitForEdge reported an edge when In was called")
		}
		if err := bd.Close(); err != nil {
			t.Fatal(err)
		}
		if err := mustPin(t, bd, "R1").Out(gpio.High); err == nil {
			t.Error("Out on a closed board succeeded")
		}
	})
}

func TestTransitionLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bd, err := NewBoard(loadSim(t))
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		r1 := mustPin(t, bd, "R1")
		_ = r1.Out(gpio.Low)
		_ = r1.Out(gpio.Low) // no change, not logged
		_ = r1.Out(gpio.High)
		log := bd.Log()
		if len(log) != 2 || log[0].Level != gpio.Low || log[1].Level != gpio.High || log[1].Pin != "R1" || log[1].Cause != "out" {
			t.Errorf("log = %v", log)
		}
	})
}

// Two changes closer together than the bounce span: the input ends at the second level, because
// the second change cuts the first one's bounce short. (The relay pin starts unconfigured with its
// contact open, so energising it is the first movement and releasing it the second.)
func TestQuickSecondChangeSupersedesBounce(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		synctest.Test(t, func(t *testing.T) {
			bn := loadSim(t)
			bn.Sim.Seed = seed
			bn.Sim.BounceSpan = 5 * time.Millisecond
			bd, err := NewBoard(bn)
			if err != nil {
				t.Fatal(err)
			}
			defer bd.Close()
			r8, s8 := mustPin(t, bd, "R8"), mustPin(t, bd, "S8")
			_ = s8.In(gpio.PullDown, gpio.BothEdges)
			_ = r8.Out(gpio.High)
			<-time.After(100 * time.Microsecond)
			_ = r8.Out(gpio.Low)
			<-time.After(50 * time.Millisecond)
			if s8.Read() != gpio.Low {
				t.Errorf("seed %d: loopback input settled %v after high then low 100µs apart, want low", seed, s8.Read())
			}
		})
	}
}

// A relay pin first configured at its released level (what opening a rig does) leaves the contact
// where it was: its loopback input sees no edge and no bounce, and the log shows no driven change.
// Energising it afterwards is the input's first edge.
func TestConfiguringARelayAtRestMovesNoContact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bn := loadSim(t)
		bd, err := NewBoard(bn)
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		r8, s8 := mustPin(t, bd, "R8"), mustPin(t, bd, "S8") // active high, input pulled down
		_ = s8.In(gpio.PullDown, gpio.BothEdges)
		_ = r8.Out(gpio.Low)
		_ = r8.Out(gpio.Low)
		if e, ok := s8.NextEdge(50 * time.Millisecond); ok {
			t.Fatalf("loopback input edge %v from a relay that never moved", e)
		}
		for _, tr := range bd.Log() {
			if tr.Pin == "S8" {
				t.Errorf("log has %v from a relay that never moved", tr)
			}
		}
		start := time.Now()
		_ = r8.Out(gpio.High)
		e, ok := s8.NextEdge(50 * time.Millisecond)
		if !ok || e.Level != gpio.High || e.At.Sub(start) != bn.Sim.Propagation {
			t.Errorf("after energising: edge %v ok %v, want high after %v", e, ok, bn.Sim.Propagation)
		}
	})
}

// An input driven to the level its pull already holds has not changed: no edge, as on a real pin.
func TestDrivingAnInputToItsLevelIsNoEdge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bd, err := NewBoard(loadSim(t))
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		s1 := mustPin(t, bd, "S1") // motor_open, pulled down
		_ = s1.In(gpio.PullDown, gpio.BothEdges)
		s1.drive(gpio.Low, time.Now())
		if e, ok := s1.NextEdge(10 * time.Millisecond); ok {
			t.Errorf("edge %v from a drive that left the level low", e)
		}
		s1.drive(gpio.High, time.Now())
		if e, ok := s1.NextEdge(10 * time.Millisecond); !ok || e.Level != gpio.High {
			t.Errorf("edge %v ok %v, want high", e, ok)
		}
	})
}
