package containertest_test

import (
	"encoding/json"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/target"
)

const deviceStatus = "acs/site-1/gate/gate-01/status"

// onlineFlags reads the "online" field of every status the platform saw published (retained
// replays left out), in arrival order.
func onlineFlags(platform *client) []bool {
	var out []bool
	for _, p := range platform.live(deviceStatus) {
		var st struct {
			Online *bool `json:"online"`
		}
		if json.Unmarshal([]byte(p), &st) == nil && st.Online != nil {
			out = append(out, *st.Online)
		}
	}
	return out
}

func last(flags []bool) any {
	if len(flags) == 0 {
		return "nothing yet"
	}
	return flags[len(flags)-1]
}

// partitionRig is a broker container and a device container on one user-defined network, and a
// platform client on the host that watches the device's status through the broker's published
// port.
type partitionRig struct {
	broker, device *target.Container
	platform       *client
}

func newPartitionRig(brokerCmd []string) partitionRig {
	GinkgoHelper()
	fleet, err := os.ReadFile("../../fixtures/containers/partition-fleet.yaml")
	Expect(err).NotTo(HaveOccurred())
	nw := newNetwork()
	var r partitionRig
	r.broker = startBroker(gatehouseImage, target.ContainerOptions{Cmd: brokerCmd, Network: nw.Name, Aliases: []string{"broker"}})
	r.platform, _ = dial(clientOptions(r.broker.Addr(), "platform", true))
	r.platform.subscribe("acs/+/gate/+/status")

	tg, err := target.Parse("image:" + gatehouseImage)
	Expect(err).NotTo(HaveOccurred())
	tg.ReadyLog = "fleet online"
	r.device = startTarget(tg, target.ContainerOptions{
		NoPort:  true,
		Network: nw.Name,
		Cmd:     []string{"sim", "--fleet", "/fleet.yaml", "--broker", "tcp://broker:1883", "--stats", "0"},
		Files:   []target.ContainerFile{{Path: "/fleet.yaml", Content: fleet, Mode: 0o644}},
	})
	Eventually(func() any { return last(onlineFlags(r.platform)) }).WithTimeout(10*time.Second).Should(Equal(true),
		"the device in its container never reported itself online\ndevice log:\n%s", r.device.Logs(20))
	return r
}

func partitionSpecs() {
	Describe("a simulated device in its own container, cut from the network it shares with the broker", func() {
		It("is declared offline by the broker with its will, and comes back online when the network does", func(ctx SpecContext) {
			r := newPartitionRig(nil)

			By("cutting the device's container from the network: no FIN, no RST, its packets go nowhere")
			cut := time.Now()
			Expect(r.device.Disconnect(ctx)).To(Succeed())

			By("the broker hears nothing for 1.5 × the 2 s keepalive (MQTT-3.1.2-24), closes the connection and publishes the will (MQTT-3.1.2-8)")
			Eventually(func() any { return last(onlineFlags(r.platform)) }).WithTimeout(15 * time.Second).Should(Equal(false))
			AddReportEntry("will published after the cut", time.Since(cut).Round(10*time.Millisecond).String())

			By("the network comes back: the device reconnects and reports itself online")
			Expect(r.device.Reconnect(ctx)).To(Succeed())
			Eventually(func() any { return last(onlineFlags(r.platform)) }).WithTimeout(15*time.Second).Should(Equal(true),
				"device log:\n%s", r.device.Logs(20))
			Expect(onlineFlags(r.platform)).To(Equal([]bool{true, false, true}))
		}, NodeTimeout(2*time.Minute))

		It("is not declared offline by a broker with the no-will fault mode: the check above sees the difference", func(ctx SpecContext) {
			r := newPartitionRig([]string{"broker", "--listen", "0.0.0.0:1883", "--allow-anonymous", "--fault", "no-will"})
			Expect(r.device.Disconnect(ctx)).To(Succeed())
			// The broker notices the silent device after 3 s (1.5 × 2 s); two more seconds of margin.
			Consistently(func() []bool { return onlineFlags(r.platform) }).WithTimeout(5*time.Second).
				Should(Equal([]bool{true}), "a broker with no-will published a will")
		}, NodeTimeout(2*time.Minute))
	})
}
