package bench

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

const fixtures = "../../fixtures/benches"

// Each bad bench file states on its first line, after "# want: ", the error it must produce
// (line:column: path: message), so the file and its expectation cannot drift apart.
func TestBadBenchFilesNameTheirPlace(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad bench files found: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := wantLine(t, path)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted a bad bench file; want error %q", want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList: %v", err, err)
			}
			for _, e := range list {
				if strings.TrimPrefix(e.Error(), path+":") == want {
					return
				}
			}
			t.Errorf("errors:\n%v\nwant one to be:\n%s:%s", err, path, want)
		})
	}
}

func wantLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "# want: ") {
		t.Fatalf("%s: first line must be '# want: LINE:COL: message'", path)
	}
	return strings.TrimPrefix(sc.Text(), "# want: ")
}

func TestExampleBenchesLoad(t *testing.T) {
	for _, name := range []string{"sim.yaml", "rpi-example.yaml", "gpiochip-example.yaml", "sysfs-example.yaml"} {
		t.Run(name, func(t *testing.T) {
			b, err := Load(filepath.Join(fixtures, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Relays) != 6 || len(b.Inputs) != 4 || len(b.Drive) != 5 || len(b.Sense) != 3 {
				t.Errorf("relays %d inputs %d drive %d sense %d, want 6 4 5 3", len(b.Relays), len(b.Inputs), len(b.Drive), len(b.Sense))
			}
			if len(b.Interlocks) != 2 || len(b.Interlocks[0].Relays) != 2 || len(b.Interlocks[1].Inputs) != 2 {
				t.Errorf("interlocks = %+v, want one between relays and one between inputs", b.Interlocks)
			}
			if len(b.Loopbacks) != 1 {
				t.Errorf("loopbacks = %+v, want one", b.Loopbacks)
			}
		})
	}
}

func TestSimBenchValues(t *testing.T) {
	b, err := Load(filepath.Join(fixtures, "sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	power, ok := b.Relay("power")
	if !ok || power.Active != gpio.Low || power.Safe() != gpio.High || power.MaxPulse != 30*time.Second {
		t.Errorf("power relay = %+v", power)
	}
	w, ok := b.RelayFor("power")
	if !ok || w.Contact != NormallyClosed {
		t.Errorf("power wire = %+v, want normally closed", w)
	}
	lock, ok := b.Input("lock")
	if !ok || lock.Active != gpio.Low || lock.Pull != gpio.PullUp || lock.Debounce != 5*time.Millisecond || lock.Edge != gpio.BothEdges {
		t.Errorf("lock input = %+v", lock)
	}
	c := b.Controller
	if c.ClientID != "gate-hil" || c.Keepalive != time.Second || c.Prefix() != "acs/bench/gate/gate-hil" {
		t.Errorf("controller = %+v prefix %s", c, c.Prefix())
	}
	if b.Limits.CommandToLock != 500*time.Millisecond || b.Limits.WillFactor != 1.5 || b.Sim.Seed != 42 || b.Sim.Bounce != 3 {
		t.Errorf("limits %+v sim %+v", b.Limits, b.Sim)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	src := `name: two problems
controller: {kind: gate, site: lab, id: g1, broker: embedded, keepalive: 1s}
relays:
  - {name: a, driver: nope, pin: R1, max_pulse: 1s}
  - {name: b, driver: sim, pin: R2}
`
	_, err := Parse("two.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("got %v, want two errors", err)
	}
	if list[0].Line != 4 || list[1].Line != 5 {
		t.Errorf("errors not in file order: %v", err)
	}
}

func TestCanonicalPin(t *testing.T) {
	for _, tc := range []struct {
		d    Driver
		pin  string
		want string
	}{
		{RPi, "GPIO17", "GPIO17"},
		{RPi, "GPIO017", "GPIO17"},
		{RPi, "GPIO54", ""},
		{RPi, "P1_11", "P1_11"},
		{RPi, "P1_41", ""},
		{Sysfs, "17", "GPIO17"},
		{Sysfs, "GPIO17", "GPIO17"},
		{GPIOChip, "gpiochip0/17", "gpiochip0/17"},
		{GPIOChip, "gpiochip1/GPIO17", "gpiochip1/GPIO17"},
		{GPIOChip, "17", ""},
		{Sim, "R1", "R1"},
		{Sim, "r-1", ""},
	} {
		if got := canonicalPin(tc.d, tc.pin); got != tc.want {
			t.Errorf("canonicalPin(%s, %q) = %q, want %q", tc.d, tc.pin, got, tc.want)
		}
	}
}
