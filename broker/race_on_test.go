//go:build race

package broker

// raceEnabled: under the race detector sync.Pool drops a quarter of what it is given back, on
// purpose, so tests that count allocations of pooled objects run without it (make test-alloc).
const raceEnabled = true
