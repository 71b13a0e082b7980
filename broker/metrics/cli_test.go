package metrics_test

import (
	"os/exec"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

var (
	listeningAt = regexp.MustCompile(`listening tcp tcp (127\.0\.0\.1:\d+)`)
	metricsAt   = regexp.MustCompile(`metrics (http://127\.0\.0\.1:\d+/metrics)`)
)

var _ = Describe("gatehouse broker --metrics-listen", func() {
	It("serves the broker's metrics at /metrics", func() {
		bin, err := gexec.Build("github.com/gatehouse-iot/gatehouse/cmd/gatehouse", "-race")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
		s, err := gexec.Start(exec.Command(bin, "broker", "--listen", "127.0.0.1:0", "--allow-anonymous",
			"--metrics-listen", "127.0.0.1:0", "--log-level", "warn"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { s.Interrupt().Wait(wait) })
		Eventually(s.Out).WithTimeout(30 * time.Second).Should(gbytes.Say(`metrics http://`))
		url := metricsAt.FindSubmatch(s.Out.Contents())
		addr := listeningAt.FindSubmatch(s.Out.Contents())
		Expect(url).NotTo(BeNil())
		Expect(addr).NotTo(BeNil())

		Expect(get(string(url[1]))).To(HaveKeyWithValue(persistent, 0.0))
		c := paho("tcp://"+string(addr[1]), "gate-01", false)
		publish(c, "acs/s1/gate/gate-01/evt/card", 1, false, "c")
		after := get(string(url[1]))
		Expect(after).To(HaveKeyWithValue(connected, 1.0))
		Expect(after).To(HaveKeyWithValue(persistent, 1.0))
		Expect(after).To(HaveKeyWithValue(received(1), 1.0))
		Expect(after).To(HaveKey(uptime))
	})
})
