package packet_test

import (
	"errors"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// TestAccepted lists packets near a rule's edge that the rule must let through, so that no check
// is stricter than the specification.
func TestAccepted(t *testing.T) {
	tests := []struct {
		name string
		v    packet.Version
		from packet.Side
		b    []byte
	}{
		{"3.1.1 remaining length not in shortest form", v311, cli, packet.Build(&packet.Pingreq{}, v311, packet.WithLongRemainingLength(4))},
		{"5.0 password without user name", v5, cli, connect(packet.Connect{Password: []byte("p")}, v5)},
		{"5.0 empty client identifier without clean start", v5, cli, packet.Build(&packet.Connect{}, v5)},
		{"5.0 empty topic with a topic alias", v5, cli, packet.Build(&packet.Publish{Props: packet.Properties{TopicAlias: 1}}, v5)},
		{"byte order mark in a topic is kept", v311, cli, packet.Build(pub("\uFEFFa"), v311)},
		{"control character U+0001 in a topic", v5, cli, packet.Build(pub("a\x01"), v5)},
		{"'/' alone is a topic", v311, cli, packet.Build(pub("/"), v311)},
		{"empty levels", v311, cli, packet.Build(pub("a//b/"), v311)},
		{"$SYS topic", v311, srv, packet.Build(pub("$SYS/broker/load"), v311)},
		{"filters with wildcards in whole levels", v311, cli, sub(v311,
			packet.Subscription{Filter: "#"}, packet.Subscription{Filter: "+"}, packet.Subscription{Filter: "+/+"},
			packet.Subscription{Filter: "a/+/b/#"}, packet.Subscription{Filter: "/#"}, packet.Subscription{Filter: "$SYS/#"})},
		{"shared subscription", v5, cli, sub(v5, packet.Subscription{Filter: "$share/grp/acs/+/gate/#", QoS: 2})},
		{"$share is an ordinary filter in 3.1.1", v311, cli, sub(v311, packet.Subscription{Filter: "$share//a"})},
		{"no local on a non-shared subscription", v5, cli, sub(v5, packet.Subscription{Filter: "a", NoLocal: true, RetainHandling: 2})},
		{"3.1 SUBACK failure code accepted", packet.V31, srv, []byte{0x90, 3, 0, 1, 0x80}},
		{"5.0 DISCONNECT with will from a client", v5, cli, []byte{0xE0, 1, 0x04}},
		{"5.0 PUBACK long form with empty properties", v5, cli, []byte{0x40, 4, 0, 1, 0, 0}},
		{"5.0 AUTH success", v5, srv, []byte{0xF0, 0}},
		{"5.0 subscription identifier 268435455", v5, srv, packet.Build(&packet.Publish{Topic: "a", Props: packet.Properties{SubscriptionIDs: []uint32{packet.MaxRemaining}}}, v5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if stage, err := check(tc.b, tc.v, tc.from, 0); err != nil {
				t.Errorf("rejected at %s: %v", stage, err)
			}
		})
	}
}

// TestIncomplete: every proper prefix of a packet is reported as incomplete, never as malformed,
// so that a reader that has not yet received the whole packet waits for more.
func TestIncomplete(t *testing.T) {
	for _, g := range loadGolden(t) {
		for i := 0; i < len(g.b); i++ {
			p, n, err := packet.Decode(g.b[:i], g.v, 0)
			if !errors.Is(err, packet.ErrIncomplete) || p != nil || n != 0 {
				t.Fatalf("%s: prefix of %d bytes: %v, %v, %d; want ErrIncomplete", g.name, i, p, err, n)
			}
		}
		if _, _, err := packet.ReadFixedHeader(g.b[:1]); !errors.Is(err, packet.ErrIncomplete) {
			t.Errorf("%s: ReadFixedHeader of one byte: %v", g.name, err)
		}
	}
	// A remaining length still in progress is incomplete too.
	if _, _, err := packet.Decode([]byte{0x30, 0x80, 0x80}, v5, 0); !errors.Is(err, packet.ErrIncomplete) {
		t.Errorf("unfinished remaining length: %v", err)
	}
}

// TestDecodeConsumesOnePacket: Decode reads exactly one packet from a buffer holding several.
func TestDecodeConsumesOnePacket(t *testing.T) {
	b := packet.Build(&packet.Pingreq{}, v311)
	b = append(b, packet.Build(&packet.Publish{Topic: "a", Payload: []byte("1")}, v311)...)
	b = append(b, 0x40) // the first byte of the next packet
	p, n, err := packet.Decode(b, v311, 0)
	if err != nil || n != 2 || p.Type() != packet.TypePingreq {
		t.Fatalf("first: %v %d %v", p, n, err)
	}
	p, m, err := packet.Decode(b[n:], v311, 0)
	if err != nil || m != 6 || p.(*packet.Publish).Topic != "a" {
		t.Fatalf("second: %#v %d %v", p, m, err)
	}
	if _, _, err := packet.Decode(b[n+m:], v311, 0); !errors.Is(err, packet.ErrIncomplete) {
		t.Fatalf("third: %v", err)
	}
}

// TestMaxSizeCheckedBeforeBody: a declared size over the limit is refused from the fixed header
// alone, before the body has arrived.
func TestMaxSizeCheckedBeforeBody(t *testing.T) {
	header := []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F} // PUBLISH declaring 268,435,455 bytes
	_, _, err := packet.Decode(header, v5, 1024)
	if !errors.Is(err, packet.PacketTooLarge) {
		t.Fatalf("err = %v, want packet too large", err)
	}
	// The size limit counts the whole packet, fixed header included.
	b := packet.Build(&packet.Publish{Topic: "a", Payload: make([]byte, 10)}, v311)
	if _, _, err := packet.Decode(b, v311, len(b)); err != nil {
		t.Errorf("packet of exactly the maximum size refused: %v", err)
	}
	if _, _, err := packet.Decode(b, v311, len(b)-1); !errors.Is(err, packet.PacketTooLarge) {
		t.Errorf("packet one byte over the maximum: %v", err)
	}
}

// TestPartialConnect: a CONNECT for an unsupported level comes back with its version, so that a
// server can answer in kind.
func TestPartialConnect(t *testing.T) {
	b := connect(packet.Connect{Version: 7}, v5)
	p, n, err := packet.Decode(b, 0, 0)
	if !errors.Is(err, packet.UnsupportedProtocolVersion) || n != len(b) {
		t.Fatalf("err = %v, n = %d", err, n)
	}
	c, ok := p.(*packet.Connect)
	if !ok || c.Version != 7 || c.ProtocolName != "MQTT" {
		t.Fatalf("partial connect = %#v", p)
	}
}
