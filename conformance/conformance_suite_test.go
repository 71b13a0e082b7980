package conformance_test

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"

	_ "github.com/gatehouse-iot/gatehouse/conformance"
)

// TestConformance runs every check against the embedded reference broker: every MUST holds.
func TestConformance(t *testing.T) {
	tg, err := target.Parse("embedded")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := tg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	sc, rc := ginkgo.GinkgoConfiguration()
	res, err := suite.RunSpecs(ctx, t, suite.Config{Target: r, Versions: []string{spec.Version311}}, &suite.GinkgoConfig{Suite: sc, Reporter: rc})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.Summary() {
		t.Log(l)
	}
}
