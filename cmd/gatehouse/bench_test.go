package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchFindsTheBenchmarkModuleFromInsideTheTree(t *testing.T) {
	dir, err := findBenchModule()
	if err != nil {
		t.Fatalf("findBenchModule inside the source tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("findBenchModule = %s, which has no go.mod: %v", dir, err)
	}
	if filepath.Base(dir) != "bench" {
		t.Fatalf("findBenchModule = %s, want the bench directory", dir)
	}
}

func TestBenchOutsideTheTreeSaysWhereItRuns(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := findBenchModule()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("findBenchModule outside the tree = %v, want an exitError with code 2", err)
	}
	if !strings.Contains(err.Error(), "make bench-broker") {
		t.Fatalf("error %q does not say how to run the benchmark", err)
	}
}
