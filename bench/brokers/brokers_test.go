package brokers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/bench/loadgen"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

func TestParseVmRSS(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t    1234 kB\nThreads: 3\n", 1234 * 1024, false},
		{"Name:\tx\n", 0, true},
		{"VmRSS:\t12 MB\n", 0, true},
		{"VmRSS:\tmany kB\n", 0, true},
	}
	for _, tc := range cases {
		got, err := parseVmRSS([]byte(tc.in))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; utime and stime are fields 14 and 15.
	stat := "4242 (my (odd) broker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 1000 1 1"
	u, s, err := parseStatCPU([]byte(stat))
	if err != nil || u != 2500*time.Millisecond || s != 1300*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v, %v; want 2.5s, 1.3s", u, s, err)
	}
	if _, _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("parseStatCPU of a short line: no error")
	}
}

func TestMosquittoConfigNeverDropsQueuedMessages(t *testing.T) {
	conf := MosquittoConfig(18830, 100)
	for _, want := range []string{"listener 18830 127.0.0.1\n", "allow_anonymous true\n", "max_queued_messages 0\n", "max_inflight_messages 100\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(MosquittoConfig(1, 0), "max_inflight_messages") {
		t.Error("inflight 0 should leave mosquitto's default")
	}
}

// A real mosquitto started by Start accepts MQTT, reports its memory and CPU, and stops.
func TestStartMosquittoMeasuresAndStops(t *testing.T) {
	bin := testenv.Mosquitto(t)
	p, err := Start(t.Context(), Spec{Kind: Mosquitto, Bin: bin, Inflight: 50})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadgen.Dial(t.Context(), p.Addr, "probe", loadgen.DialOptions{})
	if err != nil {
		_ = p.Stop()
		t.Fatal(err)
	}
	_ = c.Disconnect()
	rss, rerr := p.RSS()
	_, _, cerr := p.CPUTime()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if rerr != nil || rss < 100<<10 {
		t.Fatalf("RSS = %d, %v; want a few hundred KB at least", rss, rerr)
	}
	if cerr != nil {
		t.Fatalf("CPUTime: %v", cerr)
	}
}

func TestStartReportsABrokerThatDies(t *testing.T) {
	// "false" exits at once: Start must say so instead of waiting for a listening line.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := Start(ctx, Spec{Kind: Mochi, Bin: "false"})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("Start of a broker that exits: %v, want 'exited before listening'", err)
	}
}

func TestStartRefusesAnUnknownKind(t *testing.T) {
	if _, err := Start(t.Context(), Spec{Kind: "emqx"}); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("Start of an unknown kind: %v", err)
	}
}
