package metrics_test

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/broker/metrics"
	"github.com/gatehouse-iot/gatehouse/packet"
)

const wait = 5 * time.Second

func get(url string) scrape {
	GinkgoHelper()
	c := http.Client{Timeout: wait}
	resp, err := c.Get(url)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	// A scraper that asks for nothing in particular gets the text format 0.0.4.
	ct := resp.Header.Get("Content-Type")
	Expect(expfmt.ResponseFormat(resp.Header).FormatType()).To(Equal(expfmt.TypeTextPlain), "Content-Type %q", ct)
	media, params, err := mime.ParseMediaType(ct)
	Expect(err).NotTo(HaveOccurred())
	Expect(media).To(Equal("text/plain"))
	Expect(params).To(HaveKeyWithValue("version", "0.0.4"))
	Expect(params).To(HaveKeyWithValue("charset", "utf-8"))
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	s, err := parseExposition(string(body))
	Expect(err).NotTo(HaveOccurred(), "exposition:\n%s", body)
	// The whole body is valid exposition for Prometheus's own parser too, with the same families.
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred(), "exposition:\n%s", body)
	Expect(families).To(HaveLen(len(familiesIn(s))), "families, by expfmt and by the strict parser")
	for name := range families {
		Expect(familiesIn(s)).To(HaveKey(name))
	}
	return s
}

// familiesIn returns the family names of a parsed scrape (a summary's _sum and _count series are
// its own family's).
func familiesIn(s scrape) map[string]bool {
	out := map[string]bool{}
	for key := range s {
		out[strings.SplitN(key, "{", 2)[0]] = true
	}
	for name := range out {
		for _, suffix := range []string{"_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && out[base] {
				delete(out, name)
			}
		}
	}
	return out
}

func paho(url, id string, clean bool) mqtt.Client {
	GinkgoHelper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(wait))
	tok := c.Connect()
	Expect(tok.WaitTimeout(wait)).To(BeTrue())
	Expect(tok.Error()).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if c.IsConnected() {
			c.Disconnect(0)
		}
	})
	return c
}

func publish(c mqtt.Client, topic string, qos byte, retained bool, payload string) {
	GinkgoHelper()
	tok := c.Publish(topic, qos, retained, payload)
	Expect(tok.WaitTimeout(wait)).To(BeTrue())
	Expect(tok.Error()).NotTo(HaveOccurred())
}

const (
	connected  = "gatehouse_broker_clients_connected"
	total      = "gatehouse_broker_clients_total"
	sessions   = "gatehouse_broker_sessions"
	persistent = "gatehouse_broker_persistent_sessions"
	subs       = "gatehouse_broker_subscriptions"
	retained   = "gatehouse_broker_retained_messages"
	inflight   = "gatehouse_broker_inflight_messages"
	queued     = "gatehouse_broker_queued_messages"
	uptime     = "gatehouse_broker_uptime_seconds"
	bytesIn    = "gatehouse_broker_bytes_received_total"
	bytesOut   = "gatehouse_broker_bytes_sent_total"
	offline0   = `gatehouse_broker_messages_dropped_total{reason="offline_qos0"}`
)

func received(q int) string {
	return `gatehouse_broker_messages_received_total{qos="` + string(rune('0'+q)) + `"}`
}
func sent(q int) string {
	return `gatehouse_broker_messages_sent_total{qos="` + string(rune('0'+q)) + `"}`
}

var _ = Describe("The metrics endpoint of a running broker", func() {
	It("moves with the traffic of real clients", func() {
		b := brokertest.Start(GinkgoT())
		srv := httptest.NewServer(metrics.Handler(b))
		DeferCleanup(srv.Close)
		url := srv.URL + "/metrics"
		scrapeWhen := func(cond func(scrape) bool) scrape {
			GinkgoHelper()
			var s scrape
			Eventually(func() bool { s = get(url); return cond(s) }).WithTimeout(wait).Should(BeTrue(), "last scrape: %v", s)
			return s
		}

		s0 := get(url)
		for _, name := range []string{connected, total, sessions, persistent, subs, retained, inflight, queued} {
			Expect(s0).To(HaveKeyWithValue(name, 0.0), name)
		}
		Expect(s0).To(HaveKey(uptime))

		// A persistent subscriber and a publisher connect.
		got := make(chan mqtt.Message, 16)
		sub := paho(b.URL(), "billing", false)
		tok := sub.Subscribe("acs/+/gate/+/evt/#", 2, func(_ mqtt.Client, m mqtt.Message) { got <- m })
		Expect(tok.WaitTimeout(wait)).To(BeTrue())
		pub := paho(b.URL(), "gate-01", true)
		s1 := get(url)
		Expect(s1).To(HaveKeyWithValue(connected, 2.0))
		Expect(s1).To(HaveKeyWithValue(total, 2.0))
		Expect(s1).To(HaveKeyWithValue(sessions, 2.0))
		Expect(s1).To(HaveKeyWithValue(persistent, 1.0))
		Expect(s1).To(HaveKeyWithValue(subs, 1.0))
		Expect(s1[bytesIn]).To(BeNumerically(">", s0[bytesIn]))
		Expect(s1[bytesOut]).To(BeNumerically(">", s0[bytesOut]))

		// Messages in and out, by QoS.
		publish(pub, "acs/s1/gate/gate-01/evt/telemetry", 0, false, "t")
		for range 3 {
			publish(pub, "acs/s1/gate/gate-01/evt/card", 1, false, "c")
		}
		for range 2 {
			publish(pub, "acs/s1/gate/gate-01/evt/charge", 2, false, "€")
		}
		for range 6 {
			Eventually(got).WithTimeout(wait).Should(Receive())
		}
		s2 := scrapeWhen(func(s scrape) bool { return s[sent(2)] == 2 })
		for q, n := range []float64{1, 3, 2} {
			Expect(s2).To(HaveKeyWithValue(received(q), n))
			Expect(s2).To(HaveKeyWithValue(sent(q), n))
		}
		Expect(s2[bytesIn]).To(BeNumerically(">", s1[bytesIn]))
		Expect(s2[bytesOut]).To(BeNumerically(">", s1[bytesOut]))

		// Retained: set, replace, delete.
		publish(pub, "acs/s1/gate/gate-01/status", 1, true, `{"online":true}`)
		publish(pub, "acs/s1/gate/gate-02/status", 1, true, `{"online":true}`)
		Expect(get(url)).To(HaveKeyWithValue(retained, 2.0))
		publish(pub, "acs/s1/gate/gate-02/status", 1, true, "")
		Expect(get(url)).To(HaveKeyWithValue(retained, 1.0))

		// The subscriber leaves; its session stays. A QoS 0 message for it is dropped and
		// counted, a QoS 1 message waits in the session.
		sub.Disconnect(250)
		scrapeWhen(func(s scrape) bool { return s[connected] == 1 })
		publish(pub, "acs/s1/gate/gate-01/evt/telemetry", 0, false, "t")
		publish(pub, "acs/s1/gate/gate-01/evt/card", 1, false, "c")
		s3 := scrapeWhen(func(s scrape) bool { return s[offline0] == s2[offline0]+1 })
		Expect(s3).To(HaveKeyWithValue(queued, 1.0))
		Expect(s3).To(HaveKeyWithValue(sessions, 2.0))
		Expect(s3).To(HaveKeyWithValue(persistent, 1.0))

		// A subscriber that never acknowledges holds a message in flight.
		nc, err := net.DialTimeout("tcp", b.Addr(), wait)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = nc.Close() })
		r := packet.NewReader(bufio.NewReader(nc), 0)
		r.SetVersion(packet.V311)
		_, err = nc.Write(packet.Build(&packet.Connect{ClientID: "audit", CleanStart: true, KeepAlive: 60}, packet.V311))
		Expect(err).NotTo(HaveOccurred())
		_, err = nc.Write(packet.Build(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "acs/+/gate/+/evt/#", QoS: 1}}}, packet.V311))
		Expect(err).NotTo(HaveOccurred())
		Expect(nc.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
		for _, want := range []packet.Type{packet.TypeConnack, packet.TypeSuback} {
			p, err := r.ReadPacket()
			Expect(err).NotTo(HaveOccurred())
			Expect(p.Type()).To(Equal(want))
		}
		publish(pub, "acs/s1/gate/gate-01/evt/card", 1, false, "c")
		p, err := r.ReadPacket()
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Type()).To(Equal(packet.TypePublish))
		s4 := get(url)
		Expect(s4).To(HaveKeyWithValue(inflight, 1.0))
		Expect(s4).To(HaveKeyWithValue(queued, 2.0))
		Expect(s4).To(HaveKeyWithValue(subs, 2.0))
		Expect(s4).To(HaveKeyWithValue(total, 3.0))

		// It goes away without acknowledging: its clean session ends, and what it held with it.
		Expect(nc.Close()).To(Succeed())
		// The counters fall one after the other as the broker cleans up; wait for the last.
		s5 := scrapeWhen(func(s scrape) bool { return s[connected] == 1 && s[subs] == 1 })
		Expect(s5).To(HaveKeyWithValue(inflight, 0.0))
		Expect(s5).To(HaveKeyWithValue(sessions, 2.0))

		// Uptime moves on its own.
		scrapeWhen(func(s scrape) bool { return s[uptime] > s5[uptime] })
	})
})
