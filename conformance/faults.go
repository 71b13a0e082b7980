package conformance

import (
	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// Breaks is what a fault mode of the reference broker breaks: per protocol version, the
// statements whose checks must fail when the fault is on. Every other check must still hold (or
// be not supported, when the fault changes what the broker grants).
type Breaks struct {
	Statements map[string][]spec.ID
	// Why says, in a sentence, how the fault breaks them.
	Why string
}

// Faults is the table of the suite's self-proof: for every fault mode of broker.Fault, the
// statements it breaks. The suite's own tests run every check against the reference broker with
// each fault on and require that
//
//   - every statement listed here is caught: at least one check fails, attributed to it;
//   - every failure is attributed to a statement listed here (no check fails for a reason the
//     fault does not explain), and every other check holds or is not supported.
//
// A statement with several clauses can be broken in one clause while the checks of its other
// clauses hold; that is why "caught" asks for one failing check per statement, not for every
// check that cites it. A fault mode missing here, or one that no check catches, is a gap in the
// suite.
var Faults = map[broker.Fault]Breaks{
	broker.FaultDropPuback: {Why: "a QoS 1 PUBLISH from a client is never acknowledged",
		Statements: v311(spec.V311_3_3_4_1, spec.V311_4_3_2_2, spec.V311_2_3_1_6, spec.V311_3_3_5_2)},
	broker.FaultDropPubrec: {Why: "a QoS 2 PUBLISH from a client is never acknowledged with PUBREC",
		Statements: v311(spec.V311_3_3_4_1, spec.V311_4_3_3_2, spec.V311_2_3_1_6, spec.V311_3_3_5_2)},
	broker.FaultDropPubcomp: {Why: "a client's PUBREL is never answered with PUBCOMP",
		Statements: v311(spec.V311_4_3_3_2)},
	broker.FaultNoRetain: {Why: "retained messages are neither stored nor sent, so neither are retained wills",
		Statements: v311(spec.V311_3_3_1_5, spec.V311_3_3_1_6, spec.V311_3_1_2_17)},
	broker.FaultNoWill: {Why: "wills are never published",
		Statements: v311(spec.V311_3_1_2_8)},
	broker.FaultNoDup: {Why: "resent PUBLISH packets carry DUP 0",
		Statements: v311(spec.V311_3_3_1_1)},
	broker.FaultNoKeepaliveTimeout: {Why: "a silent client is never disconnected",
		Statements: v311(spec.V311_3_1_2_24)},
	broker.FaultQoSDowngrade: {Why: "every message is delivered at QoS 0, whatever was published and granted, so a disconnected session keeps none",
		Statements: v311(spec.V311_3_8_4_6, spec.V311_3_3_5_1, spec.V311_3_1_2_5)},
	broker.FaultSlowConnack: {Why: "CONNACK comes late but within the deadline: no statement is broken, and no check may fail for it"},
	broker.FaultNoSessionPresent: {Why: "CONNACK says session present 0 even when a session is resumed",
		Statements: v311(spec.V311_3_2_2_2)},
	broker.FaultWrongSubackQoS: {Why: "SUBACK grants a QoS other than the one the subscription gets (more than requested, or 0 for 2)",
		Statements: v311(spec.V311_3_8_4_5, spec.V311_3_8_4_6, spec.V311_3_9_3_1)},
	broker.FaultDropRetainedOnSubscribe: {Why: "retained messages are stored but not sent to new subscriptions",
		Statements: v311(spec.V311_3_3_1_5, spec.V311_3_3_1_6, spec.V311_3_1_2_17)},
	broker.FaultNoMessageOrder: {Why: "messages to a client are delivered in swapped pairs",
		Statements: v311(spec.V311_4_6_0_5, spec.V311_4_6_0_6)},
	broker.FaultDuplicateQoS2: {Why: "every QoS 2 message is delivered twice, as two messages",
		Statements: v311(spec.V311_4_3_3_1, spec.V311_4_3_3_2)},
	broker.FaultAcceptWildcardPublish: {Why: "a PUBLISH to a topic name with a wildcard is accepted and routed",
		Statements: v311(spec.V311_3_3_2_2, spec.V311_4_7_1_1)},
}

func v311(ids ...spec.ID) map[string][]spec.ID { return map[string][]spec.ID{spec.Version311: ids} }
