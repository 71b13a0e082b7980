package metrics_test

import (
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/metrics"
)

// fixed is a Source whose every value is distinct, so that a value read from the wrong field
// shows.
type fixed struct{ stats broker.Stats }

func (f *fixed) Stats() *broker.Stats                 { return &f.stats }
func (f *fixed) Uptime() time.Duration                { return 90500 * time.Millisecond }
func (f *fixed) SessionCounts() (all, persistent int) { return 23, 24 }

func newFixed() *fixed {
	f := &fixed{}
	s := &f.stats
	s.ClientsConnected.Store(1)
	s.ClientsTotal.Store(2)
	s.Sockets.Store(3)
	s.ConnectsRefused.Store(4)
	s.ProtocolErrors.Store(5)
	for q := range 3 {
		s.MessagesReceived[q].Store(uint64(6 + q))
		s.MessagesSent[q].Store(uint64(9 + q))
	}
	s.BytesReceived.Store(12)
	s.BytesSent.Store(13)
	s.DroppedQueueFull.Store(14)
	s.DroppedOffline.Store(15)
	s.DroppedTooLarge.Store(16)
	s.DroppedExpired.Store(17)
	s.DroppedDenied.Store(18)
	s.Retained.Store(19)
	s.Inflight.Store(20)
	s.Queued.Store(21)
	s.Subscriptions.Store(22)
	s.WillsPublished.Store(25)
	s.SessionsExpired.Store(26)
	s.ClientsTakenOver.Store(27)
	s.KeepaliveTimeouts.Store(28)
	return f
}

// gathered returns the broker's families of one gather: series (name, or name{label="v"}) to
// value and type.
func gathered(src metrics.Source) (map[string]float64, map[string]dto.MetricType) {
	GinkgoHelper()
	families, err := metrics.NewRegistry(src).Gather()
	Expect(err).NotTo(HaveOccurred())
	values, types := map[string]float64{}, map[string]dto.MetricType{}
	for _, f := range families {
		types[f.GetName()] = f.GetType()
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				values[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				values[key] = m.GetGauge().GetValue()
			}
		}
	}
	return values, types
}

var _ = Describe("The broker's collector", func() {
	values, types := gathered(newFixed())

	DescribeTable("reads each metric from its own value",
		func(series string, typ dto.MetricType, want float64) {
			Expect(values).To(HaveKeyWithValue(series, want))
			name, _, _ := strings.Cut(series, "{")
			Expect(types).To(HaveKeyWithValue(name, typ))
		},
		Entry(nil, connected, dto.MetricType_GAUGE, 1.0),
		Entry(nil, total, dto.MetricType_COUNTER, 2.0),
		Entry(nil, "gatehouse_broker_sockets", dto.MetricType_GAUGE, 3.0),
		Entry(nil, "gatehouse_broker_connects_refused_total", dto.MetricType_COUNTER, 4.0),
		Entry(nil, "gatehouse_broker_protocol_errors_total", dto.MetricType_COUNTER, 5.0),
		Entry(nil, received(0), dto.MetricType_COUNTER, 6.0),
		Entry(nil, received(1), dto.MetricType_COUNTER, 7.0),
		Entry(nil, received(2), dto.MetricType_COUNTER, 8.0),
		Entry(nil, sent(0), dto.MetricType_COUNTER, 9.0),
		Entry(nil, sent(1), dto.MetricType_COUNTER, 10.0),
		Entry(nil, sent(2), dto.MetricType_COUNTER, 11.0),
		Entry(nil, bytesIn, dto.MetricType_COUNTER, 12.0),
		Entry(nil, bytesOut, dto.MetricType_COUNTER, 13.0),
		Entry(nil, `gatehouse_broker_messages_dropped_total{reason="queue_full"}`, dto.MetricType_COUNTER, 14.0),
		Entry(nil, offline0, dto.MetricType_COUNTER, 15.0),
		Entry(nil, `gatehouse_broker_messages_dropped_total{reason="too_large"}`, dto.MetricType_COUNTER, 16.0),
		Entry(nil, `gatehouse_broker_messages_dropped_total{reason="expired"}`, dto.MetricType_COUNTER, 17.0),
		Entry(nil, `gatehouse_broker_messages_dropped_total{reason="acl"}`, dto.MetricType_COUNTER, 18.0),
		Entry(nil, retained, dto.MetricType_GAUGE, 19.0),
		Entry(nil, inflight, dto.MetricType_GAUGE, 20.0),
		Entry(nil, queued, dto.MetricType_GAUGE, 21.0),
		Entry(nil, subs, dto.MetricType_GAUGE, 22.0),
		Entry(nil, sessions, dto.MetricType_GAUGE, 23.0),
		Entry(nil, persistent, dto.MetricType_GAUGE, 24.0),
		Entry(nil, "gatehouse_broker_wills_published_total", dto.MetricType_COUNTER, 25.0),
		Entry(nil, "gatehouse_broker_sessions_expired_total", dto.MetricType_COUNTER, 26.0),
		Entry(nil, "gatehouse_broker_takeovers_total", dto.MetricType_COUNTER, 27.0),
		Entry(nil, "gatehouse_broker_keepalive_timeouts_total", dto.MetricType_COUNTER, 28.0),
		Entry(nil, uptime, dto.MetricType_GAUGE, 90.5),
	)

	It("exposes no broker series beyond those, and the standard Go and process collectors", func() {
		n := 0
		for series := range values {
			if strings.HasPrefix(series, metrics.Prefix) {
				n++
			}
		}
		Expect(n).To(Equal(29), "gatehouse_broker_ series: %v", values)
		Expect(types).To(HaveKey("go_goroutines"))
		Expect(types).To(HaveKey("process_cpu_seconds_total"))
	})
})

var _ = It("documents every broker metric in README.md", func() {
	readme, err := os.ReadFile("README.md")
	Expect(err).NotTo(HaveOccurred())
	_, types := gathered(newFixed())
	for name := range types {
		if short, ok := strings.CutPrefix(name, metrics.Prefix); ok {
			Expect(string(readme)).To(ContainSubstring("| `"+short+"` |"), "README row of %s", name)
		}
	}
})
