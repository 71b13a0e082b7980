package fault

import (
	"bytes"
	"testing"
)

// FuzzFrame feeds arbitrary bytes, split at arbitrary points, through the outgoing framer:
// without faults the bytes must come out unchanged; with both firmware faults on it must not
// panic and never emit more bytes than it was given.
func FuzzFrame(f *testing.F) {
	f.Add(concat(publishDup, pingreq, puback), uint8(3))
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, uint8(1))
	f.Add([]byte{0xC0}, uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		n := int(step%16) + 1
		clean := &Conn{wire: NewWire()}
		buggy := &Conn{wire: NewWire()}
		buggy.wire.SetNoPingreq(true)
		buggy.wire.SetNoDup(true)
		var out, outBuggy []byte
		for i := 0; i < len(stream); i += n {
			chunk := stream[i:min(i+n, len(stream))]
			out = append(out, clean.frame(chunk)...)
			outBuggy = append(outBuggy, buggy.frame(chunk)...)
		}
		// Header bytes of an unfinished packet are held until the header is complete.
		if held := len(clean.hdr); !bytes.Equal(out, stream[:len(stream)-held]) {
			t.Fatalf("framing without faults changed the stream:\n in % x\nout % x", stream, out)
		}
		if len(outBuggy) > len(stream) {
			t.Fatalf("framing with faults emitted %d bytes from %d", len(outBuggy), len(stream))
		}
	})
}
