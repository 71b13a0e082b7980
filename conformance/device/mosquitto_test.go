package device_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
	"github.com/gatehouse-iot/gatehouse/conformance/device/firmwarebug"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// A device built on another MQTT stack: Debian's mosquitto_sub and mosquitto_pub (libmosquitto)
// acting as devices, certified on the protocol profile. They use the smallest keepalive
// libmosquitto accepts (5s).
type mosquittoDevice struct {
	name    string
	sub     bool   // mosquitto_sub (else mosquitto_pub -l fed a line every 300ms)
	qos     int    // subscription or publication QoS
	version string // mqttv311 or mqttv5
	bug     firmwarebug.Bug
}

func (m mosquittoDevice) clientID() string { return "mosq-" + m.name }

// certifyMosquitto certifies one mosquitto client in a child process.
func certifyMosquitto(m mosquittoDevice, sub, pub string) (*certdevice.Result, error) {
	id := m.clientID()
	var proc *process
	stopFeed := func() {}
	var shim *firmwarebug.Shim
	cfg := fastConfig(certdevice.ProfileProtocol, id)
	cfg.Listening = func(addr net.Addr) (certdevice.Physical, error) {
		target := addr.String()
		if m.bug != "" {
			var err error
			if shim, err = firmwarebug.Start(target, m.bug); err != nil {
				return nil, err
			}
			target = shim.Addr()
		}
		host, port, _ := net.SplitHostPort(target)
		args := []string{"-h", host, "-p", port, "-i", id, "-c", "-k", "5", "-q", strconv.Itoa(m.qos), "-V", m.version,
			"--will-topic", "dev/" + id + "/status", "--will-payload", "offline", "--will-qos", "1", "--will-retain"}
		var cmd *exec.Cmd
		if m.sub {
			cmd = exec.Command(sub, append(args, "-t", "dev/"+id+"/cmd/#", "-v")...)
		} else {
			cmd = exec.Command(pub, append(args, "-t", "dev/"+id+"/data", "-l")...)
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if proc, err = startProcess(cmd); err != nil {
			return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
		}
		if m.sub {
			_ = stdin.Close()
		} else {
			stopFeed = feedLines(stdin, id+" reading", 300*time.Millisecond)
		}
		return nil, nil
	}
	res, err := certdevice.Certify(context.Background(), cfg)
	stopFeed()
	if proc != nil {
		proc.stop(5 * time.Second)
	}
	if shim != nil {
		_ = shim.Close()
	}
	return res, err
}

var _ = ginkgo.Describe("certifying mosquitto clients as devices", ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Label("mosquitto"), func() {
	devices := []mosquittoDevice{
		{name: "sub311", sub: true, qos: 2, version: "mqttv311"},
		{name: "pub311-q1", qos: 1, version: "mqttv311"},
		{name: "pub311-q2", qos: 2, version: "mqttv311"},
		{name: "sub5", sub: true, qos: 2, version: "mqttv5"},
		{name: "pub5-q1", qos: 1, version: "mqttv5"},
		{name: "pub311-q2-republish", qos: 2, version: "mqttv311", bug: firmwarebug.QoS2Republish},
		{name: "pub5-alias-over-max", qos: 1, version: "mqttv5", bug: firmwarebug.AliasOverMax},
		{name: "pub5-ignore-receive-maximum", qos: 1, version: "mqttv5", bug: firmwarebug.IgnoreReceiveMaximum},
		{name: "sub5-ignore-server-keepalive", sub: true, qos: 2, version: "mqttv5", bug: firmwarebug.IgnoreServerKeepalive},
		{name: "sub5-continue-after-disconnect", sub: true, qos: 2, version: "mqttv5", bug: firmwarebug.ContinueAfterDisconnect},
	}
	var results map[string]*certdevice.Result
	var errs map[string]error
	sub, errSub := testenv.LookTool("mosquitto_sub")
	pub, errPub := testenv.LookTool("mosquitto_pub")
	work := inBackground("mosquitto", func() {
		if errSub == nil && errPub == nil {
			results, errs = runAll(devices, func(m mosquittoDevice) string { return m.name }, func(m mosquittoDevice) (*certdevice.Result, error) {
				return certifyMosquitto(m, sub, pub)
			})
		}
	})

	ginkgo.BeforeAll(func() {
		requireTool("mosquitto_sub", testenv.MosquittoInstall)
		requireTool("mosquitto_pub", testenv.MosquittoInstall)
		work.wait()
		gomega.Expect(errs).To(gomega.BeEmpty())
	})

	ginkgo.DescribeTable("passes the protocol profile",
		func(name string, exercised ...string) {
			res := results[name]
			gomega.Expect(res).NotTo(gomega.BeNil())
			gomega.Expect(res.Failed()).To(gomega.BeFalse(), explain(res))
			for _, q := range res.Requirements {
				if q.ID == certdevice.ReqKeepalive || q.ID == certdevice.ReqServerKeepalive {
					// libmosquitto checks its keepalive once per pass of its network loop (up to
					// a second apart): a PINGREQ may come a little after the Keep Alive, a warning.
					gomega.Expect(q.Outcome).To(gomega.BeElementOf(report.Pass, report.Warn), explain(res))
					continue
				}
				gomega.Expect(q.Outcome).To(gomega.BeElementOf(report.Pass, report.Skip), "%s: %s\n%s", q.ID, q.Message, explain(res))
			}
			for _, id := range exercised {
				gomega.Expect(outcome(res, id)).To(gomega.BeElementOf(report.Pass, report.Warn), "%s should have been exercised\n%s", id, explain(res))
			}
		},
		ginkgo.Entry("mosquitto_sub, 3.1.1, QoS 2 subscription: keepalive, will, receiving QoS 1 and 2", "sub311",
			certdevice.ReqConnect, certdevice.ReqPackets, certdevice.ReqKeepalive, certdevice.ReqSilentServer,
			certdevice.ReqAcknowledges, certdevice.ReqResubscribe, certdevice.ReqRefused),
		ginkgo.Entry("mosquitto_pub, 3.1.1, QoS 1: resend with DUP", "pub311-q1",
			certdevice.ReqKeepalive, certdevice.ReqResendQoS1, certdevice.ReqDup, certdevice.ReqPacketIDs, certdevice.ReqRefused),
		ginkgo.Entry("mosquitto_pub, 3.1.1, QoS 2: exactly once across lost connections", "pub311-q2",
			certdevice.ReqQoS2, certdevice.ReqDup, certdevice.ReqPacketIDs),
		ginkgo.Entry("mosquitto_sub, 5.0: server DISCONNECT, Server Keep Alive, Topic Alias Maximum", "sub5",
			certdevice.ReqAcknowledges, certdevice.ReqServerDisconnect, certdevice.ReqServerKeepalive, certdevice.ReqTopicAlias,
			certdevice.ReqResubscribe, certdevice.ReqSilentServer),
		ginkgo.Entry("mosquitto_pub, 5.0, QoS 1: Receive Maximum, resend", "pub5-q1",
			certdevice.ReqReceiveMaximum, certdevice.ReqResendQoS1, certdevice.ReqDup),
	)

	ginkgo.DescribeTable("catches a faulty client in the requirement its bug breaks, and only there",
		func(name, broken, why string) {
			res := results[name]
			gomega.Expect(res).NotTo(gomega.BeNil())
			q, _ := res.Requirement(broken)
			gomega.Expect(q.Outcome).To(gomega.Equal(report.Fail), explain(res))
			gomega.Expect(q.Message).To(gomega.ContainSubstring(why))
			gomega.Expect(failedOthers(res, broken)).To(gomega.BeEmpty(), explain(res))
		},
		ginkgo.Entry("a QoS 2 message published again as a new one after reconnecting", "pub311-q2-republish", certdevice.ReqQoS2, "exactly once is broken"),
		ginkgo.Entry("a Topic Alias above the maximum", "pub5-alias-over-max", certdevice.ReqTopicAlias, "above the server's Topic Alias Maximum"),
		ginkgo.Entry("Receive Maximum ignored", "pub5-ignore-receive-maximum", certdevice.ReqReceiveMaximum, "with Receive Maximum 1"),
		ginkgo.Entry("Server Keep Alive ignored", "sub5-ignore-server-keepalive", certdevice.ReqServerKeepalive, "a server would have closed the connection"),
		ginkgo.Entry("packets after the server's DISCONNECT", "sub5-continue-after-disconnect", certdevice.ReqServerDisconnect, "after the server's DISCONNECT"),
	)
})
