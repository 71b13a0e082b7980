package packet_test

import (
	"bytes"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestBuildMutations(t *testing.T) {
	puback := &packet.Puback{PacketID: 0x0102}
	tests := []struct {
		name string
		muts []packet.Mutation
		want []byte
	}{
		{"none", nil, []byte{0x40, 2, 1, 2}},
		{"flags", []packet.Mutation{packet.WithFlags(0x0F)}, []byte{0x4F, 2, 1, 2}},
		{"type", []packet.Mutation{packet.WithType(0)}, []byte{0x00, 2, 1, 2}},
		{"remaining length", []packet.Mutation{packet.WithRemainingLength(300)}, []byte{0x40, 0xAC, 0x02, 1, 2}},
		{"long remaining length", []packet.Mutation{packet.WithLongRemainingLength(5)}, []byte{0x40, 0x82, 0x80, 0x80, 0x80, 0x00, 1, 2}},
		{"truncate", []packet.Mutation{packet.Truncate(1)}, []byte{0x40, 1, 1}},
		{"truncate everything", []packet.Mutation{packet.Truncate(10)}, []byte{0x40, 0}},
		{"cut", []packet.Mutation{packet.Cut(1)}, []byte{0x40, 2, 1}},
		{"append", []packet.Mutation{packet.AppendBytes(9, 9)}, []byte{0x40, 4, 1, 2, 9, 9}},
		{"set byte", []packet.Mutation{packet.SetByte(3, 0)}, []byte{0x40, 2, 1, 0}},
		{"set body", []packet.Mutation{packet.SetBody(0, 0)}, []byte{0x40, 2, 0, 2}},
		{"in order", []packet.Mutation{packet.AppendBytes(7), packet.WithFlags(1)}, []byte{0x41, 3, 1, 2, 7}},
	}
	for _, tc := range tests {
		if got := packet.Build(puback, v311, tc.muts...); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got % x, want % x", tc.name, got, tc.want)
		}
	}
}

func TestWithConnectFlags(t *testing.T) {
	b := packet.Build(&packet.Connect{ClientID: "c"}, v311, packet.WithConnectFlags(0x18))
	// 10 0d | 00 04 M Q T T | 04 | flags
	if b[9] != 0x18 {
		t.Fatalf("connect flags byte = %#x in % x", b[9], b)
	}
}

func TestBuildPanicsOnUnrepresentable(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Build of a 70,000-byte topic did not panic")
		}
	}()
	packet.Build(&packet.Publish{Topic: string(make([]byte, 70_000))}, v311)
}
