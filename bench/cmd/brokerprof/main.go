// Command brokerprof profiles the reference broker under one benchmark workload: it embeds the
// broker in this process (broker.New), runs the workload with the load generator and writes CPU
// and allocation profiles, plus the Go runtime's memory figures for the idle workload.
//
// The load generator runs in the same process, so read the profiles with a focus on the broker:
//
//	go tool pprof -top -focus 'gatehouse/broker' cpu.pprof
//
// Example: go run ./cmd/brokerprof -case 'fan-in q1' -out /tmp/prof
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/bench/loadgen"
	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func main() {
	c := flag.String("case", "fan-in q1", "workload: fan-in qN, fan-out qN, latency qN or idle")
	out := flag.String("out", "prof", "`DIR` for cpu.pprof and allocs.pprof")
	dur := flag.Duration("duration", 3*time.Second, "publishing time")
	idle := flag.Int("idle", 10000, "idle connections")
	subs := flag.Int("subscribers", 1000, "fan-out subscribers")
	serve := flag.String("serve", "", "only serve on `ADDR` for -duration while profiling (drive it from another process, e.g. brokerbench -addr)")
	flag.Parse()
	if *serve != "" {
		if err := serveOnly(*serve, *out, *dur); err != nil {
			fmt.Fprintln(os.Stderr, "brokerprof:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*c, *out, *dur, *idle, *subs); err != nil {
		fmt.Fprintln(os.Stderr, "brokerprof:", err)
		os.Exit(1)
	}
}

func run(c, out string, dur time.Duration, idle, subs int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, err := broker.New(broker.Config{
		Listeners:      []broker.Listener{{Kind: broker.TCP, Addr: "127.0.0.1:0"}},
		AllowAnonymous: true,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = b.Shutdown(sctx)
	}()
	addr := b.Addr("").String()
	var src []net.IP
	for i := range 8 {
		src = append(src, net.IPv4(127, 0, 3, byte(2+i)))
	}

	if c == "idle" {
		return idleMem(ctx, addr, idle, src, out)
	}
	kind, q, _ := strings.Cut(c, " q")
	qos, err := strconv.Atoi(q)
	if err != nil {
		return fmt.Errorf("case %q: %w", c, err)
	}
	cpu, err := os.Create(filepath.Join(out, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	runtime.MemProfileRate = 64 << 10
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	var res loadgen.Result
	o := loadgen.Options{QoS: packet.QoS(qos), Publishers: 100, Subscribers: subs, Window: 10, Duration: dur, Sources: src}
	switch kind {
	case "fan-in":
		res, err = loadgen.FanIn(ctx, addr, o)
	case "fan-out":
		res, err = loadgen.FanOut(ctx, addr, o)
	case "latency":
		res, err = loadgen.Latency(ctx, addr, loadgen.LatencyOptions{Rate: 5000, QoS: packet.QoS(qos), Warmup: time.Second, Duration: dur, Sources: src})
	default:
		err = fmt.Errorf("case %q: unknown workload", c)
	}
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	if err := writeProfile("allocs", filepath.Join(out, "allocs.pprof")); err != nil {
		return err
	}
	fmt.Printf("%s: %.0f msg/s, %d/%d delivered, lost %d, p99 %s; profiles in %s\n", c, res.Rate, res.Delivered, res.Expected, res.Lost, res.P99, out)
	return nil
}

// serveOnly runs the broker alone on addr and profiles it for d, so that the profile holds the
// broker's work only, with the load coming from another process.
func serveOnly(addr, out string, d time.Duration) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, err := broker.New(broker.Config{
		Listeners:      []broker.Listener{{Kind: broker.TCP, Addr: addr}},
		AllowAnonymous: true,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		return err
	}
	fmt.Println("listening", b.Addr("").String())
	cpu, err := os.Create(filepath.Join(out, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	runtime.MemProfileRate = 64 << 10
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	t := time.NewTimer(d)
	<-t.C
	pprof.StopCPUProfile()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		return err
	}
	return writeProfile("allocs", filepath.Join(out, "allocs.pprof"))
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, 0)
}

// idleMem opens n idle connections and reports how the Go runtime's memory grew per connection.
func idleMem(ctx context.Context, addr string, n int, src []net.IP, out string) error {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rss()
	conns := make([]*loadgen.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range n {
		c, err := loadgen.Dial(ctx, addr, "idle-"+strconv.Itoa(i), loadgen.DialOptions{Source: src[i%len(src)], KeepAlive: 300, ReadBuffer: 256})
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // let the broker settle before reading its memory (not a test)
	for range 4 {
		// Stacks shrink by at most half per collection.
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	rss1 := rss()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	fmt.Printf("per connection (both ends in this process): heap in use %.0f B, stacks %.0f B, other sys %.0f B, RSS %.0f B, goroutines %d\n",
		per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse),
		per(after.Sys-after.HeapSys-after.StackSys, before.Sys-before.HeapSys-before.StackSys),
		float64(rss1-rss0)/float64(n), runtime.NumGoroutine())
	return writeProfile("heap", filepath.Join(out, "heap.pprof"))
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	_, _ = fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize())
}
