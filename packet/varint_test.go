package packet_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestVarint uses the boundary values of 5.0 §1.5.5 Table 1-1.
func TestVarint(t *testing.T) {
	tests := []struct {
		n   int
		enc []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7F}},
		{128, []byte{0x80, 0x01}},
		{16_383, []byte{0xFF, 0x7F}},
		{16_384, []byte{0x80, 0x80, 0x01}},
		{2_097_151, []byte{0xFF, 0xFF, 0x7F}},
		{2_097_152, []byte{0x80, 0x80, 0x80, 0x01}},
		{268_435_455, []byte{0xFF, 0xFF, 0xFF, 0x7F}},
	}
	for _, tc := range tests {
		got := packet.AppendVarint(nil, tc.n)
		if !bytes.Equal(got, tc.enc) || packet.VarintSize(tc.n) != len(tc.enc) {
			t.Errorf("%d: % x (size %d), want % x", tc.n, got, packet.VarintSize(tc.n), tc.enc)
		}
		n, l, err := packet.ReadVarint(tc.enc)
		if err != nil || n != tc.n || l != len(tc.enc) {
			t.Errorf("read % x: %d %d %v", tc.enc, n, l, err)
		}
	}
	if packet.VarintSize(packet.MaxRemaining+1) != 5 {
		t.Error("a value over 268435455 must not fit in four bytes")
	}
	if _, _, err := packet.ReadVarint([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0x01}); !errors.Is(err, packet.MalformedPacket) {
		t.Errorf("five bytes: %v", err)
	}
	if _, _, err := packet.ReadVarint([]byte{0xFF}); !errors.Is(err, packet.ErrIncomplete) {
		t.Errorf("unfinished: %v", err)
	}
	if got := packet.AppendVarint(nil, -1); len(got) == 0 || len(got) > 10 {
		t.Errorf("negative value: % x", got)
	}
}
