package report

import (
	"testing"

	"go.uber.org/goleak"
)

// The browser test starts chromedp's goroutines; none may outlive it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
