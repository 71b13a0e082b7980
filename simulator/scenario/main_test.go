package scenario

import (
	"testing"

	"go.uber.org/goleak"
)

// Runs start observers, controllers, fleets and judges; none may outlive its run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
