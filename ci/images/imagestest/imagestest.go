// Package imagestest gives tests the images they run, built through the same code path as
// `make images` when missing or out of date: a fresh machine with a Docker daemon needs no
// preparation. Without a daemon the test fails in CI (CI=true) and is skipped elsewhere, naming
// what to install (internal/testenv).
package imagestest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/ci/images"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// buildTimeout bounds a build on a cold machine: compiling gatehouse without a build cache.
const buildTimeout = 5 * time.Minute

var (
	// mu protects ensured.
	mu sync.Mutex
	// ensured remembers the images this test process has checked, so that it checks each once.
	ensured = map[string]error{}
)

// Gatehouse returns the tag of the gatehouse image (gatehouse:dev), built if needed.
func Gatehouse(t testing.TB) string { return ensure(t, images.Gatehouse) }

// Mosquitto returns the tag of the mosquitto image (gatehouse-mosquitto:dev), built if needed; it
// needs Debian's mosquitto on this machine.
func Mosquitto(t testing.TB) string {
	t.Helper()
	testenv.Mosquitto(t)
	return ensure(t, images.Mosquitto)
}

func ensure(t testing.TB, img images.Image) string {
	t.Helper()
	testenv.Docker(t)
	mu.Lock()
	defer mu.Unlock()
	err, done := ensured[img.Tag]
	if !done {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		var res images.Result
		res, err = images.Ensure(ctx, img, img.Tag, images.Options{})
		if err == nil {
			t.Logf("image %s", res)
		}
		ensured[img.Tag] = err
	}
	if err != nil {
		t.Fatalf("image %s: %v", img.Tag, err)
	}
	return img.Tag
}

// T is what Derive needs of a test: a *testing.T, or GinkgoT() in a Ginkgo spec.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Derive builds a variant of an image (FROM base plus Dockerfile lines, e.g. another CMD) under
// tag and removes it when the test ends.
func Derive(t T, base, tag string, lines ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := images.Derive(ctx, base, tag, lines, images.Options{}); err != nil {
		t.Fatalf("image %s: %v", tag, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = images.Remove(ctx, tag, images.Options{})
	})
	return tag
}
