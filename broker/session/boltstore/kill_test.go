package boltstore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/gatehouse-iot/gatehouse/broker/session/boltstore"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var listening = regexp.MustCompile(`listening tcp tcp (127\.0\.0\.1:\d+)`)

// brokerProcess runs `gatehouse broker --data-dir dir` on a free loopback port and returns the
// process and its address.
func brokerProcess(bin, dir string) (*gexec.Session, string) {
	GinkgoHelper()
	cmd := exec.Command(bin, "broker", "--listen", "127.0.0.1:0", "--allow-anonymous", "--data-dir", dir, "--log-level", "warn")
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { s.Kill().Wait(wait) })
	Eventually(s.Out).WithTimeout(10 * time.Second).Should(gbytes.Say(`listening tcp tcp 127\.0\.0\.1:\d+`))
	m := listening.FindSubmatch(s.Out.Contents())
	Expect(m).NotTo(BeNil())
	return s, string(m[1])
}

func pahoClient(addr, id string) mqtt.Client {
	GinkgoHelper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).SetWriteTimeout(wait)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	Expect(tok.WaitTimeout(wait)).To(BeTrue())
	Expect(tok.Error()).NotTo(HaveOccurred())
	DeferCleanup(func() { c.Disconnect(0) })
	return c
}

// lost lists the acknowledged payloads not received, in order.
func lost(acked map[string]bool, got map[string]*packet.Publish) []string {
	var out []string
	for p := range acked {
		if got[p] == nil {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

var _ = Describe("gatehouse broker --data-dir killed with SIGKILL", Ordered, func() {
	var bin string
	BeforeAll(func() {
		var err error
		bin, err = gexec.Build("github.com/gatehouse-iot/gatehouse/cmd/gatehouse", "-race")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	})

	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("delivers every message acknowledged to its publisher before the kill to an MQTT "+v.String()+" persistent session, with DUP where it had been sent",
			Label("MQTT-3.1.2-4", "MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-3.3.1-5"), func() {
				dir := GinkgoT().TempDir()
				first, addr := brokerProcess(bin, dir)
				sub, _ := connectTo(addr, v, "billing", persistent)
				sub.subscribe(1, "acs/+/gate/+/evt/#", 2)
				pub := pahoClient(addr, "gate-01")
				Expect(pub.Publish("acs/s1/gate/gate-01/status", 1, true, `{"online":true}`).WaitTimeout(wait)).To(BeTrue())

				var (
					mu    sync.Mutex
					acked = map[string]bool{}
				)
				publish := func(i int) bool {
					payload := fmt.Sprintf("evt-%03d", i)
					tok := pub.Publish("acs/s1/gate/gate-01/evt/card", byte(1+i%2), false, payload)
					if !tok.WaitTimeout(wait) || tok.Error() != nil {
						return false
					}
					mu.Lock()
					acked[payload] = true
					mu.Unlock()
					return true
				}
				for i := range 120 {
					Expect(publish(i)).To(BeTrue(), "publish %d before the kill", i)
				}
				// The subscriber reads 30 messages and acknowledges none of them.
				sent := map[string]bool{}
				for range 30 {
					p := expectPacket[*packet.Publish](sub)
					Expect(p.Dup).To(BeFalse())
					sent[string(p.Payload)] = true
				}

				// Kill the broker while the publisher is still publishing.
				done := make(chan struct{})
				go func() {
					defer close(done)
					for i := 120; i < 400 && publish(i); i++ {
					}
				}()
				Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 140))
				first.Kill()
				Eventually(first).WithTimeout(wait).Should(gexec.Exit())
				Expect(first.Command.ProcessState.Sys().(syscall.WaitStatus).Signal()).To(Equal(syscall.SIGKILL))
				Eventually(done).WithTimeout(2 * wait).Should(BeClosed())
				mu.Lock()
				want := len(acked)
				mu.Unlock()

				_, addr = brokerProcess(bin, dir)
				sub, present := connectTo(addr, v, "billing", persistent)
				Expect(present).To(BeTrue(), "Session Present after the kill")
				got := map[string]*packet.Publish{}
				missing := func() int { return len(lost(acked, got)) }
				all := sub.receive(func(ps []*packet.Publish) bool {
					for _, p := range ps {
						got[string(p.Payload)] = p
					}
					return missing() == 0
				}, func() string {
					return fmt.Sprintf("; acknowledged before the kill and not delivered: %v", lost(acked, got))
				})
				Expect(missing()).To(BeZero(), "of %d acknowledged messages", want)
				times := map[string]int{}
				for _, p := range all {
					times[string(p.Payload)]++
				}
				for payload, n := range times {
					Expect(n).To(Equal(1), "%s delivered %d times after the restart", payload, n)
				}
				for payload := range sent {
					Expect(got[payload].Dup).To(BeTrue(), "%s had been sent before the kill: DUP=1 (MQTT-3.3.1-1)", payload)
				}
				for payload, p := range got {
					Expect(p.QoS).To(BeEquivalentTo(1+int(payload[len(payload)-1]-'0')%2), "%s keeps its QoS", payload)
				}

				watcher, _ := connectTo(addr, packet.V311, "watcher")
				watcher.subscribe(1, "acs/s1/gate/+/status", 1)
				retained := watcher.ping()
				Expect(payloads(retained)).To(Equal([]string{`{"online":true}`}))
			})
	}

	It("exits with an error naming a damaged data file", func() {
		dir := GinkgoT().TempDir()
		path := filepath.Join(dir, boltstore.FileName)
		Expect(os.WriteFile(path, []byte("this is not a bbolt file, it is far too short and has no meta page"), 0o600)).To(Succeed())
		s, err := gexec.Start(exec.Command(bin, "broker", "--listen", "127.0.0.1:0", "--data-dir", dir), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s).WithTimeout(wait).Should(gexec.Exit(1))
		Expect(string(s.Err.Contents())).To(ContainSubstring("--data-dir: data file " + path + ": corrupt"))
	})
})
