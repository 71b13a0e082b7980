// Package flows holds what the broker checks of MQTT 3.1.1 (conformance/v311) and MQTT 5.0
// (conformance/v5) have in common: the steps many checks build on — subscribe and require the
// grant, wait for a will or a retained message, open a raw WebSocket and read packets across its
// frames — and the bodies of the checks whose steps and judgement are the same in both versions,
// because the two specifications state the same rule (message ordering, topic wildcards, the
// WebSocket framing, retained wills, ...).
//
// The version packages still declare every check: its text, the statements it cites (as labels)
// and its level stay beside the other checks of the same section of their specification, and
// only the body comes from here:
//
//	suite.Must("delivers a message to every client whose subscription matches",
//		ids(spec.V311_4_5_0_1), flows.EveryMatchingSubscriber)
//
// A flow that blames a step on a statement other than the whole check's takes that statement
// from the check's version (the two catalogues give the same rule the same ID more often than
// not, but not always); where the versions differ in what a broker may answer — how a SUBACK
// refuses, which reason codes exist — the flow reads c.Version. Checks that only look alike but
// judge different rules, or blame their steps differently, stay in their version package.
package flows
