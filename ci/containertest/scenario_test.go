package containertest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/ci/images/imagestest"
)

const crashScenario = "../../fixtures/containers/broker-crash-queued-command.yaml"

// scenarioCases reads the JSON record of a gatehouse run: case name → outcome.
func scenarioCases(dir, name string) map[string]string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	Expect(err).NotTo(HaveOccurred())
	var rec struct {
		Cases []struct {
			Name    string `json:"name"`
			Outcome string `json:"outcome"`
		} `json:"cases"`
	}
	Expect(json.Unmarshal(b, &rec)).To(Succeed())
	out := map[string]string{}
	for _, c := range rec.Cases {
		out[c.Name] = c.Outcome
	}
	return out
}

func scenarioSpecs() {
	Describe("a scenario that crashes the broker container while it owes a gate a command", func() {
		It("passes against the reference image, which keeps the queued command on its volume, and fails, naming the lost command, against the same broker without a data directory", func(_ SpecContext) {
			volatile := imagestest.Derive(GinkgoT(), gatehouseImage, "gatehouse-volatile:containertest",
				`CMD ["broker", "--listen", "0.0.0.0:1883", "--allow-anonymous"]`)
			// Side by side: each run is mostly waiting for its timeline.
			kept := startCLI("run", crashScenario, "--broker", "image:"+gatehouseImage)
			lost := startCLI("run", crashScenario, "--broker", "image:"+volatile)

			Expect(kept.wait(2*time.Minute)).To(Equal(0), "against image:%s:\n%s", gatehouseImage, kept.output())

			Expect(lost.wait(2*time.Minute)).To(Equal(1), "against image:%s:\n%s", volatile, lost.output())
			cases := scenarioCases(lost.dir, "broker-crash-queued-command")
			failed := []string{}
			for name, outcome := range cases {
				if outcome != "pass" {
					failed = append(failed, name)
				}
			}
			Expect(failed).To(ConsistOf(
				ContainSubstring(`step 3 "the platform opens gate-01 while it is off" (at 3s): ack ok`),
				ContainSubstring(`step 5 "power is back at gate-01" (at 12s): publish acs/+/gate/gate-01/state`),
			), "only the checks of the queued command may fail: the rest of the scenario rides through the crash")
		}, NodeTimeout(5*time.Minute))
	})
}
