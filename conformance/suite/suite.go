// Package suite is the framework of Gatehouse's broker conformance suite: the vocabulary in which
// checks are written, the context each check runs in, and the runner that executes them with
// Ginkgo v2 against a target broker and turns the outcome into a verdict per normative statement.
//
// A check is a Ginkgo spec declared through this package, so that it carries, as labels, the
// statement IDs it checks, its protocol version and its requirement level:
//
//	var _ = suite.Describe(spec.Version311, "PUBLISH", func() {
//		suite.Must("closes the connection on a PUBLISH with both QoS bits set",
//			suite.IDs(spec.V311_3_3_1_4), func(c *suite.C) {
//				conn := c.Connect("pub")
//				c.SendRaw(conn, packet.Build(&packet.Publish{Topic: c.Topic("t"), QoS: 1, PacketID: 1},
//					packet.V311, packet.WithFlags(0x06)))
//				c.ExpectClosed(conn)
//			})
//	})
//
// Must checks fail the run when they do not hold; Should checks report a warning instead. A check
// of an optional feature calls c.Require (or c.NotSupported) and is reported "not supported",
// never failed, when the broker does not offer it. Every check gets fresh client identifiers and
// topics from its own unique string (c.ClientID, c.Topic), so checks run in any order against
// one broker, and every expectation has a deadline (c.Timeout, c.Window). The packet trace of a
// check's connections is its evidence in the reports.
//
// Run (or RunSpecs under go test) starts nothing by itself: it is given a running target, probes
// what the broker announces, runs the selected checks through ginkgo.RunSpecs and returns a
// Result with a verdict per check and per statement of the catalogue (conformance/spec),
// including the statements no check covers and why. README.md in conformance/ documents the
// framework for authors of checks.
package suite

import (
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// Level is how a check's failure counts: a Must check fails the run, a Should check warns.
type Level string

// The levels of a check. They are also Ginkgo labels, so --label-filter=must selects the checks
// of absolute requirements.
const (
	LevelMust   Level = "must"
	LevelShould Level = "should"
)

// Verdict is the outcome of a check or of a statement.
type Verdict string

// The verdicts. A check ends Pass, Fail, Warn, NotSupported or NotRun; a statement can also be
// NotCovered (testable, but no check covers it) or NotTestable (the catalogue says why).
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Warn         Verdict = "warn"
	NotSupported Verdict = "not-supported"
	NotCovered   Verdict = "not-covered"
	NotTestable  Verdict = "not-testable"
	// NotRun: the check exists but was not run (left out by --label-filter or --protocol, or
	// marked pending).
	NotRun Verdict = "not-run"
)

// rank orders verdicts for combining the checks of one statement: the worst wins.
func (v Verdict) rank() int {
	switch v {
	case Fail:
		return 6
	case Warn:
		return 5
	case Pass:
		return 4
	case NotSupported:
		return 3
	case NotRun:
		return 2
	}
	return 0
}

// IDs lists the statements a check covers: suite.IDs(spec.V311_3_1_2_1, spec.V311_3_1_4_1).
func IDs(ids ...spec.ID) []spec.ID { return ids }

// building is the protocol version of the Describe whose body Ginkgo is running while it builds
// the spec tree (tree construction is single-threaded and synchronous).
var building string

// Describe declares a group of checks of one protocol version (spec.Version311 or
// spec.Version5). Every check inside carries the version's label (spec.VersionLabel) and runs
// with that version's CONNECT unless it asks otherwise. Describe may be nested inside another
// Describe of the same version, or inside a plain ginkgo.Describe.
func Describe(version, text string, body func(), args ...any) bool {
	if _, err := spec.IDs(version); err != nil {
		panic(fmt.Sprintf("suite.Describe(%q): %v", text, err))
	}
	args = append(args, ginkgo.Label(spec.VersionLabel(version)))
	return ginkgo.Describe(text, append(args, func() {
		outer := building
		building = version
		defer func() { building = outer }()
		body()
	})...)
}

// Must declares a check of absolute requirements (MUST, MUST NOT): when it does not hold, the
// run fails. ids are the statements it checks; args are further Ginkgo decorators (Label,
// Serial, Pending, ...).
func Must(text string, ids []spec.ID, body func(c *C), args ...any) bool {
	return check(LevelMust, text, ids, body, args)
}

// Should declares a check of recommendations (SHOULD, SHOULD NOT): when it does not hold, the run
// reports a warning and does not fail.
func Should(text string, ids []spec.ID, body func(c *C), args ...any) bool {
	return check(LevelShould, text, ids, body, args)
}

// specTimeout bounds one check, a safety net above the deadlines of its expectations.
const specTimeout = 60 * time.Second

func check(level Level, text string, ids []spec.ID, body func(c *C), args []any) bool {
	version := building
	if version == "" {
		panic(fmt.Sprintf("suite.%s(%q) outside suite.Describe: the check has no protocol version", strings.ToUpper(string(level[:1]))+string(level[1:]), text))
	}
	if len(ids) == 0 {
		panic(fmt.Sprintf("check %q cites no statement", text))
	}
	for _, id := range ids {
		if _, ok := spec.Lookup(version, id); !ok {
			panic(fmt.Sprintf("check %q cites %s, which is not a statement of MQTT %s", text, id, version))
		}
	}
	if !inShard() {
		return false
	}
	labels := append(spec.Labels(ids...), string(level))
	args = append(args, ginkgo.Label(labels...), ginkgo.SpecTimeout(specTimeout))
	return ginkgo.It(text, append(args, func(ctx ginkgo.SpecContext) {
		runCheck(ctx, level, version, ids, body)
	})...)
}
