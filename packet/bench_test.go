package packet_test

import (
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func benchPackets(v packet.Version) []struct {
	name string
	p    packet.Packet
} {
	props := func(p packet.Properties) packet.Properties {
		if v != packet.V5 {
			return packet.Properties{}
		}
		return p
	}
	return []struct {
		name string
		p    packet.Packet
	}{
		{"Publish64B", &packet.Publish{QoS: 1, Topic: "acs/site-1/gate/gate-01/evt/card", PacketID: 42,
			Props: props(packet.Properties{MessageExpiry: 60}), Payload: make([]byte, 64)}},
		{"Publish64KiB", &packet.Publish{QoS: 1, Topic: "acs/site-1/camera/cam-01/evt/snapshot", PacketID: 43,
			Props: props(packet.Properties{ContentType: "image/jpeg"}), Payload: make([]byte, 64<<10)}},
		{"Connect", &packet.Connect{CleanStart: true, KeepAlive: 30, ClientID: "gate-01",
			Will:     &packet.Will{Topic: "acs/site-1/gate/gate-01/status", Payload: []byte(`{"online":false}`), QoS: 1, Retain: true},
			Username: "gate-01", Password: []byte("secret"),
			Props: props(packet.Properties{SessionExpiry: 3600, ReceiveMaximum: 32})}},
		{"Subscribe", &packet.Subscribe{PacketID: 7, Props: props(packet.Properties{SubscriptionIDs: []uint32{1}}),
			Subscriptions: []packet.Subscription{{Filter: "acs/site-1/gate/gate-01/cmd/+", QoS: 1}, {Filter: "acs/site-1/broadcast/#", QoS: 0}}}},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		for _, bp := range benchPackets(v) {
			b.Run(bp.name+"/"+v.String(), func(b *testing.B) {
				buf := make([]byte, 0, bp.p.Size(v))
				b.SetBytes(int64(bp.p.Size(v)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = bp.p.AppendTo(buf[:0], v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		for _, bp := range benchPackets(v) {
			b.Run(bp.name+"/"+v.String(), func(b *testing.B) {
				enc := packet.Build(bp.p, v)
				b.SetBytes(int64(len(enc)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := packet.Decode(enc, v, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecodeValidate is what a broker does per received PUBLISH: decode and validate.
func BenchmarkDecodeValidate(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		bp := benchPackets(v)[0]
		b.Run(bp.name+"/"+v.String(), func(b *testing.B) {
			enc := packet.Build(bp.p, v)
			b.ReportAllocs()
			for b.Loop() {
				p, _, err := packet.Decode(enc, v, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := packet.Validate(p, v, packet.Client); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnmarshalReused decodes a PUBLISH into a struct the caller keeps, as a broker's read
// loop can: no allocation at all.
func BenchmarkUnmarshalReused(b *testing.B) {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		bp := benchPackets(v)[0]
		b.Run(bp.name+"/"+v.String(), func(b *testing.B) {
			enc := packet.Build(bp.p, v)
			h, hl, err := packet.ReadFixedHeader(enc)
			if err != nil {
				b.Fatal(err)
			}
			var p packet.Publish
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Unmarshal(h, enc[hl:], v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
