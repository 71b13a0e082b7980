package gate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/devicetest"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

var epoch = time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)

// bench is a gate on a fake clock with a recording publisher and an output log.
type bench struct {
	g   *gate.Gate
	clk *clock.Fake
	rec *devicetest.Recorder

	mu      sync.Mutex // protects outputs
	outputs []string
}

func newBench(gc gate.Config, opts ...func(*device.Config)) *bench {
	b := &bench{clk: clock.NewFake(epoch), rec: &devicetest.Recorder{}}
	cfg := device.Config{ID: "gate-01", Seed: 7, Telemetry: -1}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := gate.New(cfg, gc, device.WithClock(b.clk), device.WithPublisher(b.rec))
	Expect(err).NotTo(HaveOccurred())
	b.g = g
	g.OnOutput(func(terminal string, active bool, at time.Time) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.outputs = append(b.outputs, fmt.Sprintf("%s=%v@%s", terminal, active, at.Sub(epoch)))
	})
	Expect(g.Start()).To(Succeed())
	DeferCleanup(func() { Expect(g.Close(context.Background())).To(Succeed()) })
	Expect(g.Sync()).To(Succeed())
	return b
}

func (b *bench) advance(d time.Duration) {
	GinkgoHelper()
	Expect(devicetest.Advance(b.clk, d, b.g)).To(Succeed())
}

func (b *bench) state() map[string]any { return b.g.Snapshot().State }

func (b *bench) position() string { return b.state()["position"].(string) }

func (b *bench) outputLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.outputs, " ")
}

func (b *bench) do(name, payload string) device.Ack {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := b.g.Do(ctx, name, []byte(payload))
	Expect(err).NotTo(HaveOccurred())
	return a
}

func (b *bench) in(terminal string, active bool) {
	GinkgoHelper()
	Expect(b.g.SetInput(terminal, active)).To(Succeed())
}

var _ = Describe("gate state machine", func() {
	It("opens, holds, closes by itself, and drives motor and lock relays in order", func() {
		b := newBench(gate.Config{TravelTime: 3 * time.Second, HoldTime: 5 * time.Second})
		Expect(b.position()).To(Equal(gate.Closed))
		a := b.do("open", `{"corr":"c-1"}`)
		Expect(a.Result).To(Equal(device.OK))
		Expect(a.Corr).To(Equal("c-1"))
		Expect(b.position()).To(Equal(gate.Opening))
		b.advance(3 * time.Second)
		Expect(b.position()).To(Equal(gate.Open))
		b.advance(4 * time.Second)
		Expect(b.position()).To(Equal(gate.Open), "hold time not elapsed")
		b.advance(time.Second)
		Expect(b.position()).To(Equal(gate.Closing))
		b.advance(3 * time.Second)
		Expect(b.position()).To(Equal(gate.Closed))
		Expect(b.outputLog()).To(Equal(
			"lock=true@0s motor_open=true@0s motor_open=false@3s lock=false@8s motor_close=true@8s motor_close=false@11s"))
		Expect(b.rec.Last("/cmd/open/ack")).To(HaveKeyWithValue("corr", "c-1"))
		Expect(b.rec.Last("/state")).To(HaveKeyWithValue("position", "closed"))
	})

	It("reverses and reports an obstruction when the photo-eye is interrupted while closing", func() {
		b := newBench(gate.Config{})
		b.do("open", `{"corr":"1"}`)
		b.advance(8 * time.Second) // 3s travel + 5s hold
		Expect(b.position()).To(Equal(gate.Closing))
		b.in(gate.InPhotoEye, true)
		Expect(b.position()).To(Equal(gate.Opening))
		ev := b.rec.Last("/evt/obstruction")
		Expect(ev).To(HaveKeyWithValue("source", "photo_eye"))
		Expect(ev).To(HaveKeyWithValue("id", "gate-01"))
		Expect(ev).To(HaveKey("seq"))
		Expect(ev).To(HaveKey("ts"))
		b.advance(time.Minute)
		Expect(b.position()).To(Equal(gate.Open), "no auto-close while the beam is interrupted")
		b.in(gate.InPhotoEye, false)
		b.advance(5*time.Second + 3*time.Second)
		Expect(b.position()).To(Equal(gate.Closed))
	})

	It("keeps the barrier open while a vehicle is on the loop and reports its passage", func() {
		b := newBench(gate.Config{})
		b.do("open", `{"corr":"1"}`)
		b.advance(3 * time.Second)
		b.in(gate.InLoop, true)
		b.advance(time.Minute)
		Expect(b.position()).To(Equal(gate.Open))
		Expect(b.do("close", `{"corr":"2"}`).Result).To(Equal(device.Rejected))
		b.in(gate.InLoop, false)
		p := b.rec.Last("/evt/passage")
		Expect(p).To(HaveKeyWithValue("direction", "in"))
		Expect(b.rec.On("/evt/charge")).To(BeEmpty(), "an entry gate does not bill")
		b.advance(8 * time.Second)
		Expect(b.position()).To(Equal(gate.Closed))
	})

	It("does not count a vehicle that backs off a closed barrier", func() {
		b := newBench(gate.Config{})
		b.in(gate.InLoop, true)
		b.in(gate.InLoop, false)
		Expect(b.rec.On("/evt/passage")).To(BeEmpty())
	})

	It("bills each exit passage exactly once at QoS 2 with a seeded amount", func() {
		amounts := func() []any {
			b := newBench(gate.Config{Role: "exit", FeeMin: 100, FeeMax: 900})
			b.do("hold_open", `{"corr":"h"}`)
			b.advance(3 * time.Second)
			for range 3 {
				b.in(gate.InLoop, true)
				b.in(gate.InLoop, false)
			}
			charges := b.rec.On("/evt/charge")
			Expect(charges).To(HaveLen(3))
			passages := b.rec.On("/evt/passage")
			var out []any
			for i, c := range charges {
				Expect(c.QoS).To(Equal(byte(2)))
				Expect(c.Retain).To(BeFalse())
				body := devicetest.Decode(c.Payload)
				Expect(body["passage_seq"]).To(Equal(devicetest.Decode(passages[i].Payload)["seq"]))
				Expect(body["amount_cents"]).To(BeNumerically(">=", 100))
				Expect(body["amount_cents"]).To(BeNumerically("<=", 900))
				Expect(body["currency"]).To(Equal("EUR"))
				out = append(out, body["amount_cents"])
			}
			return out
		}
		first := amounts()
		Expect(amounts()).To(Equal(first), "same seed, same fees")
	})

	It("stays open under hold_open until release", func() {
		b := newBench(gate.Config{})
		Expect(b.do("hold_open", `{"corr":"h"}`).Result).To(Equal(device.OK))
		b.advance(time.Hour)
		Expect(b.position()).To(Equal(gate.Open))
		Expect(b.state()).To(HaveKeyWithValue("hold_open", true))
		Expect(b.do("release", `{"corr":"r"}`).Result).To(Equal(device.OK))
		b.advance(5*time.Second + 3*time.Second)
		Expect(b.position()).To(Equal(gate.Closed))
	})

	It("gets stuck half way when jammed, says so, and fails commands", func() {
		b := newBench(gate.Config{})
		Expect(b.g.Inject(fault.Fault{Kind: fault.Jam})).To(Succeed())
		a := b.do("open", `{"corr":"j"}`)
		Expect(a.Result).To(Equal(device.Failed))
		Expect(a.Reason).To(ContainSubstring("mechanical jam"))
		b.advance(time.Minute)
		Expect(b.position()).To(Equal(gate.Opening))
		Expect(b.rec.Last("/state")).To(HaveKeyWithValue("mode", "jammed"))
		ok, err := b.g.Output(gate.OutMotorOpen)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "the motor is cut on a jam")
		Expect(b.g.Clear(fault.Jam)).To(Succeed())
		b.advance(3 * time.Second)
		Expect(b.position()).To(Equal(gate.Open))
		Expect(b.rec.Last("/state")).To(HaveKeyWithValue("mode", "normal"))
	})

	It("freezes a stuck relay and reports the fault", func() {
		b := newBench(gate.Config{})
		Expect(b.g.Inject(fault.Fault{Kind: fault.StuckRelay, Params: map[string]any{"terminal": "lock"}})).To(Succeed())
		a := b.do("open", `{"corr":"s"}`)
		Expect(a.Result).To(Equal(device.Failed))
		Expect(a.Reason).To(ContainSubstring("relay lock stuck"))
		Expect(b.rec.Last("/state")).To(HaveKeyWithValue("mode", "fault"))
		Expect(b.outputLog()).To(BeEmpty())
		Expect(b.g.Inject(fault.Fault{Kind: fault.StuckRelay, Params: map[string]any{"terminal": "horn"}})).To(
			MatchError(ContainSubstring(`"horn" is not a gate output`)))
	})

	It("turns one loop edge into several when the contact bounces", func() {
		b := newBench(gate.Config{})
		b.do("hold_open", `{"corr":"h"}`)
		b.advance(3 * time.Second)
		b.in(gate.InLoop, true)
		Expect(b.g.Inject(fault.Fault{Kind: fault.Bounce, Params: map[string]any{"edges": 2, "interval": "2ms"}})).To(Succeed())
		b.in(gate.InLoop, false)
		b.advance(20 * time.Millisecond)
		Expect(b.rec.On("/evt/passage")).To(HaveLen(3), "the leaving edge and its two bounces each read as a passage")
		Expect(b.g.Clear(fault.Bounce)).To(Succeed())
		b.rec.Reset()
		b.in(gate.InLoop, true)
		b.in(gate.InLoop, false)
		b.advance(20 * time.Millisecond)
		Expect(b.rec.On("/evt/passage")).To(HaveLen(1))
	})

	It("opens on the open button like cmd/open but acks nothing", func() {
		b := newBench(gate.Config{})
		Expect(b.g.Stimulate(device.Stimulus{Kind: device.StimOpenButton})).To(Succeed())
		Expect(b.position()).To(Equal(gate.Opening))
		Expect(b.rec.On("/ack")).To(BeEmpty())
		Expect(b.g.SetInput(gate.InCloseButton, true)).To(Succeed())
		Expect(b.position()).To(Equal(gate.Closing))
	})

	It("rejects an unknown terminal by name", func() {
		b := newBench(gate.Config{})
		Expect(b.g.SetInput("horn", true)).To(MatchError(ContainSubstring(`unknown input terminal "horn"`)))
		_, err := b.g.Output("siren")
		Expect(err).To(MatchError(ContainSubstring(`unknown output terminal "siren"`)))
	})

	It("loses its state on a power cut and boots on power return", func() {
		b := newBench(gate.Config{})
		b.do("hold_open", `{"corr":"h"}`)
		b.advance(3 * time.Second)
		Expect(b.position()).To(Equal(gate.Open))
		b.in(gate.InPower, false)
		snap := b.g.Snapshot()
		Expect(snap.Powered).To(BeFalse())
		Expect(b.outputLog()).To(HaveSuffix("lock=false@3s"))
		Expect(b.g.Stimulate(device.Stimulus{Kind: device.StimVehicleArrive})).To(MatchError(device.ErrPoweredOff))
		b.rec.Reset()
		b.in(gate.InPower, true)
		Expect(b.position()).To(Equal(gate.Closed))
		Expect(b.rec.Last("/status")).To(HaveKeyWithValue("online", true))
		Expect(b.rec.Last("/status")).To(HaveKeyWithValue("boot", BeNumerically("==", 2)))
		Expect(b.rec.Last("/state")).To(HaveKeyWithValue("position", "closed"))
	})

	It("reacts to an output callback that feeds an input back without deadlock", func() {
		b := newBench(gate.Config{})
		// A bench wiring: when the lock releases, a vehicle is already waiting on the loop.
		b.g.OnOutput(func(terminal string, active bool, _ time.Time) {
			if terminal == gate.OutLock && active {
				Expect(b.g.SetInput(gate.InLoop, true)).To(Succeed())
			}
		})
		b.do("open", `{"corr":"1"}`)
		Expect(b.g.Sync()).To(Succeed())
		Expect(b.state()).To(HaveKeyWithValue("vehicle", true))
	})
})

var _ = Describe("gate commands", func() {
	DescribeTable("are acked with the reason when they do not apply or are malformed",
		func(name, payload string, result device.Result, reason string) {
			b := newBench(gate.Config{})
			a := b.do(name, payload)
			Expect(a.Result).To(Equal(result))
			Expect(a.Reason).To(ContainSubstring(reason))
			Expect(b.rec.On("/cmd/" + name + "/ack")).To(HaveLen(1))
		},
		Entry("allow_pass", "allow_pass", `{"corr":"1"}`, device.Rejected, "does not apply to a gate"),
		Entry("unknown", "fly", `{"corr":"1"}`, device.Rejected, "unknown command fly"),
		Entry("not JSON", "open", `open!`, device.Rejected, "malformed payload: invalid character"),
		Entry("not an object", "open", `[1]`, device.Rejected, "got a JSON array"),
		Entry("no corr", "open", `{}`, device.Rejected, "field corr is missing"),
		Entry("corr not a string", "open", `{"corr":5}`, device.Rejected, "corr must be a string"),
	)

	It("delays acks under slow_ack and shifts timestamps under clock_skew", func() {
		b := newBench(gate.Config{})
		Expect(b.g.Inject(fault.Fault{Kind: fault.SlowAck, Params: map[string]any{"latency": "2s"}})).To(Succeed())
		Expect(b.g.Inject(fault.Fault{Kind: fault.ClockSkew, Params: map[string]any{"offset": "-1h"}})).To(Succeed())
		done := make(chan device.Ack, 1)
		go func() {
			defer GinkgoRecover()
			a, err := b.g.Do(context.Background(), "open", []byte(`{"corr":"s"}`))
			Expect(err).NotTo(HaveOccurred())
			done <- a
		}()
		Eventually(b.clk.Pending).Should(BeNumerically(">=", 2)) // travel + ack timers
		Consistently(done, 50*time.Millisecond).ShouldNot(Receive())
		b.advance(2 * time.Second)
		var a device.Ack
		Eventually(done).Should(Receive(&a))
		Expect(a.TS).To(Equal("2026-03-01T06:00:02.000Z"), "fake now 07:00:02 minus one hour")
	})

	It("fails commands at the configured rate, reproducibly from the seed", func() {
		results := func() string {
			b := newBench(gate.Config{}, func(c *device.Config) { c.FailRate = 0.5 })
			var out []string
			for i := range 12 {
				out = append(out, string(b.do("open", fmt.Sprintf(`{"corr":"%d"}`, i)).Result))
			}
			return strings.Join(out, ",")
		}
		first := results()
		Expect(first).To(ContainSubstring("failed"))
		Expect(first).To(ContainSubstring("ok"))
		Expect(results()).To(Equal(first))
	})
})
