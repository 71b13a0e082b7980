package packet_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestReaderStream reads a server-side stream: CONNECT (which sets the version), then packets
// decoded for that version, then a clean end.
func TestReaderStream(t *testing.T) {
	var stream []byte
	stream = append(stream, packet.Build(&packet.Connect{ClientID: "c", CleanStart: true}, v5)...)
	want := []packet.Packet{
		&packet.Publish{QoS: 1, PacketID: 9, Topic: "a/b", Props: packet.Properties{MessageExpiry: 5}, Payload: []byte("x")},
		&packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 1}}},
		&packet.Pingreq{},
		&packet.Disconnect{Code: packet.DisconnectWithWill},
	}
	for _, p := range want {
		stream = append(stream, packet.Build(p, v5)...)
	}
	// One byte per Read exercises every partial-read path.
	r := packet.NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	if r.Version() != 0 {
		t.Fatalf("version before CONNECT = %v", r.Version())
	}
	p, err := r.ReadPacket()
	if err != nil || p.Type() != packet.TypeConnect || r.Version() != v5 {
		t.Fatalf("CONNECT: %v %v, version %v", p, err, r.Version())
	}
	for _, w := range want {
		p, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("%s: %v", w.Type(), err)
		}
		if !reflect.DeepEqual(p, withPresent(w)) {
			t.Fatalf("got %#v\nwant %#v", p, w)
		}
	}
	if _, err := r.ReadPacket(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

// TestReaderPacketsOutliveNextRead: each packet owns its body buffer.
func TestReaderPacketsOutliveNextRead(t *testing.T) {
	var stream []byte
	stream = append(stream, packet.Build(pub("first"), v311)...)
	stream = append(stream, packet.Build(pub("other"), v311)...)
	r := packet.NewReader(bufio.NewReader(bytes.NewReader(stream)), 0)
	r.SetVersion(v311)
	a, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	if got := a.(*packet.Publish).Topic; got != "first" {
		t.Fatalf("first packet's topic changed to %q", got)
	}
}

func TestReaderErrors(t *testing.T) {
	full := packet.Build(&packet.Publish{Topic: "abc", Payload: []byte("payload")}, v311)
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"one byte", full[:1], 0, io.ErrUnexpectedEOF},
		{"inside the body", full[:len(full)-1], 0, io.ErrUnexpectedEOF},
		{"header without body", full[:2], 0, io.ErrUnexpectedEOF},
		{"inside a long remaining length", []byte{0x30, 0x80}, 0, io.ErrUnexpectedEOF},
		{"remaining length of five bytes", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, packet.MalformedPacket},
		{"over the maximum size", full, 5, packet.PacketTooLarge},
		{"reserved flags", packet.Build(&packet.Puback{PacketID: 1}, v311, packet.WithFlags(1)), 0, packet.MalformedPacket},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := packet.NewReader(bytes.NewReader(tc.in), tc.max)
			r.SetVersion(v311)
			_, err := r.ReadPacket()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReaderRefusesBeforeAllocating: a huge declared length over the limit is refused without
// reading further (the reader would block or fail if it tried).
func TestReaderRefusesBeforeAllocating(t *testing.T) {
	r := packet.NewReader(io.MultiReader(bytes.NewReader([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}), iotest.ErrReader(errors.New("read past the header"))), 1<<20)
	r.SetVersion(v5)
	if _, err := r.ReadPacket(); !errors.Is(err, packet.PacketTooLarge) {
		t.Fatalf("err = %v, want packet too large", err)
	}
}
