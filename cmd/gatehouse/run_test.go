package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// execRun runs `gatehouse run args...` in process and returns its exit code and output.
func execRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"run"}, args...))
	err := root.Execute()
	if err == nil {
		return 0, out.String()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, out.String() + err.Error()
	}
	return 1, out.String() + err.Error()
}

const quickGate = `name: quick-gate
seed: 9
outcome: pass
fleet:
  - {kind: gate, id: gate-a, keepalive: 5s, travel_time: 200ms}
steps:
  - at: 0s
    expect: {retained: {topic: acs/+/gate/gate-a/status, payload: {online: true}}, within: 5s}
  - at: 500ms
    do: {device: gate-a, command: open}
    expect:
      - {ack: ok, within: 2s}
      - {publish: {topic: acs/+/gate/gate-a/state, payload: {position: open}}, within: 2s}
`

func writeScenario(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunPassingScenarioWritesReports(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := filepath.Join(t.TempDir(), "reports")
	junit := filepath.Join(t.TempDir(), "ci", "junit.xml")
	code, out := execRun(t, writeScenario(t, "quick.yaml", quickGate), "--report-dir", dir, "--junit", junit, "--seed", "77")
	if code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{"quick-gate", "seed 77", "[PASS]", filepath.Join(dir, "report.html"), filepath.Join(dir, "junit.xml"), filepath.Join(dir, "quick-gate.json"), junit} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var rec struct {
		Seed    uint64 `json:"seed"`
		Outcome string `json:"outcome"`
		Cases   []struct{ Outcome string }
	}
	data, err := os.ReadFile(filepath.Join(dir, "quick-gate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seed != 77 || rec.Outcome != "pass" || len(rec.Cases) != 3 {
		t.Fatalf("JSON record: seed %d outcome %s with %d cases, want 77, pass, 3", rec.Seed, rec.Outcome, len(rec.Cases))
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	data, err = os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(data, &suites); err != nil || suites.Tests != 3 || suites.Failures != 0 {
		t.Fatalf("--junit file: %v, tests %d failures %d", err, suites.Tests, suites.Failures)
	}
}

func TestRunFailingScenarioExitsOneAndSaysWhy(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	failing := strings.Replace(quickGate, "{position: open}", "{position: upside-down}", 1)
	code, out := execRun(t, writeScenario(t, "bad.yaml", failing), "--report-dir", t.TempDir())
	if code != exitFailed {
		t.Fatalf("exit code %d, want %d:\n%s", code, exitFailed, out)
	}
	want := `step 2 (at 500ms): expected publish acs/+/gate/gate-a/state {"position":"upside-down"} within 2s; observed instead:`
	if !strings.Contains(out, want) || !strings.Contains(out, `position is "open", want "upside-down"`) {
		t.Fatalf("output does not say which expectation failed and what was seen:\n%s", out)
	}
}

func TestRunRefusesBadFilesWithPositions(t *testing.T) {
	code, out := execRun(t, "../../fixtures/scenarios/bad/unknown-key.yaml", "../../fixtures/scenarios/bad/zero-rate.yaml")
	if code != exitBadInput {
		t.Fatalf("exit code %d, want %d:\n%s", code, exitBadInput, out)
	}
	for _, want := range []string{"unknown-key.yaml:10:5: unknown key \"expcet\" in step", "zero-rate.yaml:8:50: rate: the rate must be greater than zero"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out := execRun(t, "no-such-file.yaml"); code != exitBadInput || !strings.Contains(out, "no-such-file.yaml") {
		t.Errorf("a missing file: exit %d, %s", code, out)
	}
	if code, out := execRun(t, "--broker", "http://127.0.0.1:1", writeScenario(t, "q.yaml", quickGate)); code != exitBadInput || !strings.Contains(out, "--broker") {
		t.Errorf("a bad --broker: exit %d, %s", code, out)
	}
}

// Against an independent broker (Debian's mosquitto) the same scenario passes, and a scenario
// that needs a broker restart is skipped with the reason, not failed.
func TestRunAgainstMosquitto(t *testing.T) {
	// Registered first, so checked last: after mosquitto and its log copier have stopped.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	m := testenv.StartMosquitto(t)
	url := "mqtt://" + m.Addr
	code, out := execRun(t, writeScenario(t, "quick.yaml", quickGate), "--broker", url, "--report-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "against "+url) {
		t.Fatalf("against mosquitto: exit %d:\n%s\nmosquitto log:\n%s", code, out, m.Log())
	}
	code, out = execRun(t, "../../scenarios/broker-restart.yaml", "--broker", url, "--report-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "[SKIP]") || !strings.Contains(out, "needs broker_restart") {
		t.Fatalf("a restart scenario against mosquitto: exit %d, want 0 with a skip:\n%s", code, out)
	}
}

// `gatehouse run` alone is `make run`: the built-in scenario against the embedded broker, a
// report in gatehouse-report/ and its path printed, exit 0.
func TestRunWithoutArgumentsRunsTheDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("the default scenario takes about 15s; not in -short")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Chdir(t.TempDir())
	code, out := execRun(t)
	if code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "site-tour") || !strings.Contains(out, "report: gatehouse-report/report.html") {
		t.Fatalf("output lacks the scenario or the report path:\n%s", out)
	}
	if _, err := os.Stat("gatehouse-report/site-tour.json"); err != nil {
		t.Fatal(err)
	}
}
