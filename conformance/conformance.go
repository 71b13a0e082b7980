// Package conformance is Gatehouse's broker conformance suite: checks traced to the normative
// statements of MQTT 3.1.1 and 5.0, run with Ginkgo v2 against any broker — the embedded
// reference broker, Debian's mosquitto, a container image or a broker at an address.
//
// The pieces live in subpackages: spec (the statement catalogue), wire (the raw client), suite
// (the framework: the DSL checks are written in, their context, the runner and the reports) and
// one package of checks per protocol version (v311; v5). Importing this package registers every
// check; Run runs them. README.md beside this file documents the framework and the reports.
//
// The suite proves itself: its own tests run it against the reference broker (every MUST holds),
// against mosquitto (the failures are exactly those listed in KNOWN-DEVIATIONS.md) and against
// the reference broker with each fault mode on (the checks of the statements the fault breaks
// fail, the others hold; see Faults).
package conformance

import (
	"context"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"

	// The checks register themselves with Ginkgo when their packages are loaded.
	_ "github.com/gatehouse-iot/gatehouse/conformance/v311"
	_ "github.com/gatehouse-iot/gatehouse/conformance/v5"
)

// Run runs the selected checks against cfg.Target in this process; see suite.Run.
func Run(ctx context.Context, cfg suite.Config) (*suite.Result, error) { return suite.Run(ctx, cfg) }

// DeniedFilter is the topic filter an embedded target denies when the suite prepares it, and
// DeniedTopic the topic the authorization checks publish to.
const (
	DeniedFilter = "gatehouse/denied/#"
	DeniedTopic  = "gatehouse/denied/conformance"
)

// Prepare completes a target and a configuration for a conformance run: a broker the suite
// starts itself (embedded) gets an access rule denying DeniedFilter, so that the authorization
// checks run; for other targets the caller says which topic is denied (--denied-topic), if any.
func Prepare(t *target.Target, cfg *suite.Config) {
	if t.Kind == target.Embedded && cfg.DeniedTopic == "" {
		t.DeniedTopics = append(t.DeniedTopics, DeniedFilter)
		cfg.DeniedTopic = DeniedTopic
	}
}
