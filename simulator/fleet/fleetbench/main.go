// Command fleetbench measures a large simulated fleet against a broker: how long the fleet
// takes to come online, the CPU and memory it uses per device, and the message rates it
// sustains. By default it starts the reference broker as a separate process (gatehouse broker),
// so that the fleet and the broker each have their own file-descriptor budget and their CPU can be
// told apart.
//
//	go build -o bin/gatehouse ./cmd/gatehouse
//	go run ./simulator/fleet/fleetbench -gatehouse bin/gatehouse -devices 10000 -duration 60s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// Result is what one run measured.
type Result struct {
	Devices            int        `json:"devices"`
	Gates              int        `json:"gates"`
	Turnstiles         int        `json:"turnstiles"`
	Cameras            int        `json:"cameras"`
	Keepalive          string     `json:"keepalive"`
	Telemetry          string     `json:"telemetry"`
	ConnectRate        float64    `json:"connect_rate"`
	ConnectSeconds     float64    `json:"connect_seconds"`
	SteadySeconds      float64    `json:"steady_seconds"`
	StopSeconds        float64    `json:"stop_seconds"`
	FleetCPUPercent    float64    `json:"fleet_cpu_percent"`  // of one core, steady phase, this process
	BrokerCPUPercent   float64    `json:"broker_cpu_percent"` // of one core, steady phase, broker process (-1 if external)
	HeapBytesPerDevice float64    `json:"heap_bytes_per_device"`
	SysBytesPerDevice  float64    `json:"sys_bytes_per_device"`
	GoroutinesPerDev   float64    `json:"goroutines_per_device"`
	PublishedPerSec    [3]float64 `json:"published_per_sec_by_qos"`
	DeliveredPerSec    float64    `json:"delivered_per_sec"` // to one platform subscriber of acs/#
	StimuliPerSec      float64    `json:"stimuli_per_sec"`
	Reconnects         uint64     `json:"reconnects"`
	ConnectionsLost    uint64     `json:"connections_lost"`
	Dropped            uint64     `json:"dropped"`
	Seed               uint64     `json:"seed"`
	GoVersion          string     `json:"go_version"`
	CPUs               int        `json:"cpus"`
}

func main() {
	var (
		devices     = flag.Int("devices", 10000, "devices in the fleet (30% gates, 60% turnstiles, 10% cameras)")
		duration    = flag.Duration("duration", 60*time.Second, "steady phase after the fleet is online")
		keepalive   = flag.Duration("keepalive", 30*time.Second, "device keepalive")
		telemetry   = flag.Duration("telemetry", 10*time.Second, "telemetry period")
		connectRate = flag.Float64("connect-rate", 0, "connections per second at start, 0 = unlimited")
		stimuli     = flag.Float64("stimuli", 100, "physical events per second across the fleet (card swipes, passages, motion)")
		brokerURL   = flag.String("broker", "", "broker URL; empty starts `gatehouse broker` as a child process")
		gatehouse   = flag.String("gatehouse", "bin/gatehouse", "path of the gatehouse binary that runs the broker")
		out         = flag.String("json", "", "also write the result as JSON to this file")
		seed        = flag.Uint64("seed", 1, "fleet seed")
	)
	flag.Parse()
	if err := raiseFileLimit(*devices + 512); err != nil {
		log.Fatalf("fleetbench: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, *devices, *duration, *keepalive, *telemetry, *connectRate, *stimuli, *brokerURL, *gatehouse, *seed)
	if err != nil {
		log.Fatalf("fleetbench: %v", err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(b))
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatalf("fleetbench: %v", err)
		}
	}
}

func run(ctx context.Context, n int, steady, keepalive, telemetry time.Duration, rate, stimuli float64, url, bin string, seed uint64) (Result, error) {
	res := Result{Devices: n, Keepalive: keepalive.String(), Telemetry: telemetry.String(), ConnectRate: rate,
		Seed: seed, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), BrokerCPUPercent: -1}
	brokerPID := 0
	if url == "" {
		addr, pid, stopBroker, err := startBroker(bin)
		if err != nil {
			return res, err
		}
		defer stopBroker()
		url, brokerPID = "tcp://"+addr, pid
	}
	res.Gates, res.Turnstiles = n*3/10, n*6/10
	res.Cameras = n - res.Gates - res.Turnstiles
	spec := fleet.Spec{Seed: seed, Broker: url, ConnectRate: rate, Groups: []fleet.Group{
		{Kind: "gate", Count: res.Gates, Keepalive: keepalive, Telemetry: telemetry, Role: "exit"},
		{Kind: "turnstile", Count: res.Turnstiles, Keepalive: keepalive, Telemetry: telemetry},
		{Kind: "camera", Count: res.Cameras, Keepalive: keepalive, Telemetry: telemetry, SnapshotSize: 16 << 10},
	}}

	var delivered atomic.Uint64
	platform, err := subscribe(url, &delivered)
	if err != nil {
		return res, err
	}
	defer platform.Disconnect(250)

	heap0, sys0 := memory()
	g0 := runtime.NumGoroutine()
	began := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	fl, err := fleet.Start(startCtx, spec)
	if err != nil {
		return res, err
	}
	res.ConnectSeconds = time.Since(began).Seconds()
	log.Printf("fleetbench: %d devices online in %.2fs", n, res.ConnectSeconds)
	heap1, sys1 := memory()
	res.HeapBytesPerDevice = float64(heap1-heap0) / float64(n)
	res.SysBytesPerDevice = float64(sys1-sys0) / float64(n)
	res.GoroutinesPerDev = float64(runtime.NumGoroutine()-g0) / float64(n)

	st0, cpu0, bcpu0, d0 := fl.Stats(), selfCPU(), procCPU(brokerPID), delivered.Load()
	t0 := time.Now()
	sent := drive(ctx, fl, steady, stimuli, seed)
	wall := time.Since(t0).Seconds()
	st1, cpu1, bcpu1, d1 := fl.Stats(), selfCPU(), procCPU(brokerPID), delivered.Load()
	res.SteadySeconds = wall
	res.FleetCPUPercent = 100 * (cpu1 - cpu0).Seconds() / wall
	if brokerPID != 0 {
		res.BrokerCPUPercent = 100 * (bcpu1 - bcpu0).Seconds() / wall
	}
	for q := range 3 {
		res.PublishedPerSec[q] = float64(st1.Published[q]-st0.Published[q]) / wall
	}
	res.DeliveredPerSec = float64(d1-d0) / wall
	res.StimuliPerSec = float64(sent) / wall
	res.Reconnects, res.ConnectionsLost = st1.Reconnects, st1.ConnectionsLost
	res.Dropped = st1.Dropped + st1.TelemetryDropped

	stopped := time.Now()
	stopCtx, cancel2 := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel2()
	if err := fl.Stop(stopCtx); err != nil {
		return res, err
	}
	res.StopSeconds = time.Since(stopped).Seconds()
	return res, nil
}

// drive applies seeded physical events to random devices for the steady phase.
func drive(ctx context.Context, fl *fleet.Fleet, d time.Duration, perSec float64, seed uint64) int {
	ids := fl.IDs()
	r := rand.New(rand.NewPCG(seed, 99))
	end := time.After(d)
	if perSec <= 0 {
		select {
		case <-end:
		case <-ctx.Done():
		}
		return 0
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-end:
			return sent
		case <-ctx.Done():
			return sent
		case <-tick.C:
			id := ids[r.IntN(len(ids))]
			var s device.Stimulus
			switch {
			case strings.HasPrefix(id, "turnstile"):
				s = device.Stimulus{Kind: device.StimCard}
			case strings.HasPrefix(id, "camera"):
				s = device.Stimulus{Kind: device.StimPlate}
			default:
				s = device.Stimulus{Kind: device.StimOpenButton}
			}
			if fl.Stimulate(id, s) == nil {
				sent++
			}
		}
	}
}

func subscribe(url string, n *atomic.Uint64) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("fleetbench-platform").SetCleanSession(true).
		SetAutoReconnect(false).SetOrderMatters(false).SetMessageChannelDepth(10000)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("platform connect: %w", errOr(t.Error()))
	}
	if t := c.Subscribe("acs/#", 0, func(mqtt.Client, mqtt.Message) { n.Add(1) }); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("platform subscribe: %w", errOr(t.Error()))
	}
	return c, nil
}

func errOr(err error) error {
	if err == nil {
		return errors.New("timed out")
	}
	return err
}

// startBroker runs `gatehouse broker` on a free loopback port and returns its address.
func startBroker(bin string) (string, int, func(), error) {
	cmd := exec.Command(bin, "broker", "--listen", "127.0.0.1:0", "--allow-anonymous", "--log-level", "error")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start %s broker (build it with: go build -o bin/gatehouse ./cmd/gatehouse): %w", bin, err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	lines := bufio.NewScanner(stdout)
	addrc := make(chan string, 1)
	go func() {
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) == 4 && f[0] == "listening" {
				addrc <- f[3]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addrc:
		return a, cmd.Process.Pid, stop, nil
	case <-time.After(20 * time.Second):
		stop()
		return "", 0, nil, errors.New("the broker printed no listening line within 20s")
	}
}

func memory() (heap, sys uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.Sys
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime+stime of another process from /proc (Linux), 0 when unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stt) * time.Second / 100 // USER_HZ is 100 on Linux
}

// raiseFileLimit lifts the soft limit on open files towards need (up to the hard limit).
func raiseFileLimit(need int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= uint64(need) {
		return nil
	}
	if rl.Max < uint64(need) {
		return fmt.Errorf("%d devices need %d open files but the hard limit is %d (ulimit -Hn)", need-512, need, rl.Max)
	}
	rl.Cur = uint64(need)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
}
