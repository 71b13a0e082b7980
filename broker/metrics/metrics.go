// Package metrics is the /metrics endpoint of a running reference broker, on
// github.com/prometheus/client_golang: a Collector that reads the broker's counters
// (broker.Stats) and the values that need the broker itself — uptime (the $SYS/broker/uptime
// equivalent) and the sessions it holds, persistent ones apart — next to the standard Go runtime
// and process collectors.
//
// Everything is read at scrape time, so the broker's hot path pays nothing for metrics: the
// Collector builds constant metrics from one Stats snapshot per scrape. README.md lists every
// metric.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-iot/gatehouse/broker"
)

// Source is what the Collector reads; *broker.Broker is one.
type Source interface {
	Stats() *broker.Stats
	Uptime() time.Duration
	SessionCounts() (all, persistent int)
}

var _ Source = (*broker.Broker)(nil)

// Prefix starts the name of every broker metric.
const Prefix = "gatehouse_broker_"

// family is one metric family of the broker: its description and how to read its samples (one
// per label value, in the order of desc's variable label values).
type family struct {
	desc    *prometheus.Desc
	typ     prometheus.ValueType
	samples func(s broker.StatsSnapshot) []sample
}

type sample struct {
	value float64
	label string // the value of the family's one variable label; "" when it has none
}

func one(v float64) []sample { return []sample{{value: v}} }

func byQoS(v [3]uint64) []sample {
	return []sample{{float64(v[0]), "0"}, {float64(v[1]), "1"}, {float64(v[2]), "2"}}
}

func gauge(name, help string, read func(s broker.StatsSnapshot) float64) family {
	return family{prometheus.NewDesc(Prefix+name, help, nil, nil), prometheus.GaugeValue,
		func(s broker.StatsSnapshot) []sample { return one(read(s)) }}
}

func counter(name, help string, read func(s broker.StatsSnapshot) float64) family {
	return family{prometheus.NewDesc(Prefix+name, help, nil, nil), prometheus.CounterValue,
		func(s broker.StatsSnapshot) []sample { return one(read(s)) }}
}

// statsFamilies are the families read from broker.Stats, in the order they are exposed.
var statsFamilies = []family{
	gauge("clients_connected", "Clients past CONNACK.", func(s broker.StatsSnapshot) float64 { return float64(s.ClientsConnected) }),
	gauge("sockets", "Open network connections, including those before CONNECT.", func(s broker.StatsSnapshot) float64 { return float64(s.Sockets) }),
	counter("clients_total", "Accepted CONNECTs since start.", func(s broker.StatsSnapshot) float64 { return float64(s.ClientsTotal) }),
	counter("connects_refused_total", "Refused CONNECTs and sockets over max_connections.", func(s broker.StatsSnapshot) float64 { return float64(s.ConnectsRefused) }),
	counter("protocol_errors_total", "Connections closed for a protocol violation.", func(s broker.StatsSnapshot) float64 { return float64(s.ProtocolErrors) }),
	{prometheus.NewDesc(Prefix+"messages_received_total", "PUBLISH packets received from clients, by QoS.", []string{"qos"}, nil),
		prometheus.CounterValue, func(s broker.StatsSnapshot) []sample { return byQoS(s.MessagesReceived) }},
	{prometheus.NewDesc(Prefix+"messages_sent_total", "PUBLISH packets sent to clients, by QoS.", []string{"qos"}, nil),
		prometheus.CounterValue, func(s broker.StatsSnapshot) []sample { return byQoS(s.MessagesSent) }},
	counter("bytes_received_total", "Bytes read from clients.", func(s broker.StatsSnapshot) float64 { return float64(s.BytesReceived) }),
	counter("bytes_sent_total", "Bytes written to clients.", func(s broker.StatsSnapshot) float64 { return float64(s.BytesSent) }),
	{prometheus.NewDesc(Prefix+"messages_dropped_total", "Messages dropped, by reason.", []string{"reason"}, nil),
		prometheus.CounterValue, func(s broker.StatsSnapshot) []sample {
			return []sample{
				{float64(s.DroppedQueueFull), "queue_full"},
				{float64(s.DroppedOffline), "offline_qos0"},
				{float64(s.DroppedTooLarge), "too_large"},
				{float64(s.DroppedExpired), "expired"},
				{float64(s.DroppedDenied), "acl"},
			}
		}},
	gauge("retained_messages", "Retained messages stored.", func(s broker.StatsSnapshot) float64 { return float64(s.Retained) }),
	gauge("inflight_messages", "Outgoing QoS 1/2 messages awaiting acknowledgement.", func(s broker.StatsSnapshot) float64 { return float64(s.Inflight) }),
	gauge("queued_messages", "Outgoing QoS 1/2 messages waiting for an in-flight slot or a connection.", func(s broker.StatsSnapshot) float64 { return float64(s.Queued) }),
	gauge("subscriptions", "Subscriptions held.", func(s broker.StatsSnapshot) float64 { return float64(s.Subscriptions) }),
	counter("wills_published_total", "Will messages published.", func(s broker.StatsSnapshot) float64 { return float64(s.WillsPublished) }),
	counter("sessions_expired_total", "Sessions ended by their expiry interval.", func(s broker.StatsSnapshot) float64 { return float64(s.SessionsExpired) }),
	counter("takeovers_total", "Connections closed because the same client id connected again.", func(s broker.StatsSnapshot) float64 { return float64(s.ClientsTakenOver) }),
	counter("keepalive_timeouts_total", "Connections closed for silence beyond 1.5 × keepalive.", func(s broker.StatsSnapshot) float64 { return float64(s.KeepaliveTimeouts) }),
}

var (
	uptimeDesc     = prometheus.NewDesc(Prefix+"uptime_seconds", "Seconds since the broker started ($SYS/broker/uptime).", nil, nil)
	sessionsDesc   = prometheus.NewDesc(Prefix+"sessions", "Sessions held, connected or not.", nil, nil)
	persistentDesc = prometheus.NewDesc(Prefix+"persistent_sessions", "Sessions that outlive their connection (3.x CleanSession 0, 5.0 Session Expiry Interval > 0).", nil, nil)
)

// Collector is a prometheus.Collector of one broker's metrics, read from src at every scrape.
type Collector struct{ src Source }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the Collector of src's metrics.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe sends the description of every broker metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range statsFamilies {
		ch <- f.desc
	}
	ch <- uptimeDesc
	ch <- sessionsDesc
	ch <- persistentDesc
}

// Collect reads one snapshot of the broker's counters, its uptime and its sessions, and sends
// them as constant metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats().Snapshot()
	for _, f := range statsFamilies {
		for _, smp := range f.samples(s) {
			var labels []string
			if smp.label != "" {
				labels = []string{smp.label}
			}
			ch <- prometheus.MustNewConstMetric(f.desc, f.typ, smp.value, labels...)
		}
	}
	all, persistent := c.src.SessionCounts()
	ch <- prometheus.MustNewConstMetric(uptimeDesc, prometheus.GaugeValue, c.src.Uptime().Seconds())
	ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(all))
	ch <- prometheus.MustNewConstMetric(persistentDesc, prometheus.GaugeValue, float64(persistent))
}

// NewRegistry returns a registry of src's Collector and the standard Go runtime and process
// collectors (go_*, process_*).
func NewRegistry(src Source) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(NewCollector(src), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics of NewRegistry(src) (mount it at /metrics), in the format the
// scraper asks for: the text exposition format unless its Accept header prefers another. A scrape
// that cannot be gathered answers 500.
func Handler(src Source) http.Handler {
	return promhttp.HandlerFor(NewRegistry(src), promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}
