package conformance

import (
	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// faultsV5 is the MQTT 5.0 column of Faults: for every fault mode, the 5.0 statements whose
// checks must fail when it is on. It is merged into Faults when the package loads, so that
// Faults stays the one table the self-proof reads.
var faultsV5 = map[broker.Fault][]spec.ID{
	// The acknowledgement never comes; a check that merely publishes (suite.C.Put) does not
	// wait for it.
	broker.FaultDropPuback: {spec.V5_3_3_4_1, spec.V5_4_3_2_4},
	broker.FaultDropPubrec: {spec.V5_3_3_4_1, spec.V5_4_3_3_8},
	// A PUBREL is never completed, also not after the message expired (MQTT-4.3.3-13).
	broker.FaultDropPubcomp: {spec.V5_4_3_3_11, spec.V5_4_3_3_13},
	// Nothing is stored, so nothing is sent to new subscriptions, retained wills included. The
	// checks cannot tell "not stored" from "not sent", so both statements are broken.
	broker.FaultNoRetain:                {spec.V5_3_3_1_5, spec.V5_3_3_1_9, spec.V5_3_1_2_15},
	broker.FaultDropRetainedOnSubscribe: {spec.V5_3_3_1_5, spec.V5_3_3_1_9, spec.V5_3_1_2_15},
	broker.FaultNoWill:                  {spec.V5_3_1_2_8},
	broker.FaultNoDup:                   {spec.V5_3_3_1_1, spec.V5_4_4_0_1},
	broker.FaultNoKeepaliveTimeout:      {spec.V5_3_1_2_22, spec.V5_3_2_2_22},
	// Every delivery at QoS 0: the QoS rules break, and a disconnected Session keeps no QoS 0
	// message, so neither does it keep what should have been QoS 1 and 2.
	broker.FaultQoSDowngrade: {spec.V5_3_8_4_8, spec.V5_3_3_4_2, spec.V5_4_8_2_3, spec.V5_3_1_2_23, spec.V5_4_5_0_1},
	broker.FaultSlowConnack:  nil,
	// The checks of Sessions judge Session Present under MQTT-3.2.2-3 and the Session itself by
	// its subscriptions and messages.
	broker.FaultNoSessionPresent: {spec.V5_3_2_2_3},
	broker.FaultWrongSubackQoS:   {spec.V5_3_8_4_7, spec.V5_3_9_3_1},
	broker.FaultNoMessageOrder:   {spec.V5_4_6_0_5, spec.V5_4_6_0_6},
	// A message received once goes onward twice.
	broker.FaultDuplicateQoS2:         {spec.V5_4_3_3_10},
	broker.FaultAcceptWildcardPublish: {spec.V5_3_3_2_2, spec.V5_4_7_0_1},
}

func init() {
	for f, ids := range faultsV5 {
		b := Faults[f]
		if b.Statements == nil {
			b.Statements = map[string][]spec.ID{}
		}
		if len(ids) > 0 {
			b.Statements[spec.Version5] = ids
		}
		Faults[f] = b
	}
}
