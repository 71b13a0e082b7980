package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-iot/gatehouse/broker/metrics"
)

// BenchmarkGather is the cost of one scrape's gathering: the broker's families alone, and with the
// standard Go and process collectors of the served registry. It is paid by the scraper's request,
// never by the broker's publish path.
func BenchmarkGather(b *testing.B) {
	for _, tc := range []struct {
		name string
		reg  *prometheus.Registry
	}{
		{"broker", func() *prometheus.Registry {
			r := prometheus.NewRegistry()
			r.MustRegister(metrics.NewCollector(newFixed()))
			return r
		}()},
		{"served", metrics.NewRegistry(newFixed())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
