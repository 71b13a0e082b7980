package scenario

import (
	"context"
	"log/slog"

	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// FleetSpec is the fleet.Spec of a scenario: its groups, its seed and its connection rate,
// against the given broker.
func FleetSpec(s *Scenario, brokerURL string, seed uint64) fleet.Spec {
	spec := fleet.Spec{Seed: seed, Broker: brokerURL, ConnectRate: s.ConnectRate}
	for _, g := range s.Fleet {
		spec.Groups = append(spec.Groups, g.Group)
	}
	return spec
}

// StartFleet starts a scenario's fleet with simulator/fleet.
func StartFleet(ctx context.Context, s *Scenario, brokerURL string, seed uint64) (Fleet, error) {
	return fleet.Start(ctx, FleetSpec(s, brokerURL, seed))
}

// StartFleetWithLogger is StartFleet with the devices' logs going to l.
func StartFleetWithLogger(l *slog.Logger) FleetStarter {
	return func(ctx context.Context, s *Scenario, brokerURL string, seed uint64) (Fleet, error) {
		return fleet.Start(ctx, FleetSpec(s, brokerURL, seed), fleet.WithLogger(l))
	}
}

var _ Fleet = (*fleet.Fleet)(nil)
