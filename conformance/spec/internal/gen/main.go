// Command gen writes the Go constants of the statement catalogue: ids_v311.go and ids_v5.go in
// package spec, one constant per statement, from the embedded YAML files. It runs through
// `go generate ./conformance/spec/` (the directive is in spec.go) and writes into the current
// directory unless -dir says otherwise. Its output depends only on the catalogue, so running it
// twice leaves the tree unchanged.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", ".", "directory of package spec, where the files are written")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	for _, t := range targets {
		src, err := render(t)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, t.file)
		if old, err := os.ReadFile(path); err == nil && string(old) == string(src) {
			continue // unchanged: leave the file and its modification time alone
		}
		if err := os.WriteFile(path, src, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", t.file, err)
		}
	}
	return nil
}
