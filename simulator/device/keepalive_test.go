package device_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

// startGate starts an exit gate connected to broker and closes it when the test ends.
func startGate(t *testing.T, id, broker string, keepalive time.Duration) *gate.Gate {
	t.Helper()
	g, err := gate.New(device.Config{ID: id, Broker: broker, Keepalive: keepalive, Telemetry: -1,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond},
		gate.Config{Role: "exit", TravelTime: 100 * time.Millisecond, HoldTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

// An idle device keeps MQTT-3.1.2-23: the reference broker's trace of everything the device sent
// over several Keep Alive periods has no gap longer than the Keep Alive the CONNECT announced.
func TestIdleDeviceNeverExceedsItsKeepalive(t *testing.T) {
	for _, k := range []time.Duration{time.Second, 2 * time.Second} {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			b := brokertest.Start(t)
			id := fmt.Sprintf("gate-ka-%d", k/time.Second)
			g := startGate(t, id, b.URL(), k)
			from := b.Trace().Next()
			sent := brokertest.All(brokertest.Client(id), func(e brokertest.Event) bool { return e.Dir == broker.In })
			pings := brokertest.All(sent, brokertest.In(packet.TypePingreq))
			// Five PINGREQs: the device is idle (no telemetry, no commands) for about four periods.
			last := from
			for i := range 5 {
				e, err := b.Trace().WaitAfter(last, 4*k, pings)
				if err != nil {
					t.Fatalf("PINGREQ %d of 5: %v\n%s", i+1, err, b.Trace().Dump(20))
				}
				last = e.Seq + 1
			}
			evs := b.Trace().Packets(sent)
			c, ok := evs[0].Packet.(*packet.Connect)
			if !ok {
				t.Fatalf("the first packet of %s is %s, not CONNECT", id, evs[0])
			}
			if got := time.Duration(c.KeepAlive) * time.Second; got != k {
				t.Fatalf("CONNECT announces Keep Alive %s, the device is configured with %s", got, k)
			}
			longest, at := time.Duration(0), 0
			for i := 1; i < len(evs); i++ {
				if gap := evs[i].Time.Sub(evs[i-1].Time); gap > longest {
					longest, at = gap, i
				}
			}
			if longest > k {
				t.Fatalf("%s between %s and %s: longer than the Keep Alive %s (MQTT-3.1.2-23)", longest, evs[at-1], evs[at], k)
			}
			// The link counts a PINGREQ once its write returned, which may be after the broker
			// read it: the last one seen may not be counted yet.
			if s := g.Stats(); s.ConnectionsLost != 0 || s.Link.KeepaliveLosts != 0 || s.Link.Pingreqs < 4 {
				t.Fatalf("stats %+v: want one connection kept alive by the link's PINGREQs", s)
			}
			t.Logf("Keep Alive %s: longest gap %s over %d packets", k, longest, len(evs))
		})
	}
}
