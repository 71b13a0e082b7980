package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Fleet is what a run needs from the simulated devices (simulator/fleet.Fleet offers it).
type Fleet interface {
	Device(id string) (device.Device, bool)
	Inject(id string, f fault.Fault) error
	Clear(id, kind string) error
	Stimulate(id string, s device.Stimulus) error
	Stop(ctx context.Context) error
}

// FleetStarter starts the scenario's fleet against a broker and returns once every device is
// online (or ctx ends).
type FleetStarter func(ctx context.Context, s *Scenario, brokerURL string, seed uint64) (Fleet, error)

// Options configure a run.
type Options struct {
	// Target is the broker to run against (required).
	Target Target
	// Seed, when set, replaces the file's seed.
	Seed *uint64
	// Version is the Gatehouse version written into the report.
	Version string
	// Logger receives the run's structured log (the seed first); nil discards it.
	Logger *slog.Logger
	// Progress, when set, is called as the run advances (from several goroutines; keep it quick).
	Progress func(Progress)
	// StartFleet starts the devices; nil uses simulator/fleet.
	StartFleet FleetStarter
	// FleetTimeout bounds the fleet's start-up (default 60s).
	FleetTimeout time.Duration
	// ClientID prefixes the MQTT client ids of the observer and the controller; a random suffix
	// keeps runs apart on a shared broker.
	ClientID string
}

// Progress is a run's state for a live progress line.
type Progress struct {
	Scenario         string
	Elapsed, Total   time.Duration
	Met, Failed      int // expectations judged so far
	Pending          int
	Actions, Planned int
}

// observeFilters are what the observer subscribes to: everything under each topic prefix of the
// fleet (acs/# for the default prefix acs/{site}).
func observeFilters(s *Scenario) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range s.order {
		ref := s.devices[id]
		g := s.Fleet[ref.Group]
		prefix := device.ExpandPrefix(g.Prefix, ref.Site)
		f := prefix + "/#"
		if g.Prefix == "" {
			f = "acs/#"
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// run is one scenario run in progress.
type run struct {
	s      *Scenario
	opts   Options
	seed   uint64
	log    *slog.Logger
	target Target
	plan   []Planned
	obs    *observer
	ctl    mqtt.Client
	id     string // client id prefix of this run

	fleetReady chan struct{} // closed once the fleet started (or failed to)
	fleet      Fleet         // set before fleetReady closes; nil if the start failed
	fleetErr   error
	fleetAt    time.Time // when the fleet was ready; set before fleetReady closes

	t0 time.Time // the fleet's power-on: time zero of the timeline

	wg sync.WaitGroup // every goroutine of the run (see spawn)

	mu        sync.Mutex // protects the fields below
	timeline  []report.Event
	done      map[int][]Done      // per step: the actions carried out
	stepFrom  map[int]time.Time   // per step: when its window opens
	verdicts  map[[2]int]*verdict // per step and expectation
	reactDone []Done              // actions fired by react rules
	fired     map[int]int         // per react rule: how often it fired
	lateness  time.Duration       // how late the scheduler ran an action, at worst
	reactLag  time.Duration       // how long after the triggering message a react rule acted, at worst
	actions   int                 // actions carried out
}

// verdict is the final judgement of one expectation.
type verdict struct {
	from, at time.Time
	j        Judgement
}

// spawn starts f on a goroutine counted in r.wg; the count is added first so that the run's end
// never misses one.
func (r *run) spawn(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func (r *run) event(source, format string, args ...any) {
	r.eventOutcome(source, "", format, args...)
}

func (r *run) eventOutcome(source string, o report.Outcome, format string, args ...any) {
	r.mu.Lock()
	r.timeline = append(r.timeline, report.Event{Time: time.Now(), Source: source, Text: fmt.Sprintf(format, args...), Outcome: o})
	r.mu.Unlock()
}

// Run carries a scenario out against opts.Target and judges it. It always returns a record: a
// run that could not start (no broker, a fleet that did not come online) is an errored record
// saying why; a scenario that needs a broker control the target lacks is skipped.
func Run(ctx context.Context, s *Scenario, opts Options) *report.Record {
	seed := s.Seed
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.FleetTimeout == 0 {
		opts.FleetTimeout = 60 * time.Second
	}
	if opts.StartFleet == nil {
		opts.StartFleet = StartFleet
	}
	rec := report.New(s.Name, report.KindScenario, time.Now())
	rec.SetSeed(seed)
	rec.Versions.Gatehouse = opts.Version
	rec.SetProperty("file", s.File)
	rec.SetProperty("expected_outcome", string(s.Outcome))
	if s.Description != "" {
		rec.SetProperty("description", strings.TrimSpace(s.Description))
	}
	rec.SetProperty("replay", fmt.Sprintf("gatehouse run %s --seed %d", s.File, seed))
	if opts.Target == nil {
		rec.SetError("no broker to run against")
		rec.Finish(time.Now())
		return rec
	}
	rec.Versions.Broker = opts.Target.Describe()
	rec.SetProperty("broker_url", opts.Target.URL())
	log.Info("scenario", "name", s.Name, "file", s.File, "seed", seed, "broker", opts.Target.URL())

	for _, c := range s.Requires {
		if !capable(opts.Target, c) {
			rec.AddCase(report.Case{Name: "requires " + c, Group: s.Name, Outcome: report.Skip,
				Message: fmt.Sprintf("the scenario needs %s, which the %s cannot do; run it against the embedded broker (--broker embedded)", c, opts.Target.Describe())})
			rec.Finish(time.Now())
			return rec
		}
	}

	r := &run{
		s: s, opts: opts, seed: seed, log: log, target: opts.Target, plan: Plan(s, seed),
		fleetReady: make(chan struct{}), done: map[int][]Done{}, stepFrom: map[int]time.Time{},
		verdicts: map[[2]int]*verdict{}, fired: map[int]int{},
		id: fmt.Sprintf("%s-%08x", cmp(opts.ClientID, "gatehouse-run"), rand.Uint32()),
	}
	// Nothing of the run may outlast its timeline by much: bound it all.
	limit := opts.FleetTimeout + s.Duration + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r.execute(ctx, rec)
	rec.Finish(time.Now())
	return rec
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *run) execute(ctx context.Context, rec *report.Record) {
	url := r.target.URL()
	var err error
	r.obs, err = startObserver(ctx, url, r.id+"-observer", observeFilters(r.s), r.s.RequiresCapability(BrokerRestart),
		func(text string) { r.event("observer", "%s", text) })
	if err != nil {
		rec.SetError(err.Error())
		return
	}
	defer r.obs.stop()
	r.ctl = mqtt.NewClient(clientOpts(url, r.id+"-controller", true))
	if err := connect(ctx, r.ctl); err != nil {
		rec.SetError(fmt.Sprintf("controller: connect to %s: %v", url, err))
		return
	}
	defer r.ctl.Disconnect(250)

	runCtx, stopRun := context.WithCancel(ctx)
	r.t0 = time.Now()
	rec.Start = r.t0
	r.event("fleet", "starting %d devices", len(r.s.order))
	r.spawn(func() { r.startFleet(runCtx) })
	if len(r.s.React) > 0 {
		r.spawn(func() { r.react(runCtx) })
	}
	if r.opts.Progress != nil {
		r.spawn(func() { r.progress(runCtx) })
	}
	evals := r.schedule(runCtx)
	evals.Wait()
	stopRun()
	r.wg.Wait()

	if r.fleet != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := r.fleet.Stop(sctx); err != nil {
			r.event("fleet", "stop: %v", err)
		}
		cancel()
	}
	r.event("run", "end")
	r.results(rec)
}

func (r *run) startFleet(ctx context.Context) {
	defer close(r.fleetReady)
	defer func() { r.fleetAt = time.Now() }()
	fctx, cancel := context.WithTimeout(ctx, r.opts.FleetTimeout)
	defer cancel()
	f, err := r.opts.StartFleet(fctx, r.s, r.target.URL(), r.seed)
	if err != nil {
		r.fleetErr = err
		r.eventOutcome("fleet", report.Error, "start failed: %v", err)
		return
	}
	r.fleet = f
	r.event("fleet", "all %d devices online after %s", len(r.s.order), time.Since(r.t0).Round(time.Millisecond))
}

// readyFleet returns the fleet if it has started, nil while it is starting or if it did not: the
// fleet is set by its own goroutine and may only be read once fleetReady is closed.
func (r *run) readyFleet() Fleet {
	select {
	case <-r.fleetReady:
		return r.fleet
	default:
		return nil
	}
}

// waitFleet blocks until the fleet has started; false if it did not.
func (r *run) waitFleet(ctx context.Context) bool {
	select {
	case <-r.fleetReady:
		return r.fleet != nil
	case <-ctx.Done():
		return false
	}
}

// entry is one point of the schedule: a step's window opening, or an action.
type entry struct {
	at     time.Duration
	step   int
	marker bool
	p      Planned
}

// schedule walks the timeline: at each step's time it carries out the step's actions and starts
// judging its expectations. It returns the group of expectation judges to wait for.
func (r *run) schedule(ctx context.Context) *sync.WaitGroup {
	var entries []entry
	steps := map[int]*Step{}
	last := map[int]int{} // step → index of its last action in plan order
	for i := range r.s.Steps {
		st := &r.s.Steps[i]
		steps[st.Index] = st
		entries = append(entries, entry{at: st.At, step: st.Index, marker: true})
	}
	for _, p := range r.plan {
		entries = append(entries, entry{at: p.At, step: p.Step, p: p})
		last[p.Step] = p.Index
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].at != entries[j].at {
			return entries[i].at < entries[j].at
		}
		return entries[i].marker && !entries[j].marker
	})
	evals := &sync.WaitGroup{}
	stepDone := map[int]chan struct{}{}
	for idx := range steps {
		stepDone[idx] = make(chan struct{})
	}
	started := map[int]bool{}
	begin := func(st *Step, from time.Time) {
		started[st.Index] = true
		r.mu.Lock()
		r.stepFrom[st.Index] = from
		r.mu.Unlock()
		for k := range st.Expect {
			e := &st.Expect[k]
			k := k
			evals.Add(1)
			r.spawn(func() {
				defer evals.Done()
				r.judge(ctx, st, k, e, from, stepDone[st.Index])
			})
		}
	}
	// Commands are published without holding up the timeline (a broker that does not answer
	// would stall every later action); broker controls run one after the other on their own
	// goroutine, in order, since a recovery must follow its crash. A step is done once all its
	// actions are.
	pending := map[int]*sync.WaitGroup{}
	for idx := range steps {
		pending[idx] = &sync.WaitGroup{}
	}
	brokerQueue := make(chan func(), len(r.plan)+1)
	r.spawn(func() {
		for f := range brokerQueue {
			f()
		}
	})
	defer close(brokerQueue)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, en := range entries {
		due := r.t0.Add(en.at)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		st := steps[en.step]
		if en.marker {
			if _, hasActions := last[en.step]; !hasActions {
				r.event(stepSource(st), "window opens")
				begin(st, due)
				close(stepDone[en.step])
			}
			continue
		}
		wg := pending[en.step]
		wg.Add(1)
		p, source := en.p, stepSource(st)
		switch {
		case ctx.Err() != nil:
			r.record(p, Done{Planned: p, Time: time.Now(), Err: ctx.Err()})
			wg.Done()
		default:
			// Actions on devices wait for the fleet; that wait is the fleet's start-up, not the
			// scheduler falling behind.
			if p.Kind != ActCommand && p.Kind != ActBroker && r.waitFleet(ctx) && r.fleetAt.After(due) {
				due = r.fleetAt
			}
			if late := time.Since(due); late > 0 {
				r.mu.Lock()
				r.lateness = max(r.lateness, late)
				r.mu.Unlock()
			}
			if !started[en.step] {
				// The window opens when the step is due, not when the scheduler got to it: windows
				// follow the plan, so one that ends where the next step begins ends before
				// anything that step causes. (Only a fleet still starting moves it, to when the
				// fleet is up.)
				begin(st, due)
			}
			do := func() {
				defer wg.Done()
				r.record(p, r.carryOut(ctx, p, source, r.quiet(p)))
			}
			switch p.Kind {
			case ActCommand:
				r.spawn(do)
			case ActBroker:
				brokerQueue <- do
			default:
				do()
			}
		}
		if last[en.step] == p.Index {
			done := stepDone[en.step]
			r.spawn(func() {
				wg.Wait()
				close(done)
			})
		}
	}
	return evals
}

func stepSource(st *Step) string { return fmt.Sprintf("step %d", st.Index) }

func (r *run) record(p Planned, d Done) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[p.Step] = append(r.done[p.Step], d)
	r.actions++
}

// carryOut performs one action and says when and how it went.
// A quiet action is not written to the timeline unless it fails: load phases and busy react rules
// would bury everything else.
func (r *run) carryOut(ctx context.Context, p Planned, source string, quiet bool) Done {
	needsFleet := p.Kind != ActCommand && p.Kind != ActBroker
	if needsFleet && !r.waitFleet(ctx) {
		err := errors.New("the fleet is not running")
		if r.fleetErr != nil {
			err = fmt.Errorf("the fleet did not start: %w", r.fleetErr)
		}
		return Done{Planned: p, Time: time.Now(), Err: err}
	}
	d := Done{Planned: p, Results: r.resultsFor(p)}
	d.Time = time.Now()
	switch p.Kind {
	case ActCommand:
		d.Err = r.sendCommand(ctx, p)
	case ActStimulus:
		d.Err = r.fleet.Stimulate(p.Device, toStimulus(p))
	case ActFault:
		d.Err = r.fleet.Inject(p.Device, p.Fault)
	case ActClear:
		d.Err = r.fleet.Clear(p.Device, p.Name)
	case ActBroker:
		d.Err = brokerFault(ctx, r.target, p)
	}
	if d.Err != nil {
		r.eventOutcome(source, report.Error, "%s: %v", p, d.Err)
	} else if !quiet {
		r.event(source, "%s", p)
	}
	r.log.Debug("action", "step", p.Step, "action", p.String(), "err", d.Err)
	return d
}

// quiet keeps load phases from flooding the timeline: their first ten and every 100th action show.
func (r *run) quiet(p Planned) bool {
	if _, isLoad := r.stepOf(p.Step).Action.(*LoadPhase); !isLoad {
		return false
	}
	return p.N >= 10 && p.N%100 != 0
}

func (r *run) stepOf(index int) *Step {
	if index >= 1 && index <= len(r.s.Steps) {
		return &r.s.Steps[index-1]
	}
	return &Step{}
}

// topicsOf names a device's topics: from the running device when there is one, from the
// scenario's fleet otherwise.
func (r *run) topicsOf(id string) device.Topics {
	if f := r.readyFleet(); f != nil {
		if d, ok := f.Device(id); ok {
			return d.Topics()
		}
	}
	ref := r.s.devices[id]
	return device.Topics{Prefix: device.ExpandPrefix(r.s.Fleet[ref.Group].Prefix, ref.Site), Kind: ref.Kind, ID: id}
}

// resultsFor lists the messages an action must cause (see Done.Results).
func (r *run) resultsFor(p Planned) []Result {
	t := r.topicsOf(p.Device)
	switch p.Kind {
	case ActCommand:
		return []Result{{Topic: t.Ack(p.Name), Field: "corr", Value: p.Corr}}
	case ActStimulus:
		spec, ok := eventFor(p.Name)
		if !ok {
			return nil
		}
		res := []Result{{Topic: t.Event(spec.Type), Field: spec.Key, Value: p.Args[spec.Key]}}
		if p.Name == device.StimVehicleLeave && r.s.Fleet[r.s.devices[p.Device].Group].Role == "exit" {
			res = append(res, Result{Topic: t.Event("charge"), QoS2: true})
		}
		return res
	}
	return nil
}

func (r *run) sendCommand(ctx context.Context, p Planned) error {
	body := map[string]any{}
	for k, v := range p.Args {
		body[k] = v
	}
	body["corr"] = p.Corr
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("command payload: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := wait(wctx, r.ctl.Publish(r.topicsOf(p.Device).Command(p.Name), 1, false, payload)); err != nil {
		return fmt.Errorf("publish command: %w", err)
	}
	return nil
}

// toStimulus turns a planned stimulus into the device's form.
func toStimulus(p Planned) device.Stimulus {
	s := device.Stimulus{Kind: p.Name}
	if v, ok := p.Args["card"].(string); ok {
		s.Card = v
	}
	if v, ok := p.Args["plate"].(string); ok {
		s.Plate = v
	}
	if v, ok := p.Args["direction"].(string); ok {
		s.Direction = v
	}
	if v, ok := p.Args["terminal"].(string); ok {
		s.Terminal = v
	}
	if v, ok := p.Args["active"].(bool); ok {
		s.Active = v
	}
	if v, ok := p.Args["duration"].(time.Duration); ok {
		s.Duration = v
	}
	return s
}

// OverloadCase names the warning case a run adds when the machine was too busy for its timings to
// be trusted (see lateWarning).
const OverloadCase = "timeline"

// lateWarning is how late the scheduler (or a react rule) may act before the run warns that its timings
// cannot be trusted: the machine was too busy.
const lateWarning = time.Second

// minRecheck spaces re-evaluations of an expectation while messages stream in: judging the
// whole record on every message of a thousand-device fleet would cost more than the fleet.
const minRecheck = 20 * time.Millisecond

// judge waits until an expectation is decided or its window ends, then records the verdict.
func (r *run) judge(ctx context.Context, st *Step, k int, e *Expectation, from time.Time, stepDone <-chan struct{}) {
	w := Window{Start: r.t0, From: from, To: from.Add(e.Within)}
	deadline := time.NewTimer(time.Until(w.To))
	defer deadline.Stop()
	needsActions := e.Kind == ExpectAck || e.Kind == ExpectDelivered || e.Kind == ExpectLatency
	final := false
	var j Judgement
	for {
		actionsDone := true
		if needsActions {
			select {
			case <-stepDone:
			default:
				actionsDone = false
			}
		}
		switch {
		case needsActions && !actionsDone && !final:
			// Judged on the step's actions once they have all been carried out: before that, a
			// count of results would be measured against half a load phase.
			j = Judgement{Verdict: Pending}
		case e.Kind == ExpectRetained:
			j = r.judgeRetained(ctx, e, w, final)
		default:
			msgs, _ := r.obs.snapshot()
			r.mu.Lock()
			done := append([]Done(nil), r.done[st.Index]...)
			r.mu.Unlock()
			j = Judge(e, w, msgs, done, final)
		}
		if j.Verdict != Pending || final {
			break
		}
		var wake <-chan struct{}
		if needsActions && !actionsDone {
			wake = stepDone
		}
		_, changed := r.obs.snapshot()
		if e.Kind == ExpectRetained {
			// A retained check asks the broker again; pace the questions.
			changed = nil
		}
		recheck := time.NewTimer(minRecheck)
		if e.Kind == ExpectRetained {
			recheck.Reset(250 * time.Millisecond)
		}
		select {
		case <-deadline.C:
			final = true
		case <-ctx.Done():
			final = true
		case <-wake:
		case <-changed:
			select {
			case <-recheck.C:
			case <-deadline.C:
				final = true
			case <-ctx.Done():
				final = true
			}
		case <-recheck.C:
		}
		recheck.Stop()
	}
	if j.Verdict == Pending {
		j.Verdict = Failed
		if j.Observed == "" {
			j.Observed = "the run ended before the window did"
		}
	}
	now := time.Now()
	if e.Kind == ExpectRetained && j.Verdict == Met {
		j.Measurements = append(j.Measurements, report.MeasureDuration("time to match", now.Sub(from), report.AtMost(ms(e.Within))))
	}
	if final && ctx.Err() != nil && now.Before(w.To) {
		// Stopped early (interrupted, or the run's time limit): what was only decidable at the
		// window's end — an absence, an exact count, exactly-once delivery — was not decided.
		stopped := fmt.Sprintf("the run was stopped at %s, before the window ended", w.off(now))
		switch {
		case j.Verdict == Failed && j.Observed != "":
			j.Observed += " (" + stopped + ")"
		case j.Verdict != Met || needsFullWindow(e):
			j.Verdict, j.Observed = Failed, stopped
		}
	}
	r.mu.Lock()
	r.verdicts[[2]int{st.Index, k}] = &verdict{from: from, at: now, j: j}
	r.mu.Unlock()
	o := report.Pass
	if j.Verdict == Failed {
		o = report.Fail
	}
	r.eventOutcome(stepSource(st), o, "%s: %s", e, o)
}

// needsFullWindow reports whether an expectation can only be met at the end of its window.
func needsFullWindow(e *Expectation) bool {
	return e.Kind == ExpectAbsent || e.Exactly >= 0 || e.Kind == ExpectDelivered
}

func (r *run) judgeRetained(ctx context.Context, e *Expectation, w Window, final bool) Judgement {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := retainedSnapshot(rctx, r.target.URL(), fmt.Sprintf("%s-retained-%d", r.id, rand.Uint32()), e.Match.Topic)
	if err != nil {
		if final {
			return Judgement{Verdict: Failed, Observed: err.Error()}
		}
		return Judgement{Verdict: Pending}
	}
	return JudgeRetained(e, w, snap, final)
}

// results turns the verdicts, the actions and the timeline into the record's cases.
func (r *run) results(rec *report.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fleetErr != nil {
		rec.AddCase(report.Case{Name: "fleet start", Group: r.s.Name, Outcome: report.Error, Start: r.t0,
			Message: fmt.Sprintf("the fleet of %d devices did not start: %v", len(r.s.order), r.fleetErr)})
	}
	for si := range r.s.Steps {
		st := &r.s.Steps[si]
		var failedActions []string
		var actionLines []string
		for _, d := range r.done[st.Index] {
			line := fmt.Sprintf("+%.3fs %s", d.Time.Sub(r.t0).Seconds(), d.Planned)
			if d.Err != nil {
				line += ": " + d.Err.Error()
				failedActions = append(failedActions, fmt.Sprintf("%s: %v", d.Planned, d.Err))
			}
			actionLines = append(actionLines, line)
		}
		if len(failedActions) > 0 {
			rec.AddCase(report.Case{Name: fmt.Sprintf("%s: %s", st.Label(), st.Action), Group: r.s.Name, Outcome: report.Error,
				Message:  fmt.Sprintf("%s: %d of %d actions could not be carried out: %s", st.Label(), len(failedActions), len(r.done[st.Index]), strings.Join(first(failedActions, 3), "; ")),
				Evidence: []report.Evidence{report.Text("actions", capLines(actionLines)...)}})
		}
		for k := range st.Expect {
			e := &st.Expect[k]
			c := report.Case{Name: fmt.Sprintf("%s: %s", st.Label(), e), Group: r.s.Name}
			v := r.verdicts[[2]int{st.Index, k}]
			if v == nil {
				c.Outcome = report.Error
				c.Message = fmt.Sprintf("%s: expected %s; it was never judged (the run stopped first)", st.Label(), e)
				rec.AddCase(c)
				continue
			}
			c.Start, c.Duration = v.from, v.at.Sub(v.from)
			c.Measurements = v.j.Measurements
			if v.j.Verdict == Met {
				c.Outcome = report.Pass
			} else {
				c.Outcome = report.Fail
				c.Message = fmt.Sprintf("%s: expected %s; observed instead: %s", st.Label(), e, v.j.Observed)
			}
			if len(v.j.Evidence) > 0 {
				c.Evidence = append(c.Evidence, report.Text("observed", v.j.Evidence...))
			}
			if len(actionLines) > 0 {
				c.Evidence = append(c.Evidence, report.Text("actions of the step", capLines(actionLines)...))
			}
			c.Evidence = append(c.Evidence, report.KeyValues("where", report.KV{Key: "file", Value: fmt.Sprintf("%s:%d:%d", r.s.File, e.Pos.Line, e.Pos.Column)},
				report.KV{Key: "window", Value: Window{Start: r.t0, From: v.from, To: v.from.Add(e.Within)}.span()}))
			rec.AddCase(c)
		}
	}
	for i := range r.s.React {
		rule := &r.s.React[i]
		c := report.Case{Name: rule.Label(), Group: r.s.Name, Outcome: report.Pass,
			Measurements: []report.Measurement{report.Measure("fired", float64(r.fired[i]), "", report.Limits{})}}
		var errs, lines []string
		for _, d := range r.reactDone {
			if d.Step != -(i + 1) {
				continue
			}
			line := fmt.Sprintf("+%.3fs %s", d.Time.Sub(r.t0).Seconds(), d.Planned)
			if d.Err != nil {
				line += ": " + d.Err.Error()
				errs = append(errs, d.Err.Error())
			}
			lines = append(lines, line)
		}
		if len(errs) > 0 {
			c.Outcome = report.Error
			c.Message = fmt.Sprintf("%s: %d of its actions could not be carried out: %s", rule.Label(), len(errs), strings.Join(first(errs, 3), "; "))
		}
		if len(lines) > 0 {
			c.Evidence = []report.Evidence{report.Text("fired", capLines(lines)...)}
		}
		rec.AddCase(c)
	}
	if r.lateness > lateWarning || r.reactLag > lateWarning {
		rec.AddCase(report.Case{Name: OverloadCase, Group: r.s.Name, Outcome: report.Warn,
			Message: fmt.Sprintf("actions ran up to %s later than planned and react rules acted up to %s after their message: the machine was too busy for the timings of this run to be trusted",
				r.lateness.Round(time.Millisecond), r.reactLag.Round(time.Millisecond)),
			Measurements: []report.Measurement{
				report.MeasureDuration("worst lateness", r.lateness, report.AtMost(ms(lateWarning))),
				report.MeasureDuration("worst react lag", r.reactLag, report.AtMost(ms(lateWarning))),
			}})
	}
	if n := r.obs.dropped.Load(); n > 0 {
		rec.AddCase(report.Case{Name: "observer", Group: r.s.Name, Outcome: report.Warn,
			Message: fmt.Sprintf("the record was full: %d messages were not kept", n)})
	}
	sort.SliceStable(r.timeline, func(i, j int) bool { return r.timeline[i].Time.Before(r.timeline[j].Time) })
	rec.Timeline = append(rec.Timeline, r.timeline...)
}

// progress reports the run's state every 200ms until it ends.
func (r *run) progress(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	total := 0
	for _, st := range r.s.Steps {
		total += len(st.Expect)
	}
	for {
		r.mu.Lock()
		p := Progress{Scenario: r.s.Name, Elapsed: time.Since(r.t0), Total: r.s.Duration, Actions: r.actions, Planned: len(r.plan)}
		for _, v := range r.verdicts {
			if v.j.Verdict == Met {
				p.Met++
			} else {
				p.Failed++
			}
		}
		p.Pending = total - p.Met - p.Failed
		r.mu.Unlock()
		r.opts.Progress(p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
