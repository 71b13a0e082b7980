package link_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/device/link"
)

// FuzzFraming feeds arbitrary bytes through the outgoing and incoming framing: nothing panics, and
// what goes out does not depend on how the client split its writes.
func FuzzFraming(f *testing.F) {
	f.Add([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 0}, 3)
	f.Add([]byte{0x34, 0x07, 0, 1, 't', 0, 7, 'x', 'y', 0x62, 0x02, 0, 7, 0x3c, 0x07, 0, 1, 't', 0, 7, 'x', 'y'}, 11)
	f.Add([]byte{0x70, 0x02, 0, 7, 0xd0, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff}, 5)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		cfg := link.Config{Keepalive: 2 * time.Second, Idle: time.Hour}
		whole, parts := newNetConn(), newNetConn()
		cw, cp := link.New(cfg).Wrap(whole), link.New(cfg).Wrap(parts)
		defer cw.Close()
		defer cp.Close()
		if _, err := cw.Write(b); err != nil {
			t.Fatal(err)
		}
		split = max(0, min(split, len(b)))
		for _, p := range [][]byte{b[:split], b[split:]} {
			if _, err := cp.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		if w, p := whole.written(), parts.written(); !bytes.Equal(w, p) {
			t.Fatalf("one write sent % x, two writes split at %d sent % x", w, split, p)
		}
		parts.in <- b
		if _, err := cp.Read(make([]byte, len(b)+1)); err != nil {
			t.Fatal(err)
		}
	})
}
