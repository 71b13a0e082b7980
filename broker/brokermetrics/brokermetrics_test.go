package brokermetrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokermetrics"
)

func TestHandlerServesStats(t *testing.T) {
	var st broker.Stats
	st.ClientsConnected.Store(3)
	st.MessagesReceived[1].Add(7)
	st.DroppedQueueFull.Add(2)
	srv := httptest.NewServer(brokermetrics.Handler(&st))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != brokermetrics.ContentType {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{
		"# TYPE gatehouse_broker_clients_connected gauge\ngatehouse_broker_clients_connected 3\n",
		`gatehouse_broker_messages_received_total{qos="1"} 7` + "\n",
		`gatehouse_broker_messages_dropped_total{reason="queue_full"} 2` + "\n",
		"# TYPE gatehouse_broker_protocol_errors_total counter\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// Every sample line is "name{labels} value" and every family has HELP and TYPE.
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 || !strings.HasPrefix(f[0], "gatehouse_broker_") {
			t.Errorf("bad sample line %q", line)
		}
	}
}
