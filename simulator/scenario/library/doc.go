// Package library holds no code: its tests run every scenario of scenarios/ against the embedded
// reference broker and a real fleet, one Ginkgo spec per file, and check that each has the
// outcome its file states. Its sub-package broken runs the deliberately broken variant of each
// scenario and checks that it fails, and how.
package library
