package testenv

import (
	"strings"
	"sync"
)

// lockedWriter lets a child process's stdout and stderr share one buffer safely.
type lockedWriter struct {
	mu sync.Mutex // protects b
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
