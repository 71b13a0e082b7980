package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device/link"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// inboxSize bounds the work waiting for a device's loop; posters block (backpressure) rather
// than lose a command.
const inboxSize = 64

// Sim runs one Machine in one event loop goroutine and connects it to a broker.
type Sim struct {
	cfg     Config
	m       Machine
	topics  Topics
	clk     clock.Clock
	pub     Publisher
	observe func(Message)
	log     *slog.Logger
	wire    *fault.Wire
	link    *link.Link // keepalive and QoS 2 session state below the client, for every connection

	inbox    chan func()
	stopping chan struct{} // closed when Close begins: posts are refused from then on
	done     chan struct{} // closed when the loop has returned
	wg       sync.WaitGroup
	started  atomic.Bool
	closing  sync.Once

	// inCallback is set while the loop runs output callbacks, so that a callback that feeds an
	// input back (a wired bench) queues it instead of waiting for the busy loop.
	inCallback atomic.Bool

	mu       sync.Mutex // protects online, onlineCh, outputs, last and stats
	online   bool
	onlineCh chan struct{} // closed while online
	outputs  []func(terminal string, active bool, at time.Time)
	last     Snapshot // the snapshot taken when the loop stopped
	stats    Stats

	// Everything below is owned by the loop goroutine.
	powered bool
	seq     uint64
	boots   int
	// Separate seeded streams, so that the data a machine draws (cards, plates, fees) does not
	// depend on how many telemetry ticks or reconnections happened before: with real network
	// timing those vary from run to run, the machine's sequence of stimuli does not.
	rng         *rand.Rand             // the machine's data
	failRng     *rand.Rand             // fail_rate draws
	telRng      *rand.Rand             // telemetry values and spreading
	netRng      *rand.Rand             // reconnect jitter
	timers      map[uint64]clock.Timer // volatile timers, stopped when the power goes
	faultTimers map[string]clock.Timer // automatic clearing of faults with a Duration
	nextTimer   uint64
	faults      map[string]fault.Fault
	client      mqtt.Client
	onMessage   mqtt.MessageHandler
	connGen     uint64 // identifies the current connection attempt; stale callbacks are ignored
	connecting  bool
	up          bool // the MQTT connection is established (online follows once the status is acked)
	everOnline  bool
	attempt     int
	store       mqtt.Store
	outbox      []Message
	bootAt      time.Time
	tempC       float64
}

var _ Device = (*Sim)(nil)

// New builds a device from its configuration and state machine. It does not start it.
func New(cfg Config, m Machine, opts ...Option) (*Sim, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = m.Model()
	}
	s := &Sim{
		cfg:         cfg,
		m:           m,
		topics:      Topics{Prefix: ExpandPrefix(cfg.Prefix, cfg.Site), Kind: m.Kind(), ID: cfg.ID},
		clk:         clock.Real(),
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		wire:        fault.NewWire(),
		link:        link.New(link.Config{Keepalive: cfg.Keepalive}),
		inbox:       make(chan func(), inboxSize),
		stopping:    make(chan struct{}),
		done:        make(chan struct{}),
		onlineCh:    make(chan struct{}),
		timers:      make(map[uint64]clock.Timer),
		faultTimers: make(map[string]clock.Timer),
		faults:      make(map[string]fault.Fault),
		rng:         rand.New(rand.NewPCG(cfg.Seed, idHash(cfg.ID))),
		failRng:     rand.New(rand.NewPCG(cfg.Seed, idHash(cfg.ID)^0x6661696c)),
		telRng:      rand.New(rand.NewPCG(cfg.Seed, idHash(cfg.ID)^0x74656c65)),
		netRng:      rand.New(rand.NewPCG(cfg.Seed, idHash(cfg.ID)^0x6e657477)),
		tempC:       21,
	}
	for _, o := range opts {
		o(s)
	}
	if s.pub == nil && cfg.Broker == "" {
		return nil, fmt.Errorf("device %s: no broker URL and no publisher", cfg.ID)
	}
	return s, nil
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

// ID returns the device ID.
func (s *Sim) ID() string { return s.cfg.ID }

// Kind returns the device kind.
func (s *Sim) Kind() string { return s.m.Kind() }

// Topics returns the device's topics.
func (s *Sim) Topics() Topics { return s.topics }

// Config returns the device's configuration with defaults applied.
func (s *Sim) Config() Config { return s.cfg }

// Wire returns the device's network path (for tests that look at wire counters).
func (s *Sim) Wire() *fault.Wire { return s.wire }

// Start starts the loop and powers the device on.
func (s *Sim) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("device %s: already started", s.cfg.ID)
	}
	s.spawn(s.run)
	return s.Exec(func(Env) error {
		s.powerOn(s.cfg.BootTime)
		return nil
	})
}

// spawn starts a goroutine owned by the device, registered before it starts.
func (s *Sim) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

func (s *Sim) run() {
	defer close(s.done)
	for {
		select {
		case f := <-s.inbox:
			f()
		case <-s.stopping:
			s.shutdown()
			return
		}
	}
}

// post queues f for the loop. It returns false once the device is stopping.
func (s *Sim) post(f func()) bool {
	select {
	case <-s.stopping:
		return false
	default:
	}
	select {
	case s.inbox <- f:
		return true
	case <-s.stopping:
		return false
	}
}

// Exec runs fn on the loop with the device's Env and returns its error. Kind packages build their
// own synchronous operations with it (a gate's SetInput). Called from an output callback, it
// queues fn and returns nil without waiting.
func (s *Sim) Exec(fn func(env Env) error) error {
	if !s.started.Load() {
		return fmt.Errorf("device %s: not started", s.cfg.ID)
	}
	if s.inCallback.Load() {
		if !s.post(func() { _ = fn(s.env()) }) {
			return ErrClosed
		}
		return nil
	}
	errc := make(chan error, 1)
	if !s.post(func() { errc <- fn(s.env()) }) {
		return ErrClosed
	}
	select {
	case err := <-errc:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// Sync returns once the loop has handled everything posted before it.
func (s *Sim) Sync() error { return s.Exec(func(Env) error { return nil }) }

// OnOutput registers fn to be called on every output terminal change, from the device's loop.
func (s *Sim) OnOutput(fn func(terminal string, active bool, at time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outputs = append(s.outputs, fn)
}

// Online reports whether the device is connected.
func (s *Sim) Online() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// WaitOnline returns when the device is online or ctx ends.
func (s *Sim) WaitOnline(ctx context.Context) error {
	s.mu.Lock()
	ch := s.onlineCh
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("device %s: waiting to be online: %w", s.cfg.ID, ctx.Err())
	}
}

func (s *Sim) setOnline(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.online == on {
		return
	}
	s.online = on
	if on {
		close(s.onlineCh)
	} else {
		s.onlineCh = make(chan struct{})
	}
}

// Stats returns the device's counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.WireStats = s.wire.Stats()
	st.Link = s.link.Stats()
	return st
}

func (s *Sim) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Snapshot returns the state as the loop sees it (the last one once the device is closed).
func (s *Sim) Snapshot() Snapshot {
	var snap Snapshot
	if err := s.Exec(func(Env) error { snap = s.snapshot(); return nil }); err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.last
	}
	return snap
}

func (s *Sim) snapshot() Snapshot {
	faults := make([]string, 0, len(s.faults))
	for k := range s.faults {
		faults = append(faults, k)
	}
	slices.Sort(faults)
	st := map[string]any{}
	if s.powered {
		st = s.m.State()
	}
	return Snapshot{ID: s.cfg.ID, Kind: s.m.Kind(), Powered: s.powered, Online: s.Online(), Seq: s.seq,
		Boots: s.boots, Faults: faults, State: st}
}

// Stimulate applies an event of the physical world.
func (s *Sim) Stimulate(st Stimulus) error {
	return s.Exec(func(env Env) error {
		if !s.powered {
			return fmt.Errorf("device %s: stimulus %s: %w", s.cfg.ID, st.Kind, ErrPoweredOff)
		}
		if err := s.m.Stimulate(env, st); err != nil {
			return fmt.Errorf("device %s: %w", s.cfg.ID, err)
		}
		return nil
	})
}

// SetPower switches the supply: off is a power cut (no DISCONNECT, state lost), on boots.
func (s *Sim) SetPower(on bool) error {
	return s.Exec(func(Env) error {
		if on {
			delete(s.faults, fault.PowerCut)
			if !s.powered {
				s.powerOn(s.cfg.BootTime)
			}
			return nil
		}
		s.faults[fault.PowerCut] = fault.Fault{Kind: fault.PowerCut}
		s.powerOff()
		return nil
	})
}

// Inject applies a fault.
func (s *Sim) Inject(f fault.Fault) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("device %s: %w", s.cfg.ID, err)
	}
	return s.Exec(func(env Env) error {
		switch f.Kind {
		case fault.PowerCut:
			s.powerOff()
		case fault.NetworkDrop:
			s.wire.Drop()
		case fault.Reset:
			s.wire.Reset()
			return nil // instantaneous: nothing to clear
		case fault.NoPingreq:
			s.wire.SetNoPingreq(true)
		case fault.NoDup:
			s.wire.SetNoDup(true)
		case fault.SlowAck, fault.ClockSkew, fault.WrongWill:
			// Read where they act: acks, timestamps, the next CONNECT.
		default:
			if !s.powered {
				return fmt.Errorf("device %s: fault %s: %w", s.cfg.ID, f.Kind, ErrPoweredOff)
			}
			ok, err := s.m.Inject(env, f)
			if err != nil {
				return fmt.Errorf("device %s: %w", s.cfg.ID, err)
			}
			if !ok {
				return fmt.Errorf("device %s: fault %s does not apply to a %s", s.cfg.ID, f.Kind, s.m.Kind())
			}
		}
		s.faults[f.Kind] = f
		if t, ok := s.faultTimers[f.Kind]; ok {
			t.Stop()
			delete(s.faultTimers, f.Kind)
		}
		if f.Duration > 0 {
			kind := f.Kind
			s.faultTimers[kind] = s.clk.AfterFunc(f.Duration, func() {
				s.post(func() {
					delete(s.faultTimers, kind)
					s.clear(kind)
				})
			})
		}
		return nil
	})
}

// Clear ends an active fault.
func (s *Sim) Clear(kind string) error {
	if !slices.Contains(fault.Kinds, kind) {
		return fmt.Errorf("device %s: %w", s.cfg.ID, fault.Fault{Kind: kind}.Validate())
	}
	return s.Exec(func(Env) error {
		if t, ok := s.faultTimers[kind]; ok {
			t.Stop()
			delete(s.faultTimers, kind)
		}
		s.clear(kind)
		return nil
	})
}

func (s *Sim) clear(kind string) {
	if _, ok := s.faults[kind]; !ok {
		return
	}
	delete(s.faults, kind)
	switch kind {
	case fault.PowerCut:
		if !s.powered {
			s.powerOn(s.cfg.BootTime)
		}
	case fault.NetworkDrop:
		s.wire.Heal()
	case fault.NoPingreq:
		s.wire.SetNoPingreq(false)
	case fault.NoDup:
		s.wire.SetNoDup(false)
	case fault.SlowAck, fault.ClockSkew, fault.WrongWill, fault.Reset:
	default:
		if s.powered {
			s.m.Clear(s.env(), kind)
		}
	}
}

// Do executes a command as if received on its topic and waits for its ack.
func (s *Sim) Do(ctx context.Context, name string, payload []byte) (Ack, error) {
	reply := make(chan Ack, 1)
	if err := s.Exec(func(Env) error {
		if !s.powered {
			return fmt.Errorf("device %s: command %s: %w", s.cfg.ID, name, ErrPoweredOff)
		}
		s.command(name, payload, reply)
		return nil
	}); err != nil {
		return Ack{}, err
	}
	select {
	case a := <-reply:
		return a, nil
	case <-s.done:
		return Ack{}, ErrClosed
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("device %s: command %s: waiting for the ack: %w", s.cfg.ID, name, ctx.Err())
	}
}

// Close disconnects cleanly and stops the loop and every goroutine of the device.
func (s *Sim) Close(ctx context.Context) error {
	if !s.started.Load() {
		return nil
	}
	s.closing.Do(func() { close(s.stopping) })
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("device %s: close: %w", s.cfg.ID, ctx.Err())
	}
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("device %s: close: waiting for goroutines: %w", s.cfg.ID, ctx.Err())
	}
}

// shutdown runs on the loop when Close begins: a clean goodbye, then everything stops.
func (s *Sim) shutdown() {
	last := s.snapshot()
	s.mu.Lock()
	s.last = last
	s.mu.Unlock()
	for _, t := range s.faultTimers {
		t.Stop()
	}
	s.stopTimers()
	if s.client != nil && s.up {
		s.goodbye(s.client)
	}
	s.client = nil
	s.up = false
	s.connGen++
	s.setOnline(false)
	s.wire.Close()
}

// goodbye publishes the offline status and disconnects with DISCONNECT, so that the broker
// discards the will (a clean stop is not a failure) and the retained status still tells the truth.
func (s *Sim) goodbye(c mqtt.Client) {
	tok := c.Publish(s.topics.Status(), 1, true, []byte(`{"online":false}`))
	s.count(func(st *Stats) { st.Published[1]++ })
	tok.WaitTimeout(time.Second)
	c.Disconnect(250)
}

// env returns the Env view of the device, valid on the loop.
func (s *Sim) env() Env { return simEnv{s} }

func (s *Sim) powerOn(delay time.Duration) {
	s.powered = true
	s.boots++
	s.bootAt = s.clk.Now()
	s.store = mqtt.NewOrderedMemoryStore()
	s.link.Reset() // the session state below the client goes with the client's store
	s.outbox = nil
	s.attempt = 0
	s.everOnline = false
	s.wire.PowerOn()
	s.m.Boot(s.env())
	s.scheduleTelemetry(true)
	if s.pub != nil {
		s.up = true
		s.publishPresence()
		s.setOnline(true)
		return
	}
	if delay > 0 {
		s.after(delay, s.connect)
		return
	}
	s.connect()
}

// powerOff loses the volatile state: the socket closes without DISCONNECT, timers and queued
// messages are gone, outputs fall to inactive.
func (s *Sim) powerOff() {
	if !s.powered {
		return
	}
	s.powered = false
	s.stopTimers()
	s.wire.PowerOff()
	s.client = nil
	s.up = false
	s.connGen++
	s.connecting = false
	if n := len(s.outbox); n > 0 {
		s.count(func(st *Stats) { st.Dropped += uint64(n) })
	}
	s.outbox = nil
	s.setOnline(false)
	s.m.PowerOff(s.env())
}

func (s *Sim) stopTimers() {
	for id, t := range s.timers {
		t.Stop()
		delete(s.timers, id)
	}
}

// after runs f on the loop after d unless cancelled or the power goes first.
func (s *Sim) after(d time.Duration, f func()) func() {
	id := s.nextTimer
	s.nextTimer++
	s.timers[id] = s.clk.AfterFunc(d, func() {
		s.post(func() {
			if _, ok := s.timers[id]; ok {
				delete(s.timers, id)
				f()
			}
		})
	})
	return func() {
		if t, ok := s.timers[id]; ok {
			t.Stop()
			delete(s.timers, id)
		}
	}
}

// ts formats a published timestamp: UTC, milliseconds, shifted by a clock_skew fault.
func (s *Sim) ts() string {
	now := s.clk.Now()
	if f, ok := s.faults[fault.ClockSkew]; ok {
		off, _ := f.DurationParam("offset", 90*time.Second)
		now = now.Add(off)
	}
	return now.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// publishPresence publishes the retained online status and state; it returns the status
// publication's token (nil without an MQTT client).
func (s *Sim) publishPresence() mqtt.Token {
	status, _ := json.Marshal(map[string]any{"online": true, "fw": s.cfg.Firmware, "model": s.cfg.Model,
		"ts": s.ts(), "boot": s.boots})
	tok := s.send(Message{Topic: s.topics.Status(), QoS: 1, Retain: true, Payload: status})
	s.publishState()
	return tok
}

func (s *Sim) publishState() {
	st, _ := json.Marshal(s.m.State())
	s.send(Message{Topic: s.topics.State(), QoS: 1, Retain: true, Payload: st})
}

// send hands a message to the publisher or the MQTT client. Offline, QoS 1/2 events wait in a
// bounded queue (the oldest is dropped and counted when it is full); retained status and state
// are not queued because they are republished on every connection; QoS 0 is dropped and counted.
func (s *Sim) send(m Message) mqtt.Token {
	if s.observe != nil {
		s.observe(m)
	}
	if s.pub != nil {
		s.pub.Publish(m)
		s.count(func(st *Stats) { st.Published[m.QoS]++ })
		return nil
	}
	if s.client == nil || !s.up {
		s.queue(m)
		return nil
	}
	tok := s.client.Publish(m.Topic, m.QoS, m.Retain, m.Payload)
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			// Not connected after all (the loss is being reported): keep it for the next connection.
			s.queue(m)
			return nil
		}
	default:
	}
	s.count(func(st *Stats) { st.Published[m.QoS]++ })
	return tok
}

func (s *Sim) queue(m Message) {
	switch {
	case m.QoS == 0:
		s.count(func(st *Stats) { st.TelemetryDropped++ })
	case m.Retain && (m.Topic == s.topics.Status() || m.Topic == s.topics.State()):
	default:
		if len(s.outbox) >= s.cfg.Outbox {
			s.outbox = s.outbox[1:]
			s.count(func(st *Stats) { st.Dropped++ })
		}
		s.outbox = append(s.outbox, m)
		s.count(func(st *Stats) { st.Queued++ })
	}
}

func (s *Sim) scheduleTelemetry(first bool) {
	if s.cfg.Telemetry <= 0 {
		return
	}
	d := s.cfg.Telemetry
	if first {
		// Spread a fleet's telemetry over the period instead of a burst every period.
		d = time.Duration(s.telRng.Int64N(int64(d))) + time.Millisecond
	}
	s.after(d, func() {
		s.tempC += s.telRng.NormFloat64() * 0.2
		s.tempC = min(max(s.tempC, -30), 70)
		supply := 24 + s.telRng.NormFloat64()*0.15
		p, _ := json.Marshal(map[string]any{
			"temp_c":   round(s.tempC, 2),
			"supply_v": round(supply, 2),
			"uptime_s": int64(s.clk.Now().Sub(s.bootAt) / time.Second),
			"ts":       s.ts(),
		})
		s.send(Message{Topic: s.topics.Telemetry(), QoS: 0, Payload: p})
		s.scheduleTelemetry(false)
	})
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+copysign(0.5, x))) / p
}

func copysign(a, b float64) float64 {
	if b < 0 {
		return -a
	}
	return a
}

// command handles a command payload: it checks the envelope, applies the simulated failure
// rate, handles reboot, and gives the rest to the machine.
func (s *Sim) command(name string, payload []byte, reply chan<- Ack) {
	s.count(func(st *Stats) { st.Commands++ })
	cmd := Command{Name: name, reply: reply}
	env := s.env()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			env.Ack(cmd, Rejected, fmt.Sprintf("malformed payload: %s at byte %d", se.Error(), se.Offset))
		case errors.As(err, &te):
			env.Ack(cmd, Rejected, "malformed payload: want a JSON object like {\"corr\":\"...\"}, got a JSON "+te.Value)
		default:
			env.Ack(cmd, Rejected, "malformed payload: "+err.Error())
		}
		return
	}
	if fields == nil {
		env.Ack(cmd, Rejected, "malformed payload: want a JSON object like {\"corr\":\"...\"}, got null")
		return
	}
	raw, ok := fields["corr"]
	if !ok {
		env.Ack(cmd, Rejected, "malformed payload: field corr is missing")
		return
	}
	if err := json.Unmarshal(raw, &cmd.Corr); err != nil {
		env.Ack(cmd, Rejected, "malformed payload: field corr must be a string")
		return
	}
	delete(fields, "corr")
	cmd.Args = fields
	if s.cfg.FailRate > 0 && s.failRng.Float64() < s.cfg.FailRate {
		env.Ack(cmd, Failed, "simulated failure (fail_rate)")
		return
	}
	if name == "reboot" {
		s.reboot(cmd)
		return
	}
	s.m.Command(env, cmd)
}

// reboot acks, says goodbye (offline status, DISCONNECT), loses the volatile state and boots
// again after the boot time (1s unless configured).
func (s *Sim) reboot(cmd Command) {
	s.ack(cmd, OK, "")
	c := s.client
	if !s.up {
		c = nil
	}
	s.stopTimers()
	s.powered = false
	s.client = nil
	s.up = false
	s.connGen++
	s.connecting = false
	s.setOnline(false)
	s.m.PowerOff(s.env())
	boot := s.cfg.BootTime
	if boot == 0 {
		boot = time.Second
	}
	if c == nil {
		s.powered = false
		s.after(boot, func() { s.powerOn(0) })
		return
	}
	s.spawn(func() {
		s.goodbye(c)
		s.post(func() {
			if !s.powered {
				s.after(boot, func() { s.powerOn(0) })
			}
		})
	})
}

// ack publishes a command's ack now.
func (s *Sim) ack(cmd Command, result Result, reason string) {
	a := Ack{ID: s.cfg.ID, Corr: cmd.Corr, Result: result, Reason: reason, TS: s.ts()}
	s.count(func(st *Stats) {
		switch result {
		case OK:
			st.AcksOK++
		case Rejected:
			st.AcksRejected++
		default:
			st.AcksFailed++
		}
	})
	if !cmd.Local {
		p, _ := json.Marshal(a)
		s.send(Message{Topic: s.topics.Ack(cmd.Name), QoS: 1, Payload: p})
	}
	if cmd.reply != nil {
		cmd.reply <- a
	}
}

func (s *Sim) emitOutput(terminal string, active bool) {
	s.mu.Lock()
	fns := slices.Clone(s.outputs)
	s.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	at := s.clk.Now()
	s.inCallback.Store(true)
	defer s.inCallback.Store(false)
	for _, fn := range fns {
		fn(terminal, active, at)
	}
}

// simEnv is the Machine's view of its Sim.
type simEnv struct{ s *Sim }

func (e simEnv) ID() string                                      { return e.s.cfg.ID }
func (e simEnv) Now() time.Time                                  { return e.s.clk.Now() }
func (e simEnv) Rand() *rand.Rand                                { return e.s.rng }
func (e simEnv) Config() Config                                  { return e.s.cfg }
func (e simEnv) After(d time.Duration, f func()) (cancel func()) { return e.s.after(d, f) }
func (e simEnv) StateChanged() {
	if e.s.up {
		e.s.publishState()
	}
}
func (e simEnv) Output(terminal string, active bool) { e.s.emitOutput(terminal, active) }

func (e simEnv) Publish(suffix string, qos byte, retain bool, payload []byte) {
	e.s.send(Message{Topic: e.s.topics.Base() + "/" + suffix, QoS: qos, Retain: retain, Payload: payload})
}

func (e simEnv) Event(typ string, qos byte, corr string, fields map[string]any) uint64 {
	s := e.s
	s.seq++
	body := make(map[string]any, len(fields)+4)
	for k, v := range fields {
		body[k] = v
	}
	body["id"] = s.cfg.ID
	body["seq"] = s.seq
	body["ts"] = s.ts()
	if corr != "" {
		body["corr"] = corr
	}
	p, _ := json.Marshal(body)
	s.count(func(st *Stats) { st.Events++ })
	s.send(Message{Topic: s.topics.Event(typ), QoS: qos, Payload: p})
	return s.seq
}

func (e simEnv) Ack(cmd Command, result Result, reason string) {
	s := e.s
	delay := s.cfg.AckLatency
	if f, ok := s.faults[fault.SlowAck]; ok {
		d, _ := f.DurationParam("latency", 2*time.Second)
		delay += d
	}
	if delay <= 0 {
		s.ack(cmd, result, reason)
		return
	}
	s.after(delay, func() { s.ack(cmd, result, reason) })
}
