package broker_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestBroker(t *testing.T) {
	defer goleak.VerifyNone(t, ginkgoInterrupts)
	RegisterFailHandler(Fail)
	RunSpecs(t, "Broker Suite")
}

// ginkgoInterrupts is Ginkgo's signal watcher, which outlives RunSpecs by design.
var ginkgoInterrupts = goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2")
