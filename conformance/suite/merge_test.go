package suite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
)

func TestMergeCombinesShards(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &suite.Result{Versions: []string{spec.Version311}, Start: t0.Add(time.Second), End: t0.Add(3 * time.Second),
		Checks: []suite.CheckResult{{Name: "b", Version: spec.Version311, IDs: []spec.ID{spec.V311_3_12_4_1}, Verdict: suite.Pass}}}
	b := &suite.Result{Versions: []string{spec.Version311}, Start: t0, End: t0.Add(2 * time.Second),
		Checks: []suite.CheckResult{{Name: "a", Version: spec.Version311, IDs: []spec.ID{spec.V311_3_12_4_1},
			Verdict: suite.Fail, Blamed: []spec.ID{spec.V311_3_12_4_1}}}}
	r, err := suite.Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Checks) != 2 || r.Checks[0].Name != "a" || !r.Start.Equal(t0) || !r.End.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("merged %+v", r)
	}
	for _, s := range r.Statements {
		if s.ID == spec.V311_3_12_4_1 && (s.Verdict != suite.Fail || len(s.Checks) != 2) {
			t.Fatalf("statement over both shards: %+v", s)
		}
	}
	if !r.Failed() {
		t.Fatal("a failure in one shard is not a failure of the run")
	}
	if _, err := suite.Merge(a, a); err == nil || !strings.Contains(err.Error(), "two shards") {
		t.Fatalf("a check in two shards: err = %v", err)
	}
}
