// Package fleet runs many simulated devices against one broker: it builds them from groups
// (kind × count × settings), connects them at a bounded rate, routes faults and stimuli to them
// by ID, adds up their counters, and stops them cleanly.
//
// A fleet is reproducible from its Spec: device IDs come from templates, and every device's
// randomness (telemetry, fees, cards, plates, backoff jitter, failure draws) is seeded from
// Spec.Seed and the device ID.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/camera"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
	"github.com/gatehouse-iot/gatehouse/simulator/device/turnstile"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Fault is a named fault to inject into a device (see package fault for the kinds).
type Fault = fault.Fault

// Group is a set of devices of one kind with the same settings.
type Group struct {
	Kind  string `yaml:"kind" json:"kind"`
	Count int    `yaml:"count" json:"count"`
	// ID is the device ID template: {kind}, {site}, {n} (1-based within the group) and {n:0W}
	// (zero-padded to W digits). Default "{kind}-{n:03}".
	ID     string `yaml:"id,omitempty" json:"id,omitempty"`
	Site   string `yaml:"site,omitempty" json:"site,omitempty"`
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`

	Keepalive    time.Duration `yaml:"keepalive,omitempty" json:"keepalive,omitempty"`
	Telemetry    time.Duration `yaml:"telemetry,omitempty" json:"telemetry,omitempty"`
	CleanSession bool          `yaml:"clean_session,omitempty" json:"clean_session,omitempty"`
	BootTime     time.Duration `yaml:"boot_time,omitempty" json:"boot_time,omitempty"`
	AckLatency   time.Duration `yaml:"ack_latency,omitempty" json:"ack_latency,omitempty"`
	FailRate     float64       `yaml:"fail_rate,omitempty" json:"fail_rate,omitempty"`
	Firmware     string        `yaml:"firmware,omitempty" json:"firmware,omitempty"`
	Model        string        `yaml:"model,omitempty" json:"model,omitempty"`
	ReconnectMin time.Duration `yaml:"reconnect_min,omitempty" json:"reconnect_min,omitempty"`
	ReconnectMax time.Duration `yaml:"reconnect_max,omitempty" json:"reconnect_max,omitempty"`

	// Gate settings.
	Role       string        `yaml:"role,omitempty" json:"role,omitempty"`
	TravelTime time.Duration `yaml:"travel_time,omitempty" json:"travel_time,omitempty"`
	HoldTime   time.Duration `yaml:"hold_time,omitempty" json:"hold_time,omitempty"`
	FeeMin     int           `yaml:"fee_min,omitempty" json:"fee_min,omitempty"`
	FeeMax     int           `yaml:"fee_max,omitempty" json:"fee_max,omitempty"`
	Currency   string        `yaml:"currency,omitempty" json:"currency,omitempty"`

	// Turnstile settings.
	PassWindow time.Duration `yaml:"pass_window,omitempty" json:"pass_window,omitempty"`
	Cards      []string      `yaml:"cards,omitempty" json:"cards,omitempty"`

	// Camera settings.
	Plates       []string      `yaml:"plates,omitempty" json:"plates,omitempty"`
	MotionTime   time.Duration `yaml:"motion_time,omitempty" json:"motion_time,omitempty"`
	SnapshotSize int           `yaml:"snapshot_size,omitempty" json:"snapshot_size,omitempty"`
	MisreadRate  float64       `yaml:"misread_rate,omitempty" json:"misread_rate,omitempty"`
}

// Spec describes a whole fleet.
type Spec struct {
	Groups []Group `yaml:"groups" json:"groups"`
	Seed   uint64  `yaml:"seed,omitempty" json:"seed,omitempty"`
	// ConnectRate bounds new connections per second at start; 0 means unlimited.
	ConnectRate float64 `yaml:"connect_rate,omitempty" json:"connect_rate,omitempty"`
	// Broker is the broker URL (tcp://host:port or mqtt://host:port).
	Broker   string `yaml:"broker,omitempty" json:"broker,omitempty"`
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
}

// Option changes how a fleet runs.
type Option func(*options)

type options struct {
	clk       clock.Clock
	log       *slog.Logger
	observe   func(id string, m device.Message)
	publisher func(id string) device.Publisher
	shard     int
	shards    int
}

// WithClock gives every device the clock c.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clk = c } }

// WithLogger sets the logger of the fleet and its devices.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithObserver calls fn for every message any device hands to its client (from the device's
// loop: fn must be fast and safe for concurrent use).
func WithObserver(fn func(id string, m device.Message)) Option {
	return func(o *options) { o.observe = fn }
}

// WithPublisher gives each device a Publisher instead of an MQTT client: a fleet without a
// network, for dry runs and tests.
func WithPublisher(fn func(id string) device.Publisher) Option {
	return func(o *options) { o.publisher = fn }
}

// WithShard runs only the devices whose position in the fleet (0-based, in group order) is
// congruent to i modulo n, so that n processes (a Kubernetes Indexed Job) share one fleet.
func WithShard(i, n int) Option { return func(o *options) { o.shard, o.shards = i, n } }

// Fleet is a running set of devices.
type Fleet struct {
	ids     []string
	devices map[string]device.Device
	log     *slog.Logger
}

// Stats adds up the devices' counters.
type Stats struct {
	Devices int `json:"devices"`
	Online  int `json:"online"`
	device.Stats
}

// IDs returns the device IDs in fleet order.
func (f *Fleet) IDs() []string { return slices.Clone(f.ids) }

// Device returns a device by ID. A gate is a *gate.Gate (with SetInput and OnOutput).
func (f *Fleet) Device(id string) (device.Device, bool) {
	d, ok := f.devices[id]
	return d, ok
}

func (f *Fleet) get(id string) (device.Device, error) {
	d, ok := f.devices[id]
	if !ok {
		return nil, fmt.Errorf("fleet: no device %q", id)
	}
	return d, nil
}

// Inject applies a named fault to a device.
func (f *Fleet) Inject(id string, ft Fault) error {
	d, err := f.get(id)
	if err != nil {
		return err
	}
	f.log.Info("fault injected", "device", id, "fault", ft.String())
	return d.Inject(ft)
}

// Clear ends a fault on a device (power back, network back, ...).
func (f *Fleet) Clear(id, kind string) error {
	d, err := f.get(id)
	if err != nil {
		return err
	}
	f.log.Info("fault cleared", "device", id, "fault", kind)
	return d.Clear(kind)
}

// Stimulate applies an event of the physical world to a device.
func (f *Fleet) Stimulate(id string, s device.Stimulus) error {
	d, err := f.get(id)
	if err != nil {
		return err
	}
	return d.Stimulate(s)
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	st := Stats{Devices: len(f.ids)}
	for _, id := range f.ids {
		d := f.devices[id]
		if d.Online() {
			st.Online++
		}
		st.Add(d.Stats())
	}
	return st
}

// Start builds the fleet, connects it at the configured rate and returns when every device is
// online. If ctx ends first, it stops what it started and returns the error with how many devices
// made it.
func Start(ctx context.Context, s Spec, opts ...Option) (*Fleet, error) {
	o := options{clk: clock.Real(), shards: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	f, err := build(s, o)
	if err != nil {
		return nil, err
	}
	f.log.Info("fleet starting", "devices", len(f.ids), "seed", s.Seed, "broker", s.Broker, "connect_rate", s.ConnectRate)
	started := time.Now()
	if err := f.start(ctx, s.ConnectRate); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = f.Stop(stopCtx)
		return nil, err
	}
	f.log.Info("fleet online", "devices", len(f.ids), "elapsed", time.Since(started))
	return f, nil
}

// build checks the spec and constructs every device (not started).
func build(s Spec, o options) (*Fleet, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	if o.shards < 1 || o.shard < 0 || o.shard >= o.shards {
		return nil, fmt.Errorf("fleet: shard %d/%d: want 0 <= I < N", o.shard, o.shards)
	}
	if o.publisher == nil && s.Broker == "" {
		return nil, errors.New("fleet: no broker URL")
	}
	f := &Fleet{devices: make(map[string]device.Device), log: o.log}
	pos := 0
	for gi, g := range s.Groups {
		tmpl := g.ID
		if tmpl == "" {
			tmpl = "{kind}-{n:03}"
		}
		for n := 1; n <= g.Count; n++ {
			id, _ := ExpandID(tmpl, g.Kind, device.ExpandPrefix("{site}", g.Site), n) // checked by Validate
			mine := pos%o.shards == o.shard
			pos++
			if !mine {
				continue
			}
			d, err := newDevice(s, g, id, o)
			if err != nil {
				return nil, fmt.Errorf("fleet group %d (%s): %w", gi+1, g.Kind, err)
			}
			f.devices[id] = d
			f.ids = append(f.ids, id)
		}
	}
	return f, nil
}

func newDevice(s Spec, g Group, id string, o options) (device.Device, error) {
	cfg := device.Config{
		ID: id, Site: g.Site, Prefix: g.Prefix, Broker: s.Broker, Username: s.Username, Password: s.Password,
		Keepalive: g.Keepalive, Telemetry: g.Telemetry, CleanSession: g.CleanSession, BootTime: g.BootTime,
		ReconnectMin: g.ReconnectMin, ReconnectMax: g.ReconnectMax,
		Seed: s.Seed, Firmware: g.Firmware, Model: g.Model, AckLatency: g.AckLatency, FailRate: g.FailRate,
	}
	dopts := []device.Option{device.WithClock(o.clk), device.WithLogger(o.log)}
	if o.publisher != nil {
		dopts = append(dopts, device.WithPublisher(o.publisher(id)))
	}
	if o.observe != nil {
		dopts = append(dopts, device.WithObserver(func(m device.Message) { o.observe(id, m) }))
	}
	switch g.Kind {
	case device.KindGate:
		return gate.New(cfg, gate.Config{Role: g.Role, TravelTime: g.TravelTime, HoldTime: g.HoldTime,
			FeeMin: g.FeeMin, FeeMax: g.FeeMax, Currency: g.Currency}, dopts...)
	case device.KindTurnstile:
		return turnstile.New(cfg, turnstile.Config{PassWindow: g.PassWindow, Cards: g.Cards}, dopts...)
	default:
		return camera.New(cfg, camera.Config{Plates: g.Plates, MotionTime: g.MotionTime,
			SnapshotSize: g.SnapshotSize, MisreadRate: g.MisreadRate}, dopts...)
	}
}

// start starts the devices, paced by rate, and waits for all of them to be online.
func (f *Fleet) start(ctx context.Context, rate float64) error {
	begin := time.Now()
	for i, id := range f.ids {
		if rate > 0 && i > 0 {
			due := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("fleet: starting device %d of %d: %w", i+1, len(f.ids), ctx.Err())
				}
			}
		}
		if err := f.devices[id].Start(); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	for _, id := range f.ids {
		if err := f.devices[id].WaitOnline(ctx); err != nil {
			online := 0
			for _, d := range f.devices {
				if d.Online() {
					online++
				}
			}
			return fmt.Errorf("fleet: %d of %d devices online: %w", online, len(f.ids), err)
		}
	}
	return nil
}

// Stop disconnects every device cleanly (offline status, DISCONNECT) and waits for all their
// goroutines, at most until ctx ends.
func (f *Fleet) Stop(ctx context.Context) error {
	const workers = 32
	ids := make(chan string)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // protects errs
		errs []error
	)
	for range min(workers, len(f.ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := f.devices[id].Close(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range f.ids {
		ids <- id
	}
	close(ids)
	wg.Wait()
	f.log.Info("fleet stopped", "devices", len(f.ids), "errors", len(errs))
	return errors.Join(errs...)
}
