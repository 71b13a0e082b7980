package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The conform tests run this test binary as the gatehouse program: with gatehouseMainEnv set it
// is main, before the testing package starts. Shards of a parallel run inherit the environment
// and so run as gatehouse too.
const gatehouseMainEnv = "GATEHOUSE_TEST_RUN_AS_MAIN"

func init() {
	if os.Getenv(gatehouseMainEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
}

// gatehouse runs the program with args and returns its exit code and output.
func gatehouse(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), gatehouseMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func TestConformPassesAgainstTheReferenceBrokerAndWritesReports(t *testing.T) {
	t.Parallel()
	for _, parallel := range []string{"1", "3"} {
		t.Run("parallel "+parallel, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			code, out := gatehouse(t, "conform", "--target", "embedded", "--protocol", "3.1.1", "--parallel", parallel,
				"--label-filter", "MQTT-3.3.1-4 || MQTT-3.8.4-1 || MQTT-4.7.1-2 || MQTT-3.3.5-2 || MQTT-6.0.0-4", "--report-dir", dir, "--no-color")
			if code != 0 {
				t.Fatalf("exit %d, want 0:\n%s", code, out)
			}
			for _, f := range []string{"report.html", "junit.xml", "statements.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s not written: %v", f, err)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, "statements.json"))
			if err != nil {
				t.Fatal(err)
			}
			var sf struct {
				Statements []struct {
					ID, Verdict string
				}
			}
			if err := json.Unmarshal(b, &sf); err != nil {
				t.Fatal(err)
			}
			verdicts := map[string]string{}
			for _, s := range sf.Statements {
				verdicts[s.ID] = s.Verdict
			}
			// The authorization and WebSocket checks run too: the embedded target denies a
			// topic and listens on WebSocket, also for shards that only know its URL.
			for _, id := range []string{"MQTT-3.3.1-4", "MQTT-3.8.4-1", "MQTT-4.7.1-2", "MQTT-3.3.5-2", "MQTT-6.0.0-4"} {
				if verdicts[id] != "pass" {
					t.Errorf("%s: %s, want pass", id, verdicts[id])
				}
			}
			if verdicts["MQTT-3.1.2-24"] != "not-run" {
				t.Errorf("MQTT-3.1.2-24 was not filtered out: %s", verdicts["MQTT-3.1.2-24"])
			}
		})
	}
}

func TestConformFailsOnABrokenMust(t *testing.T) {
	t.Parallel()
	code, out := gatehouse(t, "conform", "--target", "embedded?fault=accept-wildcard-publish", "--protocol", "3.1.1",
		"--label-filter", "MQTT-3.3.2-2", "--no-color")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "FAIL MQTT 3.1.1") || !strings.Contains(out, "MQTT-3.3.2-2") {
		t.Errorf("output does not name the failed check and statement:\n%s", out)
	}
}

func TestConformRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "mosquito"}, `unknown target "mosquito"`},
		{[]string{"--protocol", "4.0"}, `--protocol "4.0"`},
		{[]string{"--label-filter", "MQTT-3.3.1-4 &&"}, "label filter"},
		{[]string{"--without", "teleport"}, `unknown feature "teleport"`},
		{[]string{"--parallel", "0"}, "--parallel 0"},
	} {
		code, out := gatehouse(t, append([]string{"conform"}, tc.args...)...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("conform %v: exit %d, output %q; want exit 2 naming %q", tc.args, code, out, tc.want)
		}
	}
}
