package scenario

import (
	"github.com/goccy/go-yaml/ast"

	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// Keys of a fleet file (gatehouse sim --fleet FILE): fleet.Spec in snake case.
var fleetFileKeys = []string{"groups", "seed", "connect_rate", "broker", "username", "password"}

// ParseFleet decodes a fleet file — the devices of `gatehouse sim` — with the same strictness and
// the same group keys as the fleet of a scenario: every problem is reported as file:line:column.
//
//	broker: mqtt://127.0.0.1:1883
//	seed: 7
//	connect_rate: 200/s
//	groups:
//	  - {kind: gate, count: 20, id: "gate-{n:02}", role: exit}
func ParseFleet(file string, data []byte) (fleet.Spec, error) {
	d := &decoder{file: file}
	root := d.parseYAML(data)
	if root == nil {
		return fleet.Spec{}, d.result()
	}
	spec := d.fleetFile(root)
	if err := d.result(); err != nil {
		return fleet.Spec{}, err
	}
	return spec, nil
}

func (d *decoder) fleetFile(root ast.Node) fleet.Spec {
	var spec fleet.Spec
	m := d.mapping(root, "fleet file", fleetFileKeys)
	if m == nil {
		return spec
	}
	if f, ok := m.get("seed"); ok {
		spec.Seed, _ = d.uinteger(f, "seed")
	}
	if f, ok := m.get("connect_rate"); ok {
		spec.ConnectRate, _ = d.rate(f, "connect_rate")
	}
	if f, ok := m.get("broker"); ok {
		if raw, ok := d.nonEmpty(f, "broker"); ok {
			if err := CheckBrokerURL(raw); err != nil {
				d.errorf(f.at(), "broker: %s", err.Error())
			}
			spec.Broker = Address(raw).URL()
		}
	}
	if f, ok := m.get("username"); ok {
		spec.Username, _ = d.str(f, "username")
	}
	if f, ok := m.get("password"); ok {
		spec.Password, _ = d.str(f, "password")
	}
	f, ok := m.get("groups")
	if !ok {
		if !m.bad {
			d.errorf(root, "fleet file: missing key \"groups\" (the devices: a list of {kind, count, ...})")
		}
		return spec
	}
	s := &Scenario{devices: map[string]DeviceRef{}}
	d.fleet(s, f)
	for _, g := range s.Fleet {
		spec.Groups = append(spec.Groups, g.Group)
	}
	return spec
}
