package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// Result is what one workload run measured. Fields that do not apply to a workload are zero.
type Result struct {
	Workload    string `json:"workload"`
	QoS         int    `json:"qos"`
	Publishers  int    `json:"publishers,omitempty"`
	Subscribers int    `json:"subscribers,omitempty"`

	// Sent counts messages the publishers wrote (QoS 1/2: and had acknowledged).
	Sent uint64 `json:"sent,omitempty"`
	// Expected counts the deliveries the subscribers should have got (Sent × subscribers).
	Expected uint64 `json:"expected,omitempty"`
	// Delivered counts distinct deliveries; Lost = Expected − Delivered, counted by sequence
	// number; Duplicates and OutOfOrder as counted by the subscribers' Trackers.
	Delivered  uint64 `json:"delivered,omitempty"`
	Lost       uint64 `json:"lost"`
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`

	// Elapsed runs from the first publish to the last delivery; Rate is Delivered per second of it.
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Rate    float64       `json:"rate,omitempty"`

	// Latency workload: publish-to-delivery latency of the messages after the warm-up.
	TargetRate float64       `json:"target_rate,omitempty"`
	Samples    int           `json:"samples,omitempty"`
	P50        time.Duration `json:"p50_ns,omitempty"`
	P99        time.Duration `json:"p99_ns,omitempty"`
	Max        time.Duration `json:"max_ns,omitempty"`

	// Idle workload: connections held open, how long connecting them took, the broker's resident
	// memory before and after, and the difference per connection.
	Connections   int           `json:"connections,omitempty"`
	Alive         int           `json:"alive,omitempty"`
	ConnectTime   time.Duration `json:"connect_time_ns,omitempty"`
	RSSBefore     int64         `json:"rss_before,omitempty"`
	RSSAfter      int64         `json:"rss_after,omitempty"`
	BytesPerConn  float64       `json:"bytes_per_conn,omitempty"`
	ConnectPerSec float64       `json:"connects_per_sec,omitempty"`
}

// Options are the knobs shared by the throughput workloads.
type Options struct {
	QoS packet.QoS
	// Publishers and Subscribers: fan-in uses Publishers → 1 subscriber on "#"; fan-out uses
	// 1 publisher → Subscribers.
	Publishers  int
	Subscribers int
	// Window is what each publisher keeps in flight: QoS 1/2 messages not yet acknowledged
	// (PUBACK, PUBCOMP); at QoS 0, which has no acknowledgement, messages written since the
	// oldest unanswered PINGREQ (sent after every Window/2 messages): a broker answers PINGREQ
	// after it has handled every packet before it.
	Window int
	// Duration is how long publishers keep publishing.
	Duration time.Duration
	// Payload is the message size in bytes (at least 20: the stamp).
	Payload int
	// Drain is how long the subscribers may go without receiving anything, once the publishers
	// have stopped, before the missing messages are counted as lost.
	Drain time.Duration
	// Sources are the loopback source addresses connections rotate over (nil: the system's).
	Sources []net.IP
}

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = 10
	}
	if o.Payload < stampSize {
		o.Payload = DefaultPayload
	}
	if o.Drain <= 0 {
		o.Drain = 3 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
}

func (o *Options) source(i int) net.IP {
	if len(o.Sources) == 0 {
		return nil
	}
	return o.Sources[i%len(o.Sources)]
}

// receiver is one subscriber connection and the goroutine reading it.
type receiver struct {
	c         *Conn
	tr        *Tracker
	delivered atomic.Uint64
	last      atomic.Int64 // Unix nanoseconds of the last new message
	err       error        // read error other than the close that ends the run; set before done
	done      chan struct{}
	// lat, when not nil, receives the latency of every message stamped at or after latFrom.
	lat     *[]time.Duration
	latFrom int64
}

func (r *receiver) run() {
	defer close(r.done)
	var pub packet.Publish
	for {
		h, body, err := r.c.Next()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.err = err
			}
			return
		}
		switch h.Type {
		case packet.TypePublish:
			if err := pub.Unmarshal(h, body, version); err != nil {
				r.err = fmt.Errorf("PUBLISH: %w", err)
				return
			}
			st, err := ReadStamp(pub.Payload)
			if err != nil {
				r.err = fmt.Errorf("PUBLISH on %s: %w", pub.Topic, err)
				return
			}
			now := time.Now().UnixNano()
			if r.tr.Record(st) {
				r.delivered.Add(1)
				r.last.Store(now)
				if r.lat != nil && st.Sent >= r.latFrom {
					*r.lat = append(*r.lat, time.Duration(now-st.Sent))
				}
			}
			switch pub.QoS {
			case 1:
				r.c.Append(&packet.Puback{PacketID: pub.PacketID})
			case 2:
				r.c.Append(&packet.Pubrec{PacketID: pub.PacketID})
			}
		case packet.TypePubrel:
			id, err := ackID(h, body)
			if err != nil {
				r.err = err
				return
			}
			r.c.Append(&packet.Pubcomp{PacketID: id})
		}
		if !r.c.Buffered() || r.c.Pending() > 32<<10 {
			if err := r.c.Flush(); err != nil {
				if !errors.Is(err, net.ErrClosed) {
					r.err = err
				}
				return
			}
		}
	}
}

// publisher writes stamped messages on one connection, keeping Window in flight, until stop is
// set; it then waits for the acknowledgements still owed.
type publisher struct {
	c       *Conn
	id      uint32
	topic   string
	qos     packet.QoS
	window  int
	payload []byte
	stop    *atomic.Bool
	// ackBy bounds the wait for acknowledgements after stop.
	ackBy func() time.Time
	sent  uint64
}

func (p *publisher) write() {
	PutStamp(p.payload, Stamp{Publisher: p.id, Seq: p.sent, Sent: time.Now().UnixNano()})
	pub := packet.Publish{QoS: p.qos, Topic: p.topic, Payload: p.payload}
	if p.qos > 0 {
		// The window is far below 65,535, so an identifier comes back long before it is reused.
		pub.PacketID = uint16(p.sent%65535) + 1
	}
	p.c.Append(&pub)
	p.sent++
}

func (p *publisher) run() error {
	if p.qos == 0 {
		return p.runQoS0()
	}
	inflight := 0
	for ; inflight < p.window; inflight++ {
		p.write()
	}
	if err := p.c.Flush(); err != nil {
		return fmt.Errorf("publisher %d: %w", p.id, err)
	}
	stopped := false
	for inflight > 0 {
		if !stopped && p.stop.Load() {
			stopped = true
			_ = p.c.SetReadDeadline(p.ackBy())
		}
		h, body, err := p.c.Next()
		if err != nil {
			return fmt.Errorf("publisher %d: %d messages unacknowledged: %w", p.id, inflight, err)
		}
		switch h.Type {
		case packet.TypePuback, packet.TypePubcomp:
			inflight--
			if !p.stop.Load() {
				p.write()
				inflight++
			}
		case packet.TypePubrec:
			id, err := ackID(h, body)
			if err != nil {
				return fmt.Errorf("publisher %d: %w", p.id, err)
			}
			p.c.Append(&packet.Pubrel{PacketID: id})
		}
		if !p.c.Buffered() {
			if err := p.c.Flush(); err != nil {
				return fmt.Errorf("publisher %d: %w", p.id, err)
			}
		}
	}
	return nil
}

// runQoS0 sends batches of Window/2 messages, each followed by PINGREQ, with at most two
// batches unanswered.
func (p *publisher) runQoS0() error {
	batch := max(p.window/2, 1)
	send := func() {
		for range batch {
			p.write()
		}
		p.c.Append(&packet.Pingreq{})
	}
	send()
	send()
	pings := 2
	if err := p.c.Flush(); err != nil {
		return fmt.Errorf("publisher %d: %w", p.id, err)
	}
	stopped := false
	for pings > 0 {
		if !stopped && p.stop.Load() {
			stopped = true
			_ = p.c.SetReadDeadline(p.ackBy())
		}
		h, _, err := p.c.Next()
		if err != nil {
			return fmt.Errorf("publisher %d: %d PINGREQ unanswered: %w", p.id, pings, err)
		}
		if h.Type == packet.TypePingresp {
			pings--
			if !p.stop.Load() {
				send()
				pings++
			}
		}
		if !p.c.Buffered() {
			if err := p.c.Flush(); err != nil {
				return fmt.Errorf("publisher %d: %w", p.id, err)
			}
		}
	}
	return nil
}

// FanIn runs o.Publishers publishers (topics bench/in/<n>) into one subscriber on "#".
func FanIn(ctx context.Context, addr string, o Options) (Result, error) {
	o.defaults()
	if o.Publishers <= 0 {
		o.Publishers = 100
	}
	res := Result{Workload: "fan-in", QoS: int(o.QoS), Publishers: o.Publishers, Subscribers: 1}
	sub, err := subscribe(ctx, addr, "sub-fanin", "#", o, 0, o.Publishers)
	if err != nil {
		return res, err
	}
	topics := make([]string, o.Publishers)
	for i := range topics {
		topics[i] = "bench/in/" + strconv.Itoa(i)
	}
	return throughput(ctx, addr, o, res, topics, []*receiver{sub})
}

// FanOut runs one publisher (topic bench/out) into o.Subscribers subscribers of that topic.
func FanOut(ctx context.Context, addr string, o Options) (Result, error) {
	o.defaults()
	if o.Subscribers <= 0 {
		o.Subscribers = 1000
	}
	res := Result{Workload: "fan-out", QoS: int(o.QoS), Publishers: 1, Subscribers: o.Subscribers}
	subs := make([]*receiver, o.Subscribers)
	err := parallel(ctx, o.Subscribers, 32, func(i int) error {
		r, err := subscribe(ctx, addr, "sub-fanout-"+strconv.Itoa(i), "bench/out", o, i, 1)
		subs[i] = r
		return err
	})
	if err != nil {
		closeReceivers(subs)
		return res, err
	}
	return throughput(ctx, addr, o, res, []string{"bench/out"}, subs)
}

func subscribe(ctx context.Context, addr, id, filter string, o Options, i, publishers int) (*receiver, error) {
	c, err := Dial(ctx, addr, id, DialOptions{Source: o.source(i)})
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(filter, o.QoS, 10*time.Second); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("client %s: %w", id, err)
	}
	r := &receiver{c: c, tr: NewTracker(publishers), done: make(chan struct{})}
	go r.run()
	return r, nil
}

func closeReceivers(rs []*receiver) {
	for _, r := range rs {
		if r != nil {
			_ = r.c.Close()
			<-r.done
		}
	}
}

// throughput connects one publisher per topic, publishes for o.Duration, waits for the
// subscribers to drain and counts what arrived.
func throughput(ctx context.Context, addr string, o Options, res Result, topics []string, subs []*receiver) (Result, error) {
	defer closeReceivers(subs)
	stop := new(atomic.Bool)
	var stoppedAt atomic.Int64
	ackBy := func() time.Time { return time.Unix(0, stoppedAt.Load()).Add(o.Drain + 5*time.Second) }
	pubs := make([]*publisher, len(topics))
	err := parallel(ctx, len(topics), 32, func(i int) error {
		c, err := Dial(ctx, addr, "pub-"+strconv.Itoa(i), DialOptions{Source: o.source(i + 7)})
		if err != nil {
			return err
		}
		pubs[i] = &publisher{c: c, id: uint32(i), topic: topics[i], qos: o.QoS, window: o.Window,
			payload: make([]byte, o.Payload), stop: stop, ackBy: ackBy}
		return nil
	})
	defer func() {
		for _, p := range pubs {
			if p != nil {
				_ = p.c.Disconnect()
			}
		}
	}()
	if err != nil {
		return res, err
	}

	start := time.Now()
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() { errs[i] = p.run() })
	}
	timer := time.NewTimer(o.Duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	stoppedAt.Store(time.Now().UnixNano())
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	sent := make([]uint64, len(pubs))
	for i, p := range pubs {
		sent[i] = p.sent
		res.Sent += p.sent
	}
	res.Expected = res.Sent * uint64(len(subs))

	// Drain: wait until every expected delivery arrived or nothing arrived for o.Drain.
	deliveredNow := func() uint64 {
		var n uint64
		for _, r := range subs {
			n += r.delivered.Load()
		}
		return n
	}
	lastProgress, lastN := time.Now(), deliveredNow()
	tick := time.NewTicker(5 * time.Millisecond)
	for lastN < res.Expected && time.Since(lastProgress) < o.Drain && ctx.Err() == nil {
		<-tick.C
		if n := deliveredNow(); n != lastN {
			lastN, lastProgress = n, time.Now()
		}
	}
	tick.Stop()
	closeReceivers(subs)

	var last int64
	for _, r := range subs {
		if r.err != nil {
			return res, fmt.Errorf("subscriber: %w", r.err)
		}
		res.Delivered += r.tr.Distinct
		res.Duplicates += r.tr.Duplicates
		res.OutOfOrder += r.tr.OutOfOrder + r.tr.Unknown
		res.Lost += r.tr.Missing(sent)
		last = max(last, r.last.Load())
	}
	if last > 0 {
		res.Elapsed = time.Duration(last - start.UnixNano())
		res.Rate = float64(res.Delivered) / res.Elapsed.Seconds()
	}
	return res, ctx.Err()
}

// parallel runs f(0..n-1) on at most workers goroutines and returns the errors joined.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	next := atomic.Int64{}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// LatencyOptions configures Latency.
type LatencyOptions struct {
	// Rate is the total publish rate in messages per second, spread evenly over Publishers.
	Rate       float64
	Publishers int
	QoS        packet.QoS
	// Warmup is excluded from the latency figures; Duration is measured after it.
	Warmup, Duration time.Duration
	Payload          int
	Drain            time.Duration
	Sources          []net.IP
}

// Latency publishes at a fixed rate and measures publish-to-delivery latency at one subscriber.
func Latency(ctx context.Context, addr string, o LatencyOptions) (Result, error) {
	if o.Publishers <= 0 {
		o.Publishers = 10
	}
	if o.Payload < stampSize {
		o.Payload = DefaultPayload
	}
	if o.Drain <= 0 {
		o.Drain = 3 * time.Second
	}
	res := Result{Workload: "latency", QoS: int(o.QoS), Publishers: o.Publishers, Subscribers: 1, TargetRate: o.Rate}
	to := Options{QoS: o.QoS, Sources: o.Sources}
	sub, err := subscribe(ctx, addr, "sub-latency", "bench/lat/#", to, 0, o.Publishers)
	if err != nil {
		return res, err
	}
	var lat []time.Duration
	sub.lat = &lat
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	// The receiver reads latFrom only after it starts reading, and it is set before any publish.
	sub.latFrom = measureFrom.UnixNano()
	defer closeReceivers([]*receiver{sub})

	interval := time.Duration(float64(time.Second) * float64(o.Publishers) / o.Rate)
	end := measureFrom.Add(o.Duration)
	sent := make([]uint64, o.Publishers)
	err = parallel(ctx, o.Publishers, o.Publishers, func(i int) error {
		n, err := pacedPublisher(ctx, addr, i, o, start.Add(interval*time.Duration(i)/time.Duration(o.Publishers)), interval, end)
		sent[i] = n
		return err
	})
	if err != nil {
		return res, err
	}
	for _, n := range sent {
		res.Sent += n
	}
	res.Expected = res.Sent
	deadline := time.Now().Add(o.Drain)
	tick := time.NewTicker(5 * time.Millisecond)
	for sub.delivered.Load() < res.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	closeReceivers([]*receiver{sub})
	if sub.err != nil {
		return res, fmt.Errorf("subscriber: %w", sub.err)
	}
	res.Delivered = sub.tr.Distinct
	res.Duplicates = sub.tr.Duplicates
	res.OutOfOrder = sub.tr.OutOfOrder + sub.tr.Unknown
	res.Lost = sub.tr.Missing(sent)
	res.Elapsed = time.Duration(sub.last.Load() - start.UnixNano())
	res.Rate = float64(res.Delivered) / res.Elapsed.Seconds()
	slices.Sort(lat)
	res.Samples = len(lat)
	res.P50, res.P99 = Percentile(lat, 50), Percentile(lat, 99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, ctx.Err()
}

// pacedPublisher publishes one message every interval from first until end, flushing each at
// once, while a second goroutine reads the acknowledgements.
func pacedPublisher(ctx context.Context, addr string, i int, o LatencyOptions, first time.Time, interval time.Duration, end time.Time) (uint64, error) {
	c, err := Dial(ctx, addr, "pub-lat-"+strconv.Itoa(i), DialOptions{Source: sourceAt(o.Sources, i+3)})
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Disconnect() }()
	var acked atomic.Uint64
	readErr := make(chan error, 1)
	go func() {
		for {
			h, body, err := c.Next()
			if err != nil {
				readErr <- err
				return
			}
			switch h.Type {
			case packet.TypePuback, packet.TypePubcomp:
				acked.Add(1)
			case packet.TypePubrec:
				// The writer owns the write buffer; a PUBREL is rare enough to go on its own.
				id, err := ackID(h, body)
				if err != nil {
					readErr <- err
					return
				}
				rel, _ := (&packet.Pubrel{PacketID: id}).AppendTo(nil, version)
				if _, err := c.nc.Write(rel); err != nil {
					readErr <- err
					return
				}
			}
		}
	}()
	p := &publisher{c: c, id: uint32(i), topic: "bench/lat/" + strconv.Itoa(i), qos: o.QoS, payload: make([]byte, o.Payload)}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for next := first; next.Before(end); next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return p.sent, ctx.Err()
			case err := <-readErr:
				return p.sent, fmt.Errorf("publisher %d: %w", i, err)
			}
		}
		p.write()
		if err := c.Flush(); err != nil {
			return p.sent, fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	if o.QoS == 0 {
		return p.sent, nil
	}
	deadline := time.Now().Add(o.Drain)
	for acked.Load() < p.sent {
		if time.Now().After(deadline) {
			return p.sent, fmt.Errorf("publisher %d: %d of %d messages unacknowledged after %s", i, p.sent-acked.Load(), p.sent, o.Drain)
		}
		t.Reset(time.Millisecond)
		select {
		case <-t.C:
		case err := <-readErr:
			return p.sent, fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	return p.sent, nil
}

func sourceAt(s []net.IP, i int) net.IP {
	if len(s) == 0 {
		return nil
	}
	return s[i%len(s)]
}

// Percentile returns the p-th percentile (nearest rank) of sorted durations; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// IdleOptions configures Idle.
type IdleOptions struct {
	Connections int
	// Concurrency is how many connections are being set up at once.
	Concurrency int
	// KeepAlive is the CONNECT keepalive in seconds.
	KeepAlive uint16
	// Settle is how long to wait after the last CONNACK before reading the broker's memory.
	Settle  time.Duration
	Sources []net.IP
	// RSS reads the broker's resident memory in bytes.
	RSS func() (int64, error)
}

// Idle opens o.Connections connections that then stay idle, and measures how long connecting
// took and how much resident memory the broker gained per connection. It checks every
// connection still answers PINGREQ before closing them all.
func Idle(ctx context.Context, addr string, o IdleOptions) (Result, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	res := Result{Workload: "idle", Connections: o.Connections}
	before, err := o.RSS()
	if err != nil {
		return res, err
	}
	res.RSSBefore = before
	conns := make([]*Conn, o.Connections)
	defer func() {
		_ = parallel(context.Background(), len(conns), o.Concurrency, func(i int) error {
			if conns[i] != nil {
				_ = conns[i].Disconnect()
			}
			return nil
		})
	}()
	start := time.Now()
	err = parallel(ctx, o.Connections, o.Concurrency, func(i int) error {
		c, err := Dial(ctx, addr, "idle-"+strconv.Itoa(i), DialOptions{Source: sourceAt(o.Sources, i), KeepAlive: o.KeepAlive, ReadBuffer: 256})
		conns[i] = c
		return err
	})
	res.ConnectTime = time.Since(start)
	if err != nil {
		return res, err
	}
	res.ConnectPerSec = float64(o.Connections) / res.ConnectTime.Seconds()
	t := time.NewTimer(o.Settle)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return res, ctx.Err()
	}
	after, err := o.RSS()
	if err != nil {
		return res, err
	}
	res.RSSAfter = after
	res.BytesPerConn = float64(after-before) / float64(o.Connections)
	var alive atomic.Int64
	err = parallel(ctx, o.Connections, o.Concurrency, func(i int) error {
		c := conns[i]
		c.Append(&packet.Pingreq{})
		_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.Flush(); err != nil {
			return fmt.Errorf("connection %d: PINGREQ: %w", i, err)
		}
		h, _, err := c.Next()
		if err != nil {
			return fmt.Errorf("connection %d: waiting for PINGRESP: %w", i, err)
		}
		if h.Type != packet.TypePingresp {
			return fmt.Errorf("connection %d: got %s, want PINGRESP", i, h.Type)
		}
		alive.Add(1)
		return nil
	})
	res.Alive = int(alive.Load())
	return res, err
}
