package selftest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/pins"
	"github.com/gatehouse-iot/gatehouse/hil/rig"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func load(t *testing.T, name string) *bench.Bench {
	t.Helper()
	b, err := bench.Load(filepath.Join("..", "..", "fixtures", "benches", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func simRig(t *testing.T, faults ...sim.Fault) *rig.Rig {
	t.Helper()
	b := load(t, "sim.yaml")
	bd, err := sim.NewBoard(b, faults...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := rig.Open(b, &pins.Opener{Sim: bd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); bd.Close() })
	return r
}

func TestSimBenchPinsAndLoopbackAnswer(t *testing.T) {
	b := load(t, "sim.yaml")
	bd, _ := sim.NewBoard(b)
	defer bd.Close()
	rep := CheckPins(b, &pins.Opener{Sim: bd})
	rep.Loops = CheckLoopbacks(context.Background(), simRig(t))
	if !rep.OK() || rep.Err() != nil {
		var buf bytes.Buffer
		rep.Write(&buf)
		t.Fatalf("self-test of the simulated bench failed:\n%s", buf.String())
	}
	if len(rep.Pins) != 10 || len(rep.Loops) != 1 || rep.Loops[0].Delay <= 0 {
		t.Errorf("pins %d loops %+v", len(rep.Pins), rep.Loops)
	}
}

func TestBrokenLoopbackFails(t *testing.T) {
	loops := CheckLoopbacks(context.Background(), simRig(t, sim.Fault{Kind: sim.BrokenWire, Wire: "selftest_out"}))
	if len(loops) != 1 || loops[0].Err == nil || !strings.Contains(loops[0].Err.Error(), "input never became active") {
		t.Fatalf("loopbacks = %+v, want a failure saying the input never became active", loops)
	}
	rep := &Report{Loops: loops}
	if rep.OK() || !strings.Contains(rep.Err().Error(), "loopback selftest_out → selftest_in") {
		t.Errorf("report OK=%v err=%v", rep.OK(), rep.Err())
	}
}

func TestMissingHardwareListsEveryPin(t *testing.T) {
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Skip("/dev/gpiochip0 exists: this machine has GPIO hardware")
	}
	rep := CheckPins(load(t, "gpiochip-example.yaml"), &pins.Opener{})
	var buf bytes.Buffer
	rep.Write(&buf)
	out := buf.String()
	if rep.OK() || strings.Count(out, "FAIL") != 10 || !strings.Contains(out, "/dev/gpiochip0 not found") || !strings.Contains(out, "periph host drivers:") {
		t.Errorf("report:\n%s\nwant 10 failing pins naming /dev/gpiochip0 and the driver list", out)
	}
}

// The loopback pulse at every moment of the bench's first milliseconds, as gatehouse hil runs it:
// the rig opens (each relay pin set to its released level), the pins are checked, the pulse goes
// out. Wherever it lands, the input must become active exactly one wire delay after the relay is
// energised. A pulse that landed while the input was still taking the level the rig opened it
// with was measured from the wrong edge, or not seen at all ("input never became active").
func TestLoopbackAtAnyMomentAfterOpen(t *testing.T) {
	for _, seed := range []int64{1, 42, 99} {
		for at := time.Duration(0); at <= 6*time.Millisecond; at += 250 * time.Microsecond {
			t.Run(fmt.Sprintf("seed=%d/at=%v", seed, at), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := load(t, "sim.yaml")
					b.Sim.Seed = seed
					bd, err := sim.NewBoard(b)
					if err != nil {
						t.Fatal(err)
					}
					defer bd.Close()
					r, err := rig.Open(b, &pins.Opener{Sim: bd})
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					<-time.After(at)
					rep := CheckPins(b, &pins.Opener{Sim: bd})
					rep.Loops = CheckLoopbacks(context.Background(), r)
					if err := rep.Err(); err != nil || rep.Loops[0].Delay != b.Sim.Propagation {
						var buf bytes.Buffer
						rep.Write(&buf)
						t.Errorf("seed %d, pulse %v after open: delay %v, want the wire's %v; err %v\n%s", seed, at, rep.Loops[0].Delay, b.Sim.Propagation, err, buf.String())
					}
				})
			})
		}
	}
}

// A relay left energised (an earlier run that died, a bench wired by hand) is released when the rig
// opens, and its input falls a moment later. The pulse waits for that fall instead of being
// measured against it.
func TestLoopbackAfterARelayLeftEnergised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := load(t, "sim.yaml")
		bd, err := sim.NewBoard(b)
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		r8, err := bd.Pin("R8")
		if err != nil {
			t.Fatal(err)
		}
		if err := r8.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		<-time.After(10 * time.Millisecond) // the input has followed the relay
		r, err := rig.Open(b, &pins.Opener{Sim: bd})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		loops := CheckLoopbacks(context.Background(), r)
		if len(loops) != 1 || loops[0].Err != nil || loops[0].Delay != b.Sim.Propagation {
			t.Errorf("loopbacks = %+v, want one passing in the wire's %v", loops, b.Sim.Propagation)
		}
	})
}

// An input that reads active with its relay released (here pulled up, active high, the wire
// broken) is reported as that, not as an input that never became active.
func TestLoopbackInputActiveAtRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := load(t, "sim.yaml")
		for i := range b.Inputs {
			if b.Inputs[i].Name == "selftest_in" {
				b.Inputs[i].Pull = gpio.PullUp
			}
		}
		bd, err := sim.NewBoard(b, sim.Fault{Kind: sim.BrokenWire, Wire: "selftest_out"})
		if err != nil {
			t.Fatal(err)
		}
		defer bd.Close()
		r, err := rig.Open(b, &pins.Opener{Sim: bd})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		loops := CheckLoopbacks(context.Background(), r)
		want := "relay released, input not settled inactive (check the loopback wire and the input's active level and pull): input selftest_in: not settled inactive, still active"
		if len(loops) != 1 || loops[0].Err == nil || !strings.Contains(loops[0].Err.Error(), want) {
			t.Errorf("loopbacks = %+v, want an error containing %q", loops, want)
		}
	})
}
