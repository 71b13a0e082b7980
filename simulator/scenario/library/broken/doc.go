// Package broken holds no code: its tests run, for every scenario of scenarios/, the broken variant
// of the same name in fixtures/scenarios/broken/ — the same scenario with a device fault or a
// broker fault mode that must make it fail — and check that it does fail, with messages that name
// the step, the expectation and what was observed instead (each variant states them in "# fails:"
// lines).
package broken
