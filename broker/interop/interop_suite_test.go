package interop_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// wait bounds every wait for one expected event.
const wait = 5 * time.Second

// The mosquitto client tools, found before the suite runs; specs that need them call
// requireMosquitto.
var (
	mosquittoPub, mosquittoSub string
	mosquittoMissing           error
)

func TestInterop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
	if mosquittoPub, mosquittoMissing = testenv.LookTool("mosquitto_pub"); mosquittoMissing == nil {
		mosquittoSub, mosquittoMissing = testenv.LookTool("mosquitto_sub")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Interoperability")
}

// requireMosquitto fails the spec in CI and skips it elsewhere when mosquitto_pub or mosquitto_sub
// is missing, naming the command that installs them (as testenv does for plain tests).
func requireMosquitto() {
	GinkgoHelper()
	if mosquittoMissing == nil {
		return
	}
	msg := "mosquitto_pub and mosquitto_sub are required by this spec (" + mosquittoMissing.Error() + "); install them with: " + testenv.MosquittoInstall
	if testenv.InCI() {
		Fail(msg)
	}
	Skip(msg)
}
