package device_test

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Ginkgo's interrupt handler lives as long as the process; every goroutine of the certifier,
	// the shims and the simulated devices must be gone.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

func TestDeviceCertification(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "Device certification")
}

var _ = ginkgo.AfterSuite(func() { gexec.CleanupBuildArtifacts() })
