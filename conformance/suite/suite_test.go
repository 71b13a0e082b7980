package suite_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// The checks below exist to exercise the framework: each ends in a known way. They run only in
// the child process that TestFramework starts (Ginkgo runs one suite per process).
var _ = suite.Describe(spec.Version311, "framework", func() {
	suite.Must("passes", suite.IDs(spec.V311_3_12_4_1), func(c *suite.C) {
		conn, _ := c.Connect("dev")
		c.Step("ping")
		c.Send(conn, &packet.Pingreq{})
		c.Await(conn, wire.IsType(packet.TypePingresp))
	})
	suite.Must("fails on a missing packet", suite.IDs(spec.V311_3_1_0_2), func(c *suite.C) {
		conn, _ := c.Connect("dev")
		c.AwaitWithin(conn, 20*time.Millisecond, wire.PubackFor(77))
	})
	suite.Must("fails on an assertion", suite.IDs(spec.V311_3_1_0_2, spec.V311_3_2_0_1), func(c *suite.C) {
		c.Expect(1).To(gomegaEqual(2), "one is two")
	})
	suite.Must("fails on a panic", suite.IDs(spec.V311_3_2_2_5), func(c *suite.C) {
		var p *packet.Publish
		_ = p.Topic
	})
	suite.Should("warns on a failed assertion", suite.IDs(spec.V311_3_2_2_4), func(c *suite.C) {
		c.Expect("a").To(gomegaEqual("b"), "a SHOULD that does not hold")
	})
	suite.Should("warns on a missing packet", suite.IDs(spec.V311_3_2_2_3), func(c *suite.C) {
		conn, _ := c.Connect("dev")
		c.AwaitWithin(conn, 20*time.Millisecond, wire.PubackFor(77))
	})
	suite.Must("is not supported", suite.IDs(spec.V311_3_3_5_2), func(c *suite.C) {
		c.Require(suite.FeatureSharedSubscriptions)
		c.Failf("not reached")
	})
	suite.Must("is pending", suite.IDs(spec.V311_3_8_4_1), func(c *suite.C) {}, pending())
	suite.Must("is filtered out", suite.IDs(spec.V311_3_8_4_2), func(c *suite.C) { c.Failf("must not run") }, label("excluded"))
	suite.Must("cleans up persistent sessions", suite.IDs(spec.V311_3_2_2_2), func(c *suite.C) {
		conn, ack := c.Connect("keep", c.Persistent())
		c.Expect(ack.SessionPresent).To(gomegaEqual(false))
		c.Subscribe(conn, 1, c.Topic("x"))
		sessions <- c.ClientID("keep")
	})
})

// sessions passes the ClientId of the persistent session above to the child's checks after the run.
var sessions = make(chan string, 1)

const childEnv = "GATEHOUSE_SUITE_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(child(dir))
	}
	goleak.VerifyTestMain(m)
}

// child runs the framework checks against the embedded broker and writes what the parent
// inspects into dir: result.json, the reports, and whether the persistent session survived.
func child(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tg, _ := target.Parse("embedded")
	r, err := tg.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer r.Stop(context.Background())
	res, err := suite.Run(ctx, suite.Config{Target: r, Versions: []string{spec.Version311}, LabelFilter: "!excluded", NoColor: true, Seed: 7})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "result.json"), b, 0o644); err != nil {
		return 2
	}
	if _, err := res.WriteReports(filepath.Join(dir, "reports"), "framework", "test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// A second run in the same process is refused with a clear error.
	if _, err := suite.Run(ctx, suite.Config{Target: r}); err == nil || !strings.Contains(err.Error(), "already ran") {
		fmt.Fprintln(os.Stderr, "second run:", err)
		return 2
	}
	// The persistent session the check created was removed: reconnecting finds no session.
	id := <-sessions
	conn, err := wire.Dial(ctx, r.URL(), wire.Options{})
	if err != nil {
		return 2
	}
	defer conn.Close()
	ack, err := conn.Connect(5*time.Second, &packet.Connect{ClientID: id})
	if err != nil {
		return 2
	}
	present := "kept"
	if !ack.SessionPresent {
		present = "removed"
	}
	_ = os.WriteFile(filepath.Join(dir, "session"), []byte(present), 0o644)
	return 0
}

func TestFramework(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child run: %v\n%s", err, out)
	}
	var res suite.Result
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	byText := map[string]suite.CheckResult{}
	for _, c := range res.Checks {
		byText[c.Text] = c
	}
	want := map[string]suite.Verdict{
		"passes":                        suite.Pass,
		"fails on a missing packet":     suite.Fail,
		"fails on an assertion":         suite.Fail,
		"fails on a panic":              suite.Fail,
		"warns on a failed assertion":   suite.Warn,
		"warns on a missing packet":     suite.Warn,
		"is not supported":              suite.NotSupported,
		"is pending":                    suite.NotRun,
		"is filtered out":               suite.NotRun,
		"cleans up persistent sessions": suite.Pass,
	}
	for text, v := range want {
		got, ok := byText[text]
		if !ok {
			t.Errorf("check %q missing from the result", text)
			continue
		}
		if got.Verdict != v {
			t.Errorf("check %q: verdict %s (%s), want %s", text, got.Verdict, got.Message, v)
		}
	}
	if c := byText["fails on a missing packet"]; !strings.Contains(c.Message, "MQTT 3.1.1 [MQTT-3.1.0-2]") || !strings.Contains(c.Message, "PUBACK for packet id 77") {
		t.Errorf("failure message does not cite the statement and the expectation: %q", c.Message)
	}
	if c := byText["passes"]; len(c.Trace) < 4 || !strings.Contains(strings.Join(c.Trace, "\n"), "# ping") {
		t.Errorf("trace of a passing check lacks its packets and notes: %q", c.Trace)
	}
	if c := byText["is not supported"]; !strings.Contains(c.Message, "shared-subscriptions") {
		t.Errorf("not-supported message does not name the feature: %q", c.Message)
	}
	if c := byText["passes"]; c.Group != "MQTT 3.1.1 › framework" || c.Version != spec.Version311 || c.Level != suite.LevelMust {
		t.Errorf("passes: group %q version %q level %q", c.Group, c.Version, c.Level)
	}
	if c := byText["warns on a failed assertion"]; c.Level != suite.LevelShould {
		t.Errorf("should check has level %q", c.Level)
	}
	if !res.Failed() {
		t.Error("Failed() is false although Must checks failed")
	}
	if res.Seed != 7 {
		t.Errorf("seed %d, want 7", res.Seed)
	}

	// Statements: the worst verdict of their checks wins; the rest are not covered or not testable.
	st := map[spec.ID]suite.StatementResult{}
	for _, s := range res.Statements {
		st[s.ID] = s
	}
	for id, v := range map[spec.ID]suite.Verdict{
		spec.V311_3_12_4_1: suite.Pass,
		spec.V311_3_1_0_2:  suite.Fail,
		spec.V311_3_2_0_1:  suite.Fail,
		spec.V311_3_2_2_4:  suite.Warn,
		spec.V311_3_3_5_2:  suite.NotSupported,
		spec.V311_3_8_4_1:  suite.NotRun,
		spec.V311_3_8_4_2:  suite.NotRun,
		spec.V311_3_1_2_24: suite.NotCovered,
		spec.V311_3_1_0_1:  suite.NotTestable,
		spec.V311_4_8_0_2:  suite.NotTestable,
	} {
		if got := st[id].Verdict; got != v {
			t.Errorf("statement %s: verdict %s, want %s", id, got, v)
		}
	}
	if r := st[spec.V311_4_8_0_2].Reason; !strings.Contains(r, "cannot cause on purpose") {
		t.Errorf("not-testable reason is not the catalogue's: %q", r)
	}
	if len(res.Statements) != len(spec.MustCatalogue(spec.Version311)) {
		t.Errorf("%d statements in the result, want every one of the catalogue", len(res.Statements))
	}
	if s, _ := os.ReadFile(filepath.Join(dir, "session")); string(s) != "removed" {
		t.Errorf("persistent session of a check was %s after the run, want removed", s)
	}

	// Reports.
	html, err := os.ReadFile(filepath.Join(dir, "reports", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Statement coverage, MQTT 3.1.1", "MQTT-3.1.2-24", "not-covered", "fails on a missing packet", "PINGRESP"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	var junit struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	jb, err := os.ReadFile(filepath.Join(dir, "reports", "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(jb, &junit); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for _, s := range junit.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures++
			}
		}
	}
	if failures != 3 {
		t.Errorf("junit.xml has %d failures, want the 3 failed Must checks", failures)
	}
	var sf suite.StatementsFile
	sb, err := os.ReadFile(filepath.Join(dir, "reports", "statements.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sb, &sf); err != nil {
		t.Fatal(err)
	}
	if sf.Schema != suite.StatementsSchema || len(sf.Statements) != len(res.Statements) {
		t.Errorf("statements.json: schema %q, %d statements", sf.Schema, len(sf.Statements))
	}
	for _, s := range sf.Statements {
		if s.ID == spec.V311_3_1_0_2 && (len(s.Evidence) != 2 || len(s.Evidence[0].Trace) == 0) {
			t.Errorf("statements.json: %s has evidence %+v, want the traces of its two checks", s.ID, s.Evidence)
		}
	}
	recs, err := filepath.Glob(filepath.Join(dir, "reports", "mqtt-conformance*.json"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("JSON record: %v %v", recs, err)
	}
	f, err := os.Open(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Outcome != report.Fail || rec.Kind != report.KindConformance {
		t.Errorf("record outcome %s kind %s", rec.Outcome, rec.Kind)
	}
}
