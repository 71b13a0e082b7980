package containertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/ci/images/imagestest"
)

// cliRun is one run of the gatehouse CLI in the background.
type cliRun struct {
	args []string
	dir  string // its --report-dir
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has been waited for
	code int           // its exit code, set before done is closed
}

// runCLI starts `gatehouse ARGS... --report-dir DIR` with DIR in dir. The caller must wait for
// it or kill it.
func runCLI(dir string, args ...string) (*cliRun, error) {
	args = append(args, "--report-dir", dir)
	r := &cliRun{args: args, dir: dir, out: &lockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(gatehouseBin, args...)
	r.cmd.Env = append(os.Environ(), "TESTCONTAINERS_RYUK_DISABLED=true", "TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1", "NO_COLOR=1")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	return r, nil
}

// startCLI runs the CLI for the current spec and kills it if the spec ends first.
func startCLI(args ...string) *cliRun {
	GinkgoHelper()
	r, err := runCLI(GinkgoT().TempDir(), args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(r.kill)
	return r
}

// kill ends the run if it still runs and waits for it. It interrupts first, as Ctrl-C would, so
// that the CLI removes the containers it started (nothing else would: there is no reaper); it
// kills only a run that is still there 30 s later.
func (r *cliRun) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// wait waits for the run to end and returns its exit code.
func (r *cliRun) wait(limit time.Duration) int {
	GinkgoHelper()
	select {
	case <-r.done:
	case <-time.After(limit):
		r.kill()
		Fail(fmt.Sprintf("gatehouse %s did not end within %s:\n%s", strings.Join(r.args, " "), limit, r.output()))
	}
	GinkgoWriter.Printf("gatehouse %s → exit %d\n%s\n", strings.Join(r.args, " "), r.code, r.output())
	return r.code
}

func (r *cliRun) output() string { return r.out.String() }

// lockedBuffer is a bytes.Buffer that the process's output copier and the spec share.
type lockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// statement is one entry of statements.json, the per-statement verdicts of a conform run.
type statement struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Verdict string `json:"verdict"`
}

// verdicts reads statements.json: "VERSION ID" → verdict.
func (r *cliRun) verdicts() map[string]string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(r.dir, "statements.json"))
	Expect(err).NotTo(HaveOccurred(), "gatehouse %s wrote no statements.json", strings.Join(r.args, " "))
	var doc struct {
		Statements []statement `json:"statements"`
	}
	Expect(json.Unmarshal(b, &doc)).To(Succeed())
	Expect(doc.Statements).NotTo(BeEmpty())
	out := map[string]string{}
	for _, s := range doc.Statements {
		out[s.Version+" "+s.ID] = s.Verdict
	}
	return out
}

// with lists the statements that have one of the verdicts, sorted.
func with(verdicts map[string]string, want ...string) []string {
	out := []string{}
	for id, v := range verdicts {
		for _, w := range want {
			if v == w {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// knownDeviations reads the fail and warn rows of conformance/KNOWN-DEVIATIONS.md
// ("| fail | 3.1.1 | MQTT-3.1.2-8 | ..."): what mosquitto is known to do differently.
func knownDeviations() []string {
	GinkgoHelper()
	b, err := os.ReadFile("../../conformance/KNOWN-DEVIATIONS.md")
	Expect(err).NotTo(HaveOccurred())
	out := []string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		verdict, version, id := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.Trim(strings.TrimSpace(cells[3]), "`")
		if (verdict == "fail" || verdict == "warn") && strings.HasPrefix(id, "MQTT-") {
			out = append(out, version+" "+id)
		}
	}
	sort.Strings(out)
	return out
}

func conformSpecs() {
	Describe("gatehouse conform against container images", func() {
		It("passes against the reference broker image: every MUST holds", func() {
			r := conformGatehouse
			Expect(r.wait(4*time.Minute)).To(Equal(0), "gatehouse %s failed:\n%s", strings.Join(r.args, " "), r.output())
			v := r.verdicts()
			Expect(with(v, "fail")).To(BeEmpty())
			Expect(with(v, "pass")).NotTo(BeEmpty())
		})

		It("finds in the mosquitto image exactly the known deviations of Debian's mosquitto", func() {
			r := conformMosquitto
			if r == nil {
				Skip(noMosquitto)
			}
			code := r.wait(4 * time.Minute)
			v := r.verdicts()
			Expect(with(v, "fail", "warn")).To(Equal(knownDeviations()),
				"statements that fail or warn against image:%s, and those conformance/KNOWN-DEVIATIONS.md lists", mosquittoImage)
			Expect(with(v, "pass")).NotTo(BeEmpty())
			if len(with(v, "fail")) == 0 {
				Expect(code).To(Equal(0))
			} else {
				Expect(code).To(Equal(1))
			}
		})

		It("fails against the reference broker image with a fault mode, on the statements the same fault breaks in process", func() {
			// A variant of the image whose broker drops retained messages. The checks of the
			// retained-message statements must fail against it, exactly as they fail against the
			// embedded broker with the same fault mode: the container changes nothing in the verdicts.
			faulty := imagestest.Derive(GinkgoT(), gatehouseImage, "gatehouse-faulty:containertest",
				`CMD ["broker", "--listen", "0.0.0.0:1883", "--allow-anonymous", "--fault", "no-retain"]`)
			filter := []string{"--protocol", "3.1.1", "--label-filter", "MQTT-3.3.1-5 || MQTT-3.3.1-6 || MQTT-3.1.2-17"}
			inImage := startCLI(append([]string{"conform", "--target", "image:" + faulty}, filter...)...)
			inProcess := startCLI(append([]string{"conform", "--target", "embedded?fault=no-retain"}, filter...)...)
			Expect(inImage.wait(2 * time.Minute)).To(Equal(1))
			Expect(inProcess.wait(2 * time.Minute)).To(Equal(1))
			failed := with(inImage.verdicts(), "fail")
			Expect(failed).To(ContainElement("3.1.1 MQTT-3.3.1-5"))
			Expect(failed).To(Equal(with(inProcess.verdicts(), "fail")))
		})
	})
}
