package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startBroker runs the reference broker in process on a free loopback port. Its QoS 0 queues
// are deep enough that a subscriber slowed down by the race detector loses nothing, so that any
// loss the tests see is the one they cause.
func startBroker(t *testing.T, faults ...broker.FaultRule) string {
	t.Helper()
	b, err := broker.New(broker.Config{
		Listeners:      []broker.Listener{{Kind: broker.TCP, Addr: "127.0.0.1:0"}},
		AllowAnonymous: true,
		MaxQueued:      1 << 20,
		Faults:         faults,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return b.Addr("").String()
}

func small(q packet.QoS) Options {
	return Options{QoS: q, Publishers: 4, Subscribers: 4, Window: 4, Duration: 200 * time.Millisecond, Drain: 500 * time.Millisecond}
}

func TestFanInDeliversEveryMessageOfEveryQoS(t *testing.T) {
	addr := startBroker(t)
	for q := range packet.QoS(3) {
		t.Run("qos"+strconv.Itoa(int(q)), func(t *testing.T) {
			res, err := FanIn(t.Context(), addr, small(q))
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent == 0 || res.Expected != res.Sent || res.Delivered != res.Expected || res.Lost != 0 {
				t.Fatalf("sent %d, expected %d, delivered %d, lost %d: want every message delivered", res.Sent, res.Expected, res.Delivered, res.Lost)
			}
			if res.Duplicates != 0 || res.OutOfOrder != 0 || res.Rate <= 0 {
				t.Fatalf("duplicates %d, out of order %d, rate %.0f", res.Duplicates, res.OutOfOrder, res.Rate)
			}
		})
	}
}

func TestFanOutExpectsOneDeliveryPerSubscriber(t *testing.T) {
	addr := startBroker(t)
	res, err := FanOut(t.Context(), addr, small(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Expected != 4*res.Sent || res.Delivered != res.Expected || res.Lost != 0 {
		t.Fatalf("sent %d, expected %d, delivered %d, lost %d: want 4 deliveries per message", res.Sent, res.Expected, res.Delivered, res.Lost)
	}
}

// A broker that delivers every QoS 2 message twice (fault duplicate-qos2) is caught.
func TestFanInCountsDuplicates(t *testing.T) {
	addr := startBroker(t, broker.FaultRule{Fault: broker.FaultDuplicateQoS2})
	res, err := FanIn(t.Context(), addr, small(2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != res.Sent || res.Lost != 0 {
		t.Fatalf("sent %d, duplicates %d, lost %d: want every message counted once as a duplicate", res.Sent, res.Duplicates, res.Lost)
	}
}

// A broker that swaps messages in pairs (fault no-message-order) is caught.
func TestFanInCountsReordering(t *testing.T) {
	addr := startBroker(t, broker.FaultRule{Fault: broker.FaultNoMessageOrder})
	res, err := FanIn(t.Context(), addr, small(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.OutOfOrder == 0 || res.Lost != 0 {
		t.Fatalf("out of order %d, lost %d: want reordering counted and nothing lost", res.OutOfOrder, res.Lost)
	}
}

// Losing every 10th PUBLISH on the way to the subscriber is counted as exactly that loss.
func TestFanInCountsMessagesLostOnTheWay(t *testing.T) {
	addr := dropProxy(t, startBroker(t), 10)
	o := small(0)
	res, err := FanIn(t.Context(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := res.Sent / 10; res.Lost != want || res.Delivered != res.Sent-want {
		t.Fatalf("sent %d, delivered %d, lost %d: want %d lost", res.Sent, res.Delivered, res.Lost, want)
	}
}

// dropProxy forwards connections to addr, dropping every nth PUBLISH sent to clients whose
// CONNECT names a subscriber ("sub-...").
func dropProxy(t *testing.T, addr string, nth int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				_ = down.Close()
				continue
			}
			sub := make(chan bool, 1)
			wg.Go(func() {
				defer up.Close()
				r := &Conn{nc: down, rbuf: make([]byte, 64<<10)}
				first := true
				for {
					h, body, err := r.Next()
					if err != nil {
						return
					}
					if first {
						var c packet.Connect
						_ = c.Unmarshal(h, body, 0)
						sub <- strings.HasPrefix(c.ClientID, "sub-")
						first = false
					}
					if _, err := up.Write(frame(h, body)); err != nil {
						return
					}
				}
			})
			wg.Go(func() {
				defer down.Close()
				isSub := <-sub
				r := &Conn{nc: up, rbuf: make([]byte, 64<<10)}
				n := 0
				for {
					h, body, err := r.Next()
					if err != nil {
						return
					}
					if isSub && h.Type == packet.TypePublish {
						n++
						if n%nth == 0 {
							continue
						}
					}
					if _, err := down.Write(frame(h, body)); err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

func frame(h packet.FixedHeader, body []byte) []byte {
	b := []byte{byte(h.Type)<<4 | h.Flags}
	b = packet.AppendVarint(b, len(body))
	return append(b, body...)
}

func TestLatencyMeasuresEveryMessageAfterTheWarmup(t *testing.T) {
	addr := startBroker(t)
	res, err := Latency(t.Context(), addr, LatencyOptions{Rate: 1000, Publishers: 2, QoS: 1, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Sent < 300 || res.Samples == 0 || res.Samples >= int(res.Sent) {
		t.Fatalf("sent %d, lost %d, samples %d: want samples of the messages after the warm-up only", res.Sent, res.Lost, res.Samples)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Fatalf("p50 %v, p99 %v, max %v: want 0 < p50 <= p99 <= max", res.P50, res.P99, res.Max)
	}
}

func TestIdleHoldsConnectionsAndReadsMemoryBeforeAndAfter(t *testing.T) {
	addr := startBroker(t)
	reads := 0
	rss := func() (int64, error) { reads++; return int64(reads) * 1000 * 1024, nil }
	res, err := Idle(t.Context(), addr, IdleOptions{Connections: 50, Concurrency: 8, RSS: rss})
	if err != nil {
		t.Fatal(err)
	}
	if res.Alive != 50 || reads != 2 || res.BytesPerConn != 1000*1024/50.0 || res.ConnectTime <= 0 {
		t.Fatalf("alive %d, memory reads %d, bytes per connection %.1f, connect time %v", res.Alive, reads, res.BytesPerConn, res.ConnectTime)
	}
}

func TestIdleFailsWhenTheBrokerRefuses(t *testing.T) {
	b, err := broker.New(broker.Config{
		Listeners: []broker.Listener{{Kind: broker.TCP, Addr: "127.0.0.1:0"}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}) // anonymous clients refused
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Shutdown(context.Background()) }()
	_, err = Idle(t.Context(), b.Addr("").String(), IdleOptions{Connections: 3, RSS: func() (int64, error) { return 0, nil }})
	if err == nil || !strings.Contains(err.Error(), "CONNACK refused") {
		t.Fatalf("Idle against a broker refusing anonymous clients: %v, want CONNACK refused", err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("refusal reported as a timeout")
	}
}
