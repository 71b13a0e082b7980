package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/device/stage"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:1883"
	DefaultTimeout        = 10 * time.Minute
	DefaultAckLimit       = 2 * time.Second
	DefaultReconnectLimit = 30 * time.Second
	DefaultEventLimit     = 5 * time.Second
)

// Config is one certification run.
type Config struct {
	// Profile is gate, turnstile, camera or protocol.
	Profile string
	// ClientID is the device's MQTT client identifier; other clients are refused.
	ClientID string
	// DeviceID is the {id} of the device's topics; default ClientID.
	DeviceID string
	// Prefix is the {prefix} of the device's topics (e.g. "acs/site-1"); empty learns it from the
	// device's subscription to its command topics.
	Prefix string
	// Listen is where the certifier listens for the device (default 127.0.0.1:1883; a device on
	// the network needs an address it can reach, e.g. 0.0.0.0:1883).
	Listen string
	// Timeout bounds the whole run (default 10m); ConnectTimeout the wait for the device's first
	// connection (default: Timeout).
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// AckLimit is how long a command may take to be acknowledged (default 2s).
	AckLimit time.Duration
	// ReconnectLimit is how long the device may take to come back after a lost connection
	// (default 30s).
	ReconnectLimit time.Duration
	// EventLimit is how long a physical event may take to be reported (default 5s).
	EventLimit time.Duration
	// Physical reaches the device's physical side (a bench's relays, a simulated device); nil
	// leaves the requirements that need it not exercised.
	Physical Physical
	// Listening is called with the bound address once the certifier listens, before the wait
	// for the device; it may return the device's physical side (a bench whose simulated
	// controller must be told where to connect), which then replaces Physical. An error ends the
	// run before it begins.
	Listening func(addr net.Addr) (Physical, error)
	// Progress receives one line per step of the run; nil for none.
	Progress func(line string)
	// Version is the Gatehouse version written in the report.
	Version string
}

func (c Config) withDefaults() Config {
	if c.DeviceID == "" {
		c.DeviceID = c.ClientID
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConnectTimeout <= 0 || c.ConnectTimeout > c.Timeout {
		c.ConnectTimeout = c.Timeout
	}
	if c.AckLimit <= 0 {
		c.AckLimit = DefaultAckLimit
	}
	if c.ReconnectLimit <= 0 {
		c.ReconnectLimit = DefaultReconnectLimit
	}
	if c.EventLimit <= 0 {
		c.EventLimit = DefaultEventLimit
	}
	return c
}

// Validate names the first problem of a configuration.
func (c Config) Validate() error {
	if _, err := LookupProfile(c.Profile); err != nil {
		return err
	}
	if c.ClientID == "" {
		return errors.New("client id is empty: the certifier must know which client is the device under test")
	}
	if err := packet.ValidUTF8String(packet.V5, c.ClientID); err != nil {
		return fmt.Errorf("client id %q: %w", c.ClientID, err)
	}
	if strings.ContainsAny(c.DeviceID+c.Prefix, "+#") {
		return fmt.Errorf("device id %q and prefix %q must not contain the wildcards + or #", c.DeviceID, c.Prefix)
	}
	return nil
}

// Certify listens for the device, waits for it to connect, drives it through the profile's
// requirements and returns the result. An error means the certification could not be carried out
// at all (a bad configuration, an address already in use); a device that misbehaves, or never
// connects, is a Result that failed.
func Certify(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("certify: %w", err)
	}
	cfg = cfg.withDefaults()
	prof, _ := LookupProfile(cfg.Profile)
	tr := stage.NewTrace()
	s, err := stage.Listen(ctx, stage.Config{Addr: cfg.Listen, ClientID: cfg.ClientID, Trace: tr})
	if err != nil {
		return nil, fmt.Errorf("certify: %w", err)
	}
	defer s.Close()
	if cfg.Listening != nil {
		p, err := cfg.Listening(s.Addr())
		if err != nil {
			return nil, fmt.Errorf("certify: %w", err)
		}
		if p != nil {
			cfg.Physical = p
		}
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &run{
		cfg:      cfg,
		prof:     prof,
		s:        s,
		tr:       tr,
		ctx:      rctx,
		start:    time.Now(),
		findings: map[string][]finding{},
		corrs:    map[string][]string{},
	}
	r.certify()
	if err := s.Close(); err != nil {
		r.log("closing the certifier: %v", err)
	}
	return r.result(), nil
}

// run is the state of one certification.
type run struct {
	cfg   Config
	prof  Profile
	s     *stage.Server
	tr    *stage.Trace
	ctx   context.Context
	start time.Time

	findings map[string][]finding
	timeline []report.Event
	runErr   string // why the run as a whole could not be carried out

	version   string // "3.1.1" or "5.0", from the first CONNECT
	pv        packet.Version
	keepalive time.Duration
	clean     bool   // the device asks for a clean session on its first connection
	base      string // {prefix}/{kind}/{id}: the device's topic base, once known
	gone      bool   // the device stopped coming back: later phases are not exercised
	cutShort  string // the first phase that did not run, when the run ended early
	corrs     map[string][]string
	nextCorr  int
	identity  Identity // firmware and model, from the device's online status
}

// finding is one observation about a requirement.
type finding struct {
	at           time.Time
	verdict      report.Outcome // Pass, Fail, Warn or Skip (not exercised / not applicable)
	text         string
	evidence     []int // trace indexes the report quotes
	measurements []report.Measurement
}

func (r *run) add(req string, f finding) {
	f.at = time.Now()
	r.findings[req] = append(r.findings[req], f)
}

func (r *run) pass(req, text string, ev ...int) {
	r.add(req, finding{verdict: report.Pass, text: text, evidence: ev})
}

func (r *run) fail(req, text string, ev ...int) {
	r.add(req, finding{verdict: report.Fail, text: text, evidence: ev})
}

func (r *run) warn(req, text string, ev ...int) {
	r.add(req, finding{verdict: report.Warn, text: text, evidence: ev})
}

func (r *run) skip(req, text string) { r.add(req, finding{verdict: report.Skip, text: text}) }

func (r *run) measure(req string, verdict report.Outcome, text string, m report.Measurement, ev ...int) {
	r.add(req, finding{verdict: verdict, text: text, evidence: ev, measurements: []report.Measurement{m}})
}

// log records a step of the run in the timeline, the trace and the progress output.
func (r *run) log(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	r.timeline = append(r.timeline, report.Event{Time: time.Now(), Source: "certify", Text: text})
	r.tr.Note(0, "%s", text)
	if r.cfg.Progress != nil {
		r.cfg.Progress(text)
	}
}

// ms formats a duration in milliseconds for messages.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }

func (r *run) certify() {
	r.log("listening on %s for %q, profile %s", r.s.Addr(), r.cfg.ClientID, r.prof.Name)
	n, connect, ok := r.awaitAccepted(0, 0, r.cfg.ConnectTimeout)
	if !ok {
		r.runErr = fmt.Sprintf("the device %q did not connect to %s within %s", r.cfg.ClientID, r.s.Addr(), r.cfg.ConnectTimeout)
		r.log("%s", r.runErr)
		return
	}
	r.pv = connect.Version
	r.version = spec.Version311
	if r.pv == packet.V5 {
		r.version = spec.Version5
	}
	r.keepalive = time.Duration(connect.KeepAlive) * time.Second
	r.clean = connect.CleanStart
	r.log("connection %d: MQTT %s, keepalive %s, clean session %v", n, r.pv, r.keepalive, r.clean)
	r.settle(n)

	phases := []struct {
		name string
		fn   func()
	}{
		{"commands", r.phaseCommands},
		{"receiving", r.phaseReceive},
		{"keepalive", r.phaseKeepalive},
		{"silent server", r.phaseSilentServer},
		{"QoS 1 resend", r.phaseResendQoS1},
		{"physical events and QoS 2", r.phasePhysical},
		{"power loss", r.phasePower},
		{"MQTT 5.0 limits", r.phaseLimits5},
		{"lost session", r.phaseResubscribe},
		// The last two may end the run for clients that do not try again (MQTT does not ask them
		// to; the device contract does).
		{"server DISCONNECT", r.phaseServerDisconnect},
		{"refused connection", r.phaseRefused},
	}
	for i, p := range phases {
		if r.gone || r.ctx.Err() != nil {
			r.cutShort = phases[i].name
			break
		}
		r.log("phase: %s", p.name)
		p.fn()
	}
	if r.ctx.Err() != nil && r.runErr == "" {
		r.runErr = fmt.Sprintf("the run did not finish within its timeout (%s)", r.cfg.Timeout)
		r.log("%s", r.runErr)
	}
	r.finishEvents()
	r.judge()
}

// awaitAccepted waits, from trace index from, for the device's next accepted connection with a
// number above after. It returns the connection and its CONNECT.
func (r *run) awaitAccepted(after, from int, timeout time.Duration) (int, *packet.Connect, bool) {
	ev, ok := r.tr.Wait(r.ctx, from, timeout, func(e stage.Event) bool {
		if !e.Is(stage.ToDevice, packet.TypeConnack) || e.Conn <= after {
			return false
		}
		return e.Packet.(*packet.Connack).Code == 0
	})
	if !ok {
		return 0, nil, false
	}
	return ev.Conn, r.connectOf(ev.Conn), true
}

// connectOf returns the CONNECT that opened connection n.
func (r *run) connectOf(n int) *packet.Connect {
	for _, e := range r.tr.Events(0, -1) {
		if e.Conn == n && e.Is(stage.FromDevice, packet.TypeConnect) {
			return e.Packet.(*packet.Connect)
		}
	}
	return &packet.Connect{}
}

// current returns the device's connection, waiting for it to come back when it is away (a device
// may drop its own connection, e.g. after a missing PINGRESP). It returns false when the device
// did not come back.
func (r *run) current() (int, bool) {
	if n, _, ok := r.s.Connected(); ok {
		return n, true
	}
	n, _, ok := r.awaitAccepted(r.lastConn(), r.tr.Len(), r.cfg.ReconnectLimit)
	if !ok {
		r.gone = true
		r.log("the device is away and did not come back within %s", r.cfg.ReconnectLimit)
	}
	return n, ok
}

// lastConn returns the highest connection number seen.
func (r *run) lastConn() int {
	evs := r.tr.Events(0, -1)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Conn > 0 {
			return evs[i].Conn
		}
	}
	return 0
}

// cycle drops the device's connection (why), applies answer to its next CONNECT when given, and
// waits for the device to come back; it records the reconnection under ReqReconnects. It returns
// the new connection, or false when the device did not come back (the run then ends).
func (r *run) cycle(why string, answer *stage.Answer) (int, bool) {
	if answer != nil {
		r.s.AnswerNext(*answer)
	}
	from := r.tr.Len()
	dropped, err := r.s.Drop(why)
	if err != nil {
		dropped = r.lastConn()
	}
	r.log("dropped connection %d: %s", dropped, why)
	return r.comeBack(dropped, from, "after the server dropped connection "+strconv.Itoa(dropped))
}

// comeBack waits for the device's next accepted connection after connection after, counting the
// delay from trace index from, and records it under ReqReconnects.
func (r *run) comeBack(after, from int, what string) (int, bool) {
	return r.comeBackWithin(after, from, what, r.cfg.ReconnectLimit)
}

// comeBackWithin is comeBack with its own limit.
func (r *run) comeBackWithin(after, from int, what string, limit time.Duration) (int, bool) {
	began := time.Now()
	if evs := r.tr.Events(from, from+1); len(evs) == 1 {
		began = evs[0].At
	}
	n, connect, ok := r.awaitAccepted(after, from, limit)
	if !ok && !r.prof.Contract {
		r.gone = true
		r.log("the device did not come back within %s %s (MQTT does not ask a client to; the run ends here)", limit, what)
		return 0, false
	}
	if !ok {
		r.fail(ReqReconnects, fmt.Sprintf("the device did not reconnect within %s %s", r.cfg.ReconnectLimit, what), from)
		r.gone = true
		r.log("the device did not come back within %s %s", r.cfg.ReconnectLimit, what)
		return 0, false
	}
	at := time.Now()
	for _, e := range r.tr.Events(from, -1) {
		if e.Conn == n && e.Kind == stage.FromDevice {
			at = e.At
			break
		}
	}
	d := at.Sub(began)
	m := report.MeasureDuration("reconnection "+what, d, report.AtMost(float64(r.cfg.ReconnectLimit.Milliseconds())))
	r.measure(ReqReconnects, report.Pass, fmt.Sprintf("reconnected as connection %d %s in %s", n, what, ms(d)), m)
	r.log("connection %d: the device is back (%s)", n, describeConnect(connect))
	return n, true
}

func describeConnect(c *packet.Connect) string {
	return fmt.Sprintf("clean session %v, keepalive %ds", c.CleanStart, c.KeepAlive)
}

// settle waits for the device to set itself up on its first connection: subscribe, and (under a
// contract profile) announce itself online.
func (r *run) settle(n int) {
	limit := max(5*time.Second, r.keepalive)
	if r.prof.Contract {
		if r.cfg.Prefix != "" {
			r.base = r.cfg.Prefix + "/" + r.prof.Kind + "/" + r.cfg.DeviceID
		}
		ev, ok := r.tr.Wait(r.ctx, 0, limit, func(e stage.Event) bool {
			sub, isSub := e.Packet.(*packet.Subscribe)
			if e.Kind != stage.FromDevice || !isSub {
				return false
			}
			for _, s := range sub.Subscriptions {
				if b, ok := r.commandBase(s.Filter); ok {
					if r.base == "" {
						r.base = b
					}
					return true
				}
			}
			return false
		})
		if !ok {
			where := "{prefix}/" + r.prof.Kind + "/" + r.cfg.DeviceID + "/cmd/+"
			if r.base != "" {
				where = r.base + "/cmd/+"
			}
			r.fail(ReqCommands, fmt.Sprintf("the device did not subscribe to its command topics (%s) within %s of connecting", where, limit))
			if r.base == "" {
				r.learnBaseFromStatus(limit)
			}
			return
		}
		r.log("the device subscribed to its commands: topic base %s", r.base)
		if _, ok := r.tr.Wait(r.ctx, ev.Index, limit, func(e stage.Event) bool {
			p := e.Publish()
			return e.Kind == stage.FromDevice && p != nil && p.Topic == r.base+"/status"
		}); !ok {
			r.log("no status on %s/status within %s", r.base, limit)
		}
		return
	}
	if _, ok := r.tr.Wait(r.ctx, 0, limit, func(e stage.Event) bool {
		return e.Kind == stage.FromDevice && e.Conn == n && (e.Is(stage.FromDevice, packet.TypeSubscribe) || e.Is(stage.FromDevice, packet.TypePublish))
	}); !ok {
		r.log("the device neither subscribed nor published within %s of connecting", limit)
	}
}

// commandBase recognises the device's command subscription, {base}/cmd/+ or {base}/cmd/#, and
// returns its base.
func (r *run) commandBase(filter string) (string, bool) {
	for _, suffix := range []string{"/cmd/+", "/cmd/#"} {
		if !strings.HasSuffix(filter, suffix) {
			continue
		}
		b := strings.TrimSuffix(filter, suffix)
		if r.base != "" {
			return b, b == r.base
		}
		if strings.HasSuffix(b, "/"+r.prof.Kind+"/"+r.cfg.DeviceID) && !strings.ContainsAny(b, "+#") {
			return b, true
		}
	}
	return "", false
}

// learnBaseFromStatus falls back on the device's status topic to find its topic base.
func (r *run) learnBaseFromStatus(limit time.Duration) {
	suffix := "/" + r.prof.Kind + "/" + r.cfg.DeviceID + "/status"
	ev, ok := r.tr.Wait(r.ctx, 0, limit, func(e stage.Event) bool {
		p := e.Publish()
		return e.Kind == stage.FromDevice && p != nil && strings.HasSuffix(p.Topic, suffix)
	})
	if ok {
		r.base = strings.TrimSuffix(ev.Publish().Topic, "/status")
		r.log("topic base %s, learnt from the status topic", r.base)
	}
}

// corr returns a fresh correlation id for a command.
func (r *run) corr(command string) string {
	r.nextCorr++
	c := fmt.Sprintf("certify-%d-%s", r.nextCorr, command)
	r.corrs[command] = append(r.corrs[command], c)
	return c
}

// command publishes a command with a fresh corr to the device at QoS 1 and returns the corr and
// the trace index of the PUBLISH.
func (r *run) command(name string) (corr string, idx int, err error) {
	corr = r.corr(name)
	payload, _ := json.Marshal(map[string]string{"corr": corr})
	idx = r.tr.Len()
	_, _, err = r.s.Publish(r.base+"/cmd/"+name, payload, 1)
	return corr, idx, err
}

// ack is a command acknowledgement as the device contract writes it.
type ack struct {
	Corr   *string `json:"corr"`
	Result string  `json:"result"`
	Reason string  `json:"reason"`
}

// awaitAck waits for the ack of command name with the given corr, from trace index from.
// corr "" takes the first ack on the command's ack topic.
func (r *run) awaitAck(name, corr string, from int, limit time.Duration) (stage.Event, ack, bool) {
	topic := r.base + "/cmd/" + name + "/ack"
	var got ack
	ev, ok := r.tr.Wait(r.ctx, from, limit, func(e stage.Event) bool {
		p := e.Publish()
		if e.Kind != stage.FromDevice || p == nil || p.Topic != topic {
			return false
		}
		var a ack
		if json.Unmarshal(p.Payload, &a) != nil {
			return corr == ""
		}
		if corr == "" || (a.Corr != nil && *a.Corr == corr) {
			got = a
			return true
		}
		return false
	})
	return ev, got, ok
}
