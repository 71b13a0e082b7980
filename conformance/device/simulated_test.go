package device_test

import (
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
	"github.com/gatehouse-iot/gatehouse/conformance/device/firmwarebug"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// The reference simulated devices, and faulty variants of them, certified in this process (the
// separate-process runs are in process_test.go). Every certification runs at once in BeforeAll;
// the specs read the results.
var _ = ginkgo.Describe("certifying simulated devices", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label("simulated"), func() {
	variants := []variant{
		{name: "ref", kind: "gate", physical: true},
		{name: "ref", kind: "turnstile", physical: true},
		{name: "ref", kind: "camera", physical: true},
		{name: "ref-protocol", kind: "gate", profile: "protocol"},
		{name: "ref-protocol", kind: "turnstile", profile: "protocol"},
		{name: "ref-protocol", kind: "camera", profile: "protocol"},
		{name: "no-pingreq", kind: "gate", fault: fault.NoPingreq},
		{name: "no-dup", kind: "gate", fault: fault.NoDup},
		{name: "wrong-will", kind: "turnstile", fault: fault.WrongWill},
		{name: "no-resubscribe", kind: "gate", bug: firmwarebug.NoResubscribe},
		{name: "ack-without-corr", kind: "camera", bug: firmwarebug.AckWithoutCorr},
		{name: "no-resend", kind: "gate", bug: firmwarebug.NoResend},
		{name: "status-not-retained", kind: "turnstile", bug: firmwarebug.StatusNotRetained},
		{name: "state-not-retained", kind: "camera", bug: firmwarebug.StateNotRetained},
		{name: "telemetry-qos1", kind: "gate", bug: firmwarebug.TelemetryQoS1},
		{name: "no-puback", kind: "gate", bug: firmwarebug.NoPuback},
		{name: "ignore-refusal", kind: "turnstile", bug: firmwarebug.IgnoreRefusal},
		{name: "publish-wildcard", kind: "camera", bug: firmwarebug.PublishWildcard},
		{name: "password-without-user", kind: "gate", bug: firmwarebug.PasswordWithoutUser},
		{name: "event-without-seq", kind: "turnstile", bug: firmwarebug.EventWithoutSeq},
		{name: "accept-everything", kind: "gate", bug: firmwarebug.AcceptEverything},
		{name: "disconnect-on-loss", kind: "turnstile", physical: true, bug: firmwarebug.DisconnectOnLoss},
		{name: "no-reconnect", kind: "camera", bug: firmwarebug.NoReconnect},
		{name: "fake-pingresp", kind: "camera", bug: firmwarebug.FakePingresp},
		{name: "reuse-packet-id", kind: "camera", bug: firmwarebug.ReusePacketID},
	}
	var results map[string]*certdevice.Result
	var errs map[string]error
	work := inBackground("simulated", func() {
		results, errs = runAll(variants, func(v variant) string { return v.kind + "/" + v.name }, certifySim)
	})

	ginkgo.BeforeAll(func() {
		work.wait()
		gomega.Expect(errs).To(gomega.BeEmpty())
	})

	// vendors compare their firmware against the reference devices: every requirement passes,
	// without a warning, the keepalive included (MQTT-3.1.2-23: no gap between the device's
	// packets above its Keep Alive).
	ginkgo.DescribeTable("the reference devices pass every requirement, without a warning",
		func(key string, notExercised []string) {
			res := results[key]
			gomega.Expect(res).NotTo(gomega.BeNil())
			gomega.Expect(failedOthers(res)).To(gomega.BeEmpty(), explain(res))
			if res.Profile != "protocol" {
				gomega.Expect(res.Identity.Firmware).To(gomega.Equal("1.4.2"), "firmware read from the online status")
			}
			for _, q := range res.Requirements {
				if q.Outcome == report.Skip {
					gomega.Expect(notExercised).To(gomega.ContainElement(q.ID), "%s was not exercised: %s", q.ID, q.Message)
					continue
				}
				gomega.Expect(q.Outcome).To(gomega.Equal(report.Pass), "%s: %s\n%s", q.ID, q.Message, explain(res))
			}
		},
		ginkgo.Entry("exit gate, with its physical side", "gate/ref", []string{}),
		ginkgo.Entry("turnstile, with its physical side", "turnstile/ref", []string{certdevice.ReqQoS2}),
		ginkgo.Entry("camera, with its physical side", "camera/ref", []string{certdevice.ReqQoS2}),
		// The protocol profile judges MQTT alone; none of them publishes at QoS 2 by itself.
		ginkgo.Entry("exit gate, protocol profile", "gate/ref-protocol", []string{certdevice.ReqQoS2}),
		ginkgo.Entry("turnstile, protocol profile", "turnstile/ref-protocol", []string{certdevice.ReqQoS2}),
		ginkgo.Entry("camera, protocol profile", "camera/ref-protocol", []string{certdevice.ReqQoS2}),
	)

	// The exit gate's charge is its one QoS 2 message: the certifier drops the connection before
	// the PUBREC and again before the PUBCOMP, and the gate resends the PUBLISH, then only the
	// PUBREL (MQTT-4.3.3-1, MQTT-4.4.0-1), although its client library would resend the PUBLISH.
	ginkgo.It("follows the reference exit gate's charge through both drops of the QoS 2 exchange", func() {
		res := results["gate/ref"]
		q, _ := res.Requirement(certdevice.ReqQoS2)
		gomega.Expect(q.Outcome).To(gomega.Equal(report.Pass), explain(res))
		var texts []string
		for _, f := range q.Findings {
			texts = append(texts, f.Text)
		}
		gomega.Expect(texts).To(gomega.ContainElement(gomega.ContainSubstring("only PUBREL after")), explain(res))
		for _, id := range []string{certdevice.ReqEvents, certdevice.ReqPowerLoss, certdevice.ReqMessageQoS, certdevice.ReqDup} {
			gomega.Expect(outcome(res, id)).To(gomega.Equal(report.Pass), "%s\n%s", id, explain(res))
		}
	})

	ginkgo.DescribeTable("a faulty device fails the requirement its bug breaks, and no other",
		func(key, broken, why string) {
			res := results[key]
			gomega.Expect(res).NotTo(gomega.BeNil())
			q, ok := res.Requirement(broken)
			gomega.Expect(ok).To(gomega.BeTrue())
			if q.Level == certdevice.Should {
				// A SHOULD requirement that does not hold is a warning, never a failure.
				gomega.Expect(q.Outcome).To(gomega.Equal(report.Warn), explain(res))
				gomega.Expect(res.Failed()).To(gomega.BeFalse(), explain(res))
			} else {
				gomega.Expect(q.Outcome).To(gomega.Equal(report.Fail), explain(res))
				gomega.Expect(res.Failed()).To(gomega.BeTrue())
			}
			gomega.Expect(q.Message).To(gomega.ContainSubstring(why))
			gomega.Expect(failedOthers(res, broken)).To(gomega.BeEmpty(), explain(res))
		},
		ginkgo.Entry("no PINGREQ", "gate/no-pingreq", certdevice.ReqKeepalive, "PINGREQ"),
		ginkgo.Entry("no DUP on resend", "gate/no-dup", certdevice.ReqDup, "DUP=0"),
		ginkgo.Entry("wrong will", "turnstile/wrong-will", certdevice.ReqWill, "not on the status topic"),
		ginkgo.Entry("no resubscribe", "gate/no-resubscribe", certdevice.ReqResubscribe, "did not subscribe again"),
		ginkgo.Entry("ack without correlation id", "camera/ack-without-corr", certdevice.ReqCommands, "acked without its corr"),
		ginkgo.Entry("no resend after a lost connection", "gate/no-resend", certdevice.ReqResendQoS1, "was not sent again"),
		ginkgo.Entry("status not retained", "turnstile/status-not-retained", certdevice.ReqStatus, "retain false"),
		ginkgo.Entry("state not retained", "camera/state-not-retained", certdevice.ReqState, "retain false"),
		ginkgo.Entry("telemetry at QoS 1", "gate/telemetry-qos1", certdevice.ReqMessageQoS, "telemetry published at QoS 1"),
		ginkgo.Entry("no PUBACK for commands", "gate/no-puback", certdevice.ReqAcknowledges, "no PUBACK for the QoS 1 message"),
		ginkgo.Entry("publishing on a refused connection", "turnstile/ignore-refusal", certdevice.ReqRefused, "on the connection the server had refused"),
		ginkgo.Entry("a wildcard in a topic name", "camera/publish-wildcard", certdevice.ReqPackets, "MQTT-3.3.2-2"),
		ginkgo.Entry("a password without a user name", "gate/password-without-user", certdevice.ReqConnect, "MQTT-3.1.2-22"),
		ginkgo.Entry("events without seq", "turnstile/event-without-seq", certdevice.ReqEvents, "no numeric seq"),
		ginkgo.Entry("commands it cannot do acked ok", "gate/accept-everything", certdevice.ReqRejects, `answered "ok", not "rejected"`),
		ginkgo.Entry("DISCONNECT on power loss", "turnstile/disconnect-on-loss", certdevice.ReqPowerLoss, "sent DISCONNECT when its power was cut"),
		ginkgo.Entry("no reconnection", "camera/no-reconnect", certdevice.ReqReconnects, "did not reconnect"),
		ginkgo.Entry("never notices a silent server", "camera/fake-pingresp", certdevice.ReqSilentServer, "kept the connection open"),
		ginkgo.Entry("a packet identifier reused", "camera/reuse-packet-id", certdevice.ReqPacketIDs, "still unacknowledged"),
	)

	// The report is one self-contained page: opened alone in Chromium, with scripts off and
	// nothing else fetched, it says which requirement failed and why.
	ginkgo.It("writes a report that shows in a browser which requirement failed and why", func() {
		var chromium string
		for _, name := range chromiumNames {
			if p, err := testenv.LookTool(name); err == nil {
				chromium = p
				break
			}
		}
		if chromium == "" {
			requireTool("chromium", "apt-get install -y chromium")
		}
		res := results["turnstile/wrong-will"]
		text, open, requests := renderReport(chromium, res, ginkgo.GinkgoT().TempDir())
		q, _ := res.Requirement(certdevice.ReqWill)
		gomega.Expect(text).To(gomega.ContainSubstring("[MUST] will: leaves its offline will on its status topic"))
		for _, line := range strings.Split(q.Message, "\n") {
			gomega.Expect(text).To(gomega.ContainSubstring(strings.Join(strings.Fields(line), " ")))
		}
		gomega.Expect(text).To(gomega.ContainSubstring(`will on "acs/site-1/turnstile/turnstile-wrong-will/lwt", not on the status topic`))
		gomega.Expect(text).To(gomega.ContainSubstring("firmware 1.4.2"), "the device's identity")
		gomega.Expect(text).To(gomega.ContainSubstring("MQTT-3.1.2-9"), "the statement the failed requirement checks")
		gomega.Expect(open).To(gomega.Equal(len(res.Failures())), "the failing requirements are open, the others folded")
		gomega.Expect(requests).NotTo(gomega.BeEmpty(), "the network listener saw not even the page itself")
		for _, u := range requests {
			gomega.Expect(u).To(gomega.HavePrefix("file://"), "the page fetched %s; it must be self-contained", u)
		}
	})
})
