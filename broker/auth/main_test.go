package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// The mosquitto tests run MQTT clients; none of their goroutines may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
