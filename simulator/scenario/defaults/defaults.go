// Package defaults holds the scenario `gatehouse run` runs when it is given none: a small site
// with entry and exit gates, turnstiles and a plate camera, exercised for a few seconds against
// the embedded broker. The file is embedded into the binary; scenarios/default.yaml is the same
// file for people to read and copy, and a test keeps the two identical.
package defaults

import (
	_ "embed"

	"github.com/gatehouse-iot/gatehouse/simulator/scenario"
)

// Name is the path the default scenario is reported under.
const Name = "scenarios/default.yaml"

//go:embed default.yaml
var source []byte

// Source returns the default scenario's YAML.
func Source() []byte { return append([]byte(nil), source...) }

// Scenario decodes the default scenario.
func Scenario() (*scenario.Scenario, error) { return scenario.Parse(Name, source) }
