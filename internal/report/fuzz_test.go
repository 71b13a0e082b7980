package report

import (
	"bytes"
	"testing"
)

// ReadJSON reads files from outside (shards merged after a distributed run): any input either
// is refused with an error or reads into a record that writes back and reads again unchanged.
func FuzzReadJSON(f *testing.F) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(`{"schema":"gatehouse.report/v1","name":"x","kind":"hil","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"pass","versions":{},"cases":[]}`))
	f.Add([]byte(`{"schema":"gatehouse.report/v1","seed":18446744073709551615}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteJSON(&out, r); err != nil {
			t.Fatalf("a record that was read cannot be written: %v", err)
		}
		again, err := ReadJSON(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("a written record does not read back: %v\n%s", err, out.Bytes())
		}
		var out2 bytes.Buffer
		if err := WriteJSON(&out2, again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("write → read → write changed the record:\n%s\n%s", out.Bytes(), out2.Bytes())
		}
		// The other writers take whatever was read.
		if err := WriteJUnit(&bytes.Buffer{}, "fuzz", r); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&bytes.Buffer{}, "fuzz", r); err != nil {
			t.Fatal(err)
		}
	})
}
