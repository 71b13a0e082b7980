// Package brokermetrics exposes the reference broker's counters (broker.Stats) in the Prometheus
// text exposition format (version 0.0.4). It reads the atomic counters at scrape time, so the
// broker's hot path pays nothing for it.
//
// It writes the format itself rather than through client_golang, so that it has no dependencies
// beyond the standard library; the output is what a Prometheus server scrapes from /metrics.
package brokermetrics

import (
	"io"
	"net/http"
	"strconv"

	"github.com/gatehouse-iot/gatehouse/broker"
)

// ContentType is the media type of the exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

type sample struct {
	labels string // `{qos="1"}` or ""
	value  float64
}

type family struct {
	name, help, typ string
	samples         func(s broker.StatsSnapshot) []sample
}

func one(v float64) []sample { return []sample{{value: v}} }

var families = []family{
	{"clients_connected", "Clients past CONNACK.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.ClientsConnected)) }},
	{"sockets", "Open network connections, including those before CONNECT.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.Sockets)) }},
	{"clients_total", "Accepted CONNECTs since start.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.ClientsTotal)) }},
	{"connects_refused_total", "Refused CONNECTs and sockets over max_connections.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.ConnectsRefused)) }},
	{"protocol_errors_total", "Connections closed for a protocol violation.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.ProtocolErrors)) }},
	{"messages_received_total", "PUBLISH packets received from clients, by QoS.", "counter", func(s broker.StatsSnapshot) []sample { return byQoS(s.MessagesReceived) }},
	{"messages_sent_total", "PUBLISH packets sent to clients, by QoS.", "counter", func(s broker.StatsSnapshot) []sample { return byQoS(s.MessagesSent) }},
	{"bytes_received_total", "Bytes read from clients.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.BytesReceived)) }},
	{"bytes_sent_total", "Bytes written to clients.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.BytesSent)) }},
	{"messages_dropped_total", "Messages dropped, by reason.", "counter", func(s broker.StatsSnapshot) []sample {
		return []sample{
			{`{reason="queue_full"}`, float64(s.DroppedQueueFull)},
			{`{reason="offline_qos0"}`, float64(s.DroppedOffline)},
			{`{reason="too_large"}`, float64(s.DroppedTooLarge)},
			{`{reason="expired"}`, float64(s.DroppedExpired)},
			{`{reason="acl"}`, float64(s.DroppedDenied)},
		}
	}},
	{"retained_messages", "Retained messages stored.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.Retained)) }},
	{"inflight_messages", "Outgoing QoS 1/2 messages awaiting acknowledgement.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.Inflight)) }},
	{"queued_messages", "Outgoing QoS 1/2 messages waiting for an in-flight slot or a connection.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.Queued)) }},
	{"subscriptions", "Subscriptions held.", "gauge", func(s broker.StatsSnapshot) []sample { return one(float64(s.Subscriptions)) }},
	{"wills_published_total", "Will messages published.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.WillsPublished)) }},
	{"sessions_expired_total", "Sessions ended by their expiry interval.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.SessionsExpired)) }},
	{"takeovers_total", "Connections closed because the same client id connected again.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.ClientsTakenOver)) }},
	{"keepalive_timeouts_total", "Connections closed for silence beyond 1.5 × keepalive.", "counter", func(s broker.StatsSnapshot) []sample { return one(float64(s.KeepaliveTimeouts)) }},
}

func byQoS(v [3]uint64) []sample {
	return []sample{{`{qos="0"}`, float64(v[0])}, {`{qos="1"}`, float64(v[1])}, {`{qos="2"}`, float64(v[2])}}
}

// Write writes every metric of stats in the exposition format, names prefixed gatehouse_broker_.
func Write(w io.Writer, stats *broker.Stats) error {
	s := stats.Snapshot()
	var b []byte
	for _, f := range families {
		name := "gatehouse_broker_" + f.name
		b = append(b, "# HELP "+name+" "+f.help+"\n# TYPE "+name+" "+f.typ+"\n"...)
		for _, smp := range f.samples(s) {
			b = append(b, name...)
			b = append(b, smp.labels...)
			b = append(b, ' ')
			b = strconv.AppendFloat(b, smp.value, 'g', -1, 64)
			b = append(b, '\n')
		}
	}
	_, err := w.Write(b)
	return err
}

// Handler serves the metrics of stats (mount it at /metrics).
func Handler(stats *broker.Stats) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_ = Write(w, stats)
	})
}
