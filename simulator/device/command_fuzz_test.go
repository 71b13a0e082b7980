package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/devicetest"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
)

// FuzzCommandPayload sends arbitrary payloads as a command: every one is answered with a known
// result, and a rejection always says why.
func FuzzCommandPayload(f *testing.F) {
	for _, s := range []string{`{"corr":"1"}`, `{"corr":1}`, `{}`, `null`, `[`, `{"corr":"x","direction":"in"}`, "\xff"} {
		f.Add("open", []byte(s))
	}
	f.Add("allow_pass", []byte(`{"corr":"a"}`))
	g, err := gate.New(device.Config{ID: "gate-01", Telemetry: -1}, gate.Config{},
		device.WithClock(clock.NewFake(epoch)), device.WithPublisher(&devicetest.Recorder{}))
	if err != nil {
		f.Fatal(err)
	}
	if err := g.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		if name == "reboot" || name == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a, err := g.Do(ctx, name, payload)
		if err != nil {
			t.Fatal(err)
		}
		switch a.Result {
		case device.OK, device.Failed:
		case device.Rejected:
			if a.Reason == "" {
				t.Fatalf("%s %q rejected without a reason", name, payload)
			}
		default:
			t.Fatalf("%s %q: result %q", name, payload, a.Result)
		}
	})
}
