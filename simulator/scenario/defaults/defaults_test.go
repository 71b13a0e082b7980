package defaults

import (
	"bytes"
	"os"
	"testing"
)

// The copy in scenarios/ is what people read; the embedded one is what runs. They must not drift.
func TestEmbeddedDefaultEqualsScenariosCopy(t *testing.T) {
	onDisk, err := os.ReadFile("../../../" + Name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, Source()) {
		t.Fatalf("%s and simulator/scenario/defaults/default.yaml differ: copy one onto the other (cp %s simulator/scenario/defaults/default.yaml)", Name, Name)
	}
}

func TestDefaultScenarioParses(t *testing.T) {
	s, err := Scenario()
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration <= 0 || s.Duration > 45_000_000_000 {
		t.Fatalf("the default scenario lasts %s; make run must finish well under a minute", s.Duration)
	}
}
