package packet_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestFanOut: one encoding patched per subscriber equals encoding each copy on its own.
func TestFanOut(t *testing.T) {
	for _, v := range []packet.Version{v311, v5} {
		p := &packet.Publish{QoS: 1, Topic: "acs/s1/gate/g1/evt/card", PacketID: 1, Payload: []byte(`{"card":"42"}`)}
		if v == v5 {
			p.Props.User = []packet.UserProperty{{Key: "k", Value: "v"}}
		}
		shared, err := packet.Encode(p, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []uint16{2, 300, 65535} {
			if err := packet.PatchPacketID(shared, id); err != nil {
				t.Fatal(err)
			}
			if err := packet.SetDup(shared, id == 300); err != nil {
				t.Fatal(err)
			}
			q := *p
			q.PacketID, q.Dup = id, id == 300
			want, _ := packet.Encode(&q, v)
			if !bytes.Equal(shared, want) {
				t.Fatalf("%s id %d: patched % x, want % x", v, id, shared, want)
			}
		}
	}
}

// TestAppendHeader: header + payload is the whole packet, so the payload can be written from the
// shared buffer without copying.
func TestAppendHeader(t *testing.T) {
	p := &packet.Publish{QoS: 2, Topic: "t", PacketID: 7, Props: packet.Properties{SubscriptionIDs: []uint32{3}}, Payload: bytes.Repeat([]byte("z"), 200)}
	hdr, err := p.AppendHeader(nil, v5)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := packet.Encode(p, v5)
	if !bytes.Equal(append(hdr, p.Payload...), whole) || len(hdr) != len(whole)-len(p.Payload) {
		t.Fatalf("header % x does not prefix % x", hdr, whole[:len(hdr)])
	}
}

func TestPatchPacketIDRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"QoS 0":     packet.Build(pub("a"), v311),
		"PUBACK":    packet.Build(&packet.Puback{PacketID: 1}, v311),
		"truncated": packet.Build(&packet.Publish{QoS: 1, Topic: "abc", PacketID: 1}, v311)[:5],
		"empty":     nil,
	} {
		if err := packet.PatchPacketID(b, 9); err == nil {
			t.Errorf("%s: patched", name)
		}
	}
	if err := packet.SetDup([]byte{0x40, 0}, true); !errors.Is(err, packet.MalformedPacket) {
		t.Errorf("SetDup on a PUBACK: %v", err)
	}
}

// TestAllocations: encoding into a buffer with room allocates nothing; decoding a PUBLISH
// allocates only the Publish itself; Unmarshal into a reused struct allocates nothing.
func TestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are measured in the full run")
	}
	for _, v := range []packet.Version{v311, v5} {
		p := &packet.Publish{QoS: 1, Topic: "acs/s1/gate/g1/evt/card", PacketID: 5, Payload: make([]byte, 64)}
		if v == v5 {
			p.Props = packet.Properties{MessageExpiry: 30, ContentType: "application/json"}
		}
		buf := make([]byte, 0, 1024)
		var enc []byte
		if n := testing.AllocsPerRun(100, func() { enc, _ = p.AppendTo(buf[:0], v) }); n != 0 {
			t.Errorf("%s: encode PUBLISH allocates %.0f times", v, n)
		}
		if n := testing.AllocsPerRun(100, func() { _, _, _ = packet.Decode(enc, v, 0) }); n > 1 {
			t.Errorf("%s: decode PUBLISH allocates %.0f times", v, n)
		}
		var into packet.Publish
		h, hl, _ := packet.ReadFixedHeader(enc)
		if n := testing.AllocsPerRun(100, func() { _ = into.Unmarshal(h, enc[hl:], v) }); n != 0 {
			t.Errorf("%s: unmarshal PUBLISH into a reused struct allocates %.0f times", v, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = packet.Validate(&into, v, packet.Client) }); n != 0 {
			t.Errorf("%s: validate PUBLISH allocates %.0f times", v, n)
		}
		for _, q := range samplePackets(v) {
			if q.Size(v) > cap(buf) {
				continue
			}
			if n := testing.AllocsPerRun(20, func() { _, _ = q.AppendTo(buf[:0], v) }); n != 0 {
				t.Errorf("%s: encode %s allocates %.0f times", v, q.Type(), n)
			}
		}
	}
}
