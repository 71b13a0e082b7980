package broker

import (
	"errors"
	"reflect"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func scratchConn() *conn {
	return &conn{b: &Broker{}, connected: true}
}

func mustEncode(t testing.TB, p packet.Packet, v packet.Version) []byte {
	t.Helper()
	b, err := packet.Encode(p, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The read loop's decoding of frequent packets must say exactly what packet.Decode says,
// malformed packets included.
func TestScratchDecodeAgreesWithDecode(t *testing.T) {
	pub := &packet.Publish{QoS: 1, Topic: "acs/site/gate/g1/evt/card", PacketID: 7, Payload: []byte(`{"card":"42"}`)}
	pub5 := &packet.Publish{QoS: 2, Topic: "a/b", PacketID: 9, Payload: []byte("x"), Props: packet.Properties{ContentType: "json"}}
	v311, v5 := packet.V311, packet.V5
	nonMinimal := packet.Build(&packet.Puback{PacketID: 3}, v5, packet.WithLongRemainingLength(2))
	qos3 := mustEncode(t, pub, v311)
	qos3[0] |= 0x06
	cases := []struct {
		name  string
		b     []byte
		v     packet.Version
		maxIn int
	}{
		{"publish 3.1.1", mustEncode(t, pub, v311), v311, 0},
		{"publish 5.0 with properties", mustEncode(t, pub5, v5), v5, 0},
		{"puback", mustEncode(t, &packet.Puback{PacketID: 3}, v311), v311, 0},
		{"puback 5.0 with reason", mustEncode(t, &packet.Puback{PacketID: 3, Code: packet.NoMatchingSubscribers}, v5), v5, 0},
		{"pubrec", mustEncode(t, &packet.Pubrec{PacketID: 4}, v311), v311, 0},
		{"pubrel", mustEncode(t, &packet.Pubrel{PacketID: 5}, v311), v311, 0},
		{"pubcomp", mustEncode(t, &packet.Pubcomp{PacketID: 6}, v5), v5, 0},
		{"pingreq", mustEncode(t, &packet.Pingreq{}, v311), v311, 0},
		{"subscribe goes through Decode", mustEncode(t, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#"}}}, v311), v311, 0},
		{"incomplete publish", mustEncode(t, pub, v311)[:10], v311, 0},
		{"publish over the maximum packet size", mustEncode(t, pub, v311), v311, 20},
		{"QoS 3 publish", qos3, v311, 0},
		{"5.0 remaining length not in shortest form", nonMinimal, v5, 0},
		{"pubrel with reserved flags 0", append([]byte{0x60}, mustEncode(t, &packet.Pubrel{PacketID: 5}, v311)[1:]...), v311, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantP, wantN, wantErr := packet.Decode(tc.b, tc.v, tc.maxIn)
			sc := new(readScratch)
			gotP, gotN, gotErr := scratchConn().decode(sc, tc.b, tc.v, tc.maxIn)
			if gotN != wantN || !reflect.DeepEqual(gotP, wantP) {
				t.Fatalf("decode = %#v, %d; Decode = %#v, %d", gotP, gotN, wantP, wantN)
			}
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("decode error %v; Decode error %v", gotErr, wantErr)
			}
			if errors.Is(wantErr, packet.ErrIncomplete) && !errors.Is(gotErr, packet.ErrIncomplete) {
				t.Fatalf("decode error %v, want ErrIncomplete", gotErr)
			}
		})
	}
}

// Decoding a PUBLISH and its acknowledgement into the scratch packets allocates nothing.
func TestScratchDecodeAllocatesNothing(t *testing.T) {
	c := scratchConn()
	frames := [][]byte{
		mustEncode(t, &packet.Publish{QoS: 1, Topic: "acs/site/gate/g1/evt/card", PacketID: 7, Payload: make([]byte, 64)}, packet.V311),
		mustEncode(t, &packet.Puback{PacketID: 7}, packet.V311),
		mustEncode(t, &packet.Pubrec{PacketID: 7}, packet.V311),
		mustEncode(t, &packet.Pingreq{}, packet.V311),
	}
	sc := new(readScratch)
	allocs := testing.AllocsPerRun(200, func() {
		for _, f := range frames {
			if _, _, err := c.decode(sc, f, packet.V311, 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per PUBLISH, PUBACK, PUBREC and PINGREQ, want 0", allocs)
	}
}

// A tracer may keep the packets it sees, so with one set every packet is freshly decoded.
func TestScratchDecodeNotUsedWithATracer(t *testing.T) {
	c := scratchConn()
	c.b.cfg.Tracer = TracerFunc(func(TraceEvent) {})
	sc := new(readScratch)
	p, _, err := c.decode(sc, mustEncode(t, &packet.Puback{PacketID: 1}, packet.V311), packet.V311, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p == packet.Packet(&sc.ack) {
		t.Fatal("with a tracer, decode returned the scratch PUBACK")
	}
}

func BenchmarkReadLoopDecodePublish(b *testing.B) {
	c := scratchConn()
	f := mustEncode(b, &packet.Publish{QoS: 1, Topic: "acs/site/gate/g1/evt/card", PacketID: 7, Payload: make([]byte, 64)}, packet.V311)
	sc := new(readScratch)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.decode(sc, f, packet.V311, 0); err != nil {
			b.Fatal(err)
		}
	}
}
