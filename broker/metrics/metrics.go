// Package metrics is the /metrics endpoint of a running reference broker, in the Prometheus text
// exposition format (version 0.0.4): the counters of broker.Stats (written by brokermetrics) and
// the values that need the broker itself — uptime (the $SYS/broker/uptime equivalent) and the
// sessions it holds, persistent ones apart.
//
// Everything is read at scrape time, so the broker's hot path pays nothing for metrics.
package metrics

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokermetrics"
)

// Source is what the endpoint reads; *broker.Broker is one.
type Source interface {
	Stats() *broker.Stats
	Uptime() time.Duration
	SessionCounts() (all, persistent int)
}

var _ Source = (*broker.Broker)(nil)

// Prefix starts the name of every metric.
const Prefix = "gatehouse_broker_"

// Write writes every metric of src: the Stats counters, then uptime and sessions.
func Write(w io.Writer, src Source) error {
	var buf bytes.Buffer
	if err := brokermetrics.Write(&buf, src.Stats()); err != nil {
		return err
	}
	all, persistent := src.SessionCounts()
	gauge(&buf, "uptime_seconds", "Seconds since the broker started ($SYS/broker/uptime).", src.Uptime().Seconds())
	gauge(&buf, "sessions", "Sessions held, connected or not.", float64(all))
	gauge(&buf, "persistent_sessions", "Sessions that outlive their connection (3.x CleanSession 0, 5.0 Session Expiry Interval > 0).", float64(persistent))
	_, err := w.Write(buf.Bytes())
	return err
}

func gauge(b *bytes.Buffer, name, help string, v float64) {
	name = Prefix + name
	b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " ")
	b.Write(strconv.AppendFloat(nil, v, 'g', -1, 64))
	b.WriteByte('\n')
}

// Handler serves Write (mount it at /metrics). A scrape that cannot be written answers 500.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		if err := Write(&buf, src); err != nil {
			http.Error(w, "metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", brokermetrics.ContentType)
		_, _ = w.Write(buf.Bytes())
	})
}
