package device_test

import (
	"os"
	"strings"
	"testing"

	certdevice "github.com/gatehouse-iot/gatehouse/conformance/device"
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// Every statement a requirement cites is a statement of its version that a certifier, playing
// the server, can observe: testable from the client side.
func TestRequirementsCiteClientSideStatements(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range certdevice.Requirements {
		if r.Title == "" || (r.Level != certdevice.Must && r.Level != certdevice.Should) {
			t.Errorf("requirement %q: title %q, level %q", r.ID, r.Title, r.Level)
		}
		if seen[r.ID] {
			t.Errorf("requirement %q listed twice", r.ID)
		}
		seen[r.ID] = true
		if r.Only5 && len(r.V311) > 0 {
			t.Errorf("requirement %q is about MQTT 5.0 only but cites 3.1.1 statements %v", r.ID, r.V311)
		}
		for version, ids := range map[string][]spec.ID{spec.Version311: r.V311, spec.Version5: r.V5} {
			for _, id := range ids {
				st, ok := spec.Lookup(version, id)
				if !ok {
					t.Errorf("requirement %q cites %s, not a statement of MQTT %s", r.ID, id, version)
					continue
				}
				if !st.TestableFrom(spec.SideClient) {
					t.Errorf("requirement %q cites %s (MQTT %s), which the catalogue says a client test cannot observe (testable: %s)", r.ID, id, version, st.Testable)
				}
			}
		}
	}
}

// README.md lists every requirement, so that the page a vendor reads stays true.
func TestReadmeListsEveryRequirement(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range certdevice.Requirements {
		if !strings.Contains(string(b), "| `"+r.ID+"` | "+strings.ToUpper(string(r.Level))+" |") {
			t.Errorf("README.md has no row for requirement %s (%s)", r.ID, strings.ToUpper(string(r.Level)))
		}
	}
}
