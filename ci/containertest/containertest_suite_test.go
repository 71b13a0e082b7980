package containertest_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/ci/images/imagestest"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.SetTestcontainersEnv()
	// Ginkgo's interrupt handler lives as long as the process; everything else must be gone.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

// What the specs run, prepared before RunSpecs with the real *testing.T so that a missing
// Docker daemon or mosquitto fails in CI and skips elsewhere with what to install.
var (
	gatehouseImage string // gatehouse:dev
	mosquittoImage string // gatehouse-mosquitto:dev; "" when mosquitto is not installed here
	noMosquitto    string // why the mosquitto specs skip
	gatehouseBin   string // the gatehouse CLI built for this machine

	// The full conformance runs against the images take the better part of a minute, mostly
	// waiting out deadlines: they start before the specs and run beside them.
	conformGatehouse, conformMosquitto *cliRun
)

func TestContainers(t *testing.T) {
	gatehouseImage = imagestest.Gatehouse(t)
	if _, err := testenv.LookTool("mosquitto"); err != nil {
		if testenv.InCI() {
			t.Fatalf("mosquitto is required by the mosquitto image; install it with: %s", testenv.MosquittoInstall)
		}
		noMosquitto = "mosquitto is required by the mosquitto image; install it with: " + testenv.MosquittoInstall
	} else {
		mosquittoImage = imagestest.Mosquitto(t)
	}
	// Built with -race: it shares the race-built packages of the test run, and a race in the
	// CLI fails the spec that ran it.
	bin, err := gexec.Build("github.com/gatehouse-iot/gatehouse/cmd/gatehouse", "-race")
	if err != nil {
		t.Fatalf("build gatehouse: %v", err)
	}
	t.Cleanup(gexec.CleanupBuildArtifacts)
	gatehouseBin = bin
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	conformGatehouse = background(t, "conform", "--target", "image:"+gatehouseImage)
	if mosquittoImage != "" {
		conformMosquitto = background(t, "conform", "--target", "image:"+mosquittoImage)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Containers")
}

// One top-level container, so that the specs run in this order (Ginkgo shuffles top-level
// containers only): the conformance checks, which wait for the runs started before the specs,
// come last and find them finished.
var _ = Describe("Gatehouse containers", func() {
	crashSpecs()
	pauseSpecs()
	partitionSpecs()
	scenarioSpecs()
	templateSpecs()
	conformSpecs()
})

// background starts a CLI run that outlives no test: it is killed when the test ends.
func background(t *testing.T, args ...string) *cliRun {
	r, err := runCLI(t.TempDir(), args...)
	if err != nil {
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	t.Cleanup(r.kill)
	return r
}
