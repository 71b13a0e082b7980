package suite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil"
	"github.com/gatehouse-iot/gatehouse/hil/bench"
	"github.com/gatehouse-iot/gatehouse/hil/sim"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"go.uber.org/goleak"
)

// Ginkgo leaves its interrupt handler running after RunSpecs returns; it is Ginkgo's, not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

const simBench = "../../fixtures/benches/sim.yaml"

// TestHIL runs the Ginkgo HIL suite on the bench named by GATEHOUSE_BENCH (default: the simulated
// bench), exactly as `gatehouse hil` does.
func TestHIL(t *testing.T) {
	wd, _ := os.Getwd()
	path := BenchFromEnv(wd)
	b, err := bench.Load(path)
	if err == nil && b.Controller.Broker == "mosquitto" {
		testenv.Mosquitto(t)
	}
	var rec *report.Record
	Run(t, Config{BenchPath: path, ReportDir: t.TempDir(), Record: func(r *report.Record) { rec = r }})
	if rec == nil {
		t.Fatal("the suite produced no record")
	}
	if t.Failed() {
		return
	}
	// A pass must rest on measurements: every check measured something within its limit.
	if len(rec.Cases) != len(Checks) {
		t.Fatalf("record has %d cases, want %d", len(rec.Cases), len(Checks))
	}
	for _, c := range rec.Cases {
		if c.Outcome != report.Pass || len(c.Measurements) == 0 {
			t.Errorf("case %q: %s with %d measurements: %s", c.Name, c.Outcome, len(c.Measurements), c.Message)
		}
	}
}

// Each check, run against a simulated bench with one deliberate defect, must fail and say why.
func TestChecksCatchBenchDefects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check int
		fault sim.Fault
		want  string
	}{
		{"slow lock output", 0, sim.Fault{Kind: sim.SlowWire, Wire: "lock", Delay: 700 * time.Millisecond}, "command_to_lock = "},
		{"lock output not wired", 0, sim.Fault{Kind: sim.BrokenWire, Wire: "lock"}, "lock output never released"},
		{"open button not wired", 1, sim.Fault{Kind: sim.BrokenWire, Wire: "open_button"}, "no state \"opening\" published"},
		{"slow open button", 1, sim.Fault{Kind: sim.SlowWire, Wire: "open_button", Delay: 1500 * time.Millisecond}, "button_to_state = "},
		{"power relay not wired", 2, sim.Fault{Kind: sim.BrokenWire, Wire: "power"}, "no will {\"online\":false} published"},
		{"power relay driver stuck", 2, sim.Fault{Kind: sim.StuckOutput, Wire: "R5"}, "no will"},
		{"photo-eye not wired", 3, sim.Fault{Kind: sim.BrokenWire, Wire: "photo_eye"}, "the motor never reversed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each subtest has its own broker, controller and bench
			b, err := bench.Load(simBench)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := hil.Start(ctx, b, hil.Options{Faults: []sim.Fault{tc.fault}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			}()
			c := Checks[tc.check]
			res := runCheck(ctx, s, c)
			if !res.Failed() {
				t.Fatalf("check %q passed on a bench with %s; measurements %+v", c.Name, tc.name, res.Measurements)
			}
			if !strings.Contains(res.Problem(), tc.want) {
				t.Errorf("problem %q, want it to mention %q", res.Problem(), tc.want)
			}
		})
	}
}

// The checks hold with Debian's mosquitto between the controller and the suite as well as with
// the reference broker: they depend on the MQTT contract, not on one broker.
func TestChecksPassThroughMosquitto(t *testing.T) {
	testenv.Mosquitto(t)
	b, err := bench.Load(simBench)
	if err != nil {
		t.Fatal(err)
	}
	b.Controller.Broker = "mosquitto"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := hil.Start(ctx, b, hil.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, c := range Checks {
		res := runCheck(ctx, s, c)
		if res.Failed() || len(res.Measurements) == 0 {
			t.Errorf("%s: failed=%v %s (measurements %+v)", c.Name, res.Failed(), res.Problem(), res.Measurements)
		}
	}
	if ev := s.Rig.Events(); len(ev) != 0 {
		t.Errorf("safety events: %v", ev)
	}
}

// The same suite, given a bench file naming real GPIO drivers on a machine without them, fails
// with a message that says what is missing and what to check — not a panic, not a pass.
func TestRealBenchWithoutHardwareFailsClearly(t *testing.T) {
	for _, dev := range []string{"/dev/gpiochip0", "/sys/class/gpio", "/sys/bus/platform/drivers/raspberrypi-firmware"} {
		if _, err := os.Stat(dev); err == nil {
			t.Skipf("%s exists: this machine has GPIO hardware, so this test of its absence does not apply", dev)
		}
	}
	for _, tc := range []struct{ file, want string }{
		{"gpiochip-example.yaml", "/dev/gpiochip0 not found: GPIO hardware not found: is this a Raspberry Pi or another board with GPIO / is the gpio character device enabled (CONFIG_GPIO_CDEV)? run `ls /dev/gpiochip*`"},
		{"rpi-example.yaml", "rpi pin GPIO5: no Raspberry Pi detected"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path, _ := filepath.Abs(filepath.Join("../../fixtures/benches", tc.file))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHIL$", "-test.v")
			cmd.Env = append(os.Environ(), BenchEnv+"="+path)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed on %s without hardware:\n%s", tc.file, out)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("suite ended with %v, want exit status 1 (a failed test, not a crash):\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "panic:") {
				t.Errorf("the suite panicked:\n%s", out)
			}
		})
	}
}
