package v5

import (
	"github.com/gatehouse-iot/gatehouse/conformance/internal/flows"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
)

var _ = describe("Message ordering", func() {
	suite.Must("delivers each client's messages on a topic in the order it published them, per QoS, on non-shared subscriptions",
		ids(spec.V5_4_6_0_5, spec.V5_4_6_0_6), flows.PerPublisherOrder)
})
