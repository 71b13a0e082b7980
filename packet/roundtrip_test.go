package packet_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// allProps returns properties with every identifier allowed in a packet of type t set to a
// non-zero value (will properties when will is true).
func allProps(t packet.Type, will bool) packet.Properties {
	allowed := packet.AllowedProps(t)
	if will {
		allowed = packet.AllowedWillProps()
	}
	var p packet.Properties
	for id := packet.PropID(1); id < 64; id++ {
		if !allowed.Has(id) {
			continue
		}
		switch id {
		case packet.PropPayloadFormat:
			p.PayloadFormat = 1
		case packet.PropMessageExpiry:
			p.MessageExpiry = 0xFFFFFFFF
		case packet.PropContentType:
			p.ContentType = "application/json"
		case packet.PropResponseTopic:
			p.ResponseTopic = "reply/to"
		case packet.PropCorrelationData:
			p.CorrelationData = []byte{0, 1, 2}
		case packet.PropSubscriptionID:
			p.SubscriptionIDs = []uint32{packet.MaxRemaining}
			if t == packet.TypePublish {
				p.SubscriptionIDs = append(p.SubscriptionIDs, 1, 128)
			}
		case packet.PropSessionExpiry:
			p.SessionExpiry = 86400
		case packet.PropAssignedClientID:
			p.AssignedClientID = "auto-0001"
		case packet.PropServerKeepAlive:
			p.ServerKeepAlive = 45
		case packet.PropAuthMethod:
			p.AuthMethod = "SCRAM-SHA-256"
		case packet.PropAuthData:
			p.AuthData = []byte("data")
		case packet.PropRequestProblemInfo:
			p.RequestProblemInfo = 1
		case packet.PropWillDelay:
			p.WillDelay = 30
		case packet.PropRequestResponseInfo:
			p.RequestResponseInfo = 1
		case packet.PropResponseInfo:
			p.ResponseInfo = "resp/"
		case packet.PropServerReference:
			p.ServerReference = "other:1883"
		case packet.PropReasonString:
			p.ReasonString = "because"
		case packet.PropReceiveMaximum:
			p.ReceiveMaximum = 65535
		case packet.PropTopicAliasMaximum:
			p.TopicAliasMaximum = 10
		case packet.PropTopicAlias:
			p.TopicAlias = 9
		case packet.PropMaximumQoS:
			p.MaximumQoS = 1
		case packet.PropRetainAvailable:
			p.RetainAvailable = 1
		case packet.PropUserProperty:
			p.User = []packet.UserProperty{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}, {Key: "", Value: ""}}
		case packet.PropMaximumPacketSize:
			p.MaximumPacketSize = 1 << 20
		case packet.PropWildcardSubAvailable:
			p.WildcardSubAvailable = 1
		case packet.PropSubIDAvailable:
			p.SubIDAvailable = 1
		case packet.PropSharedSubAvailable:
			p.SharedSubAvailable = 1
		}
	}
	return p
}

// samplePackets returns packets of every type that exists in v, with every field set where the
// version has it, plus edge cases (empty payloads, big payloads, long remaining lengths).
func samplePackets(v packet.Version) []packet.Packet {
	props := func(t packet.Type) packet.Properties {
		if v != packet.V5 {
			return packet.Properties{}
		}
		return allProps(t, false)
	}
	code := func(c packet.ReasonCode) packet.ReasonCode {
		if v != packet.V5 {
			return 0
		}
		return c
	}
	will := &packet.Will{Topic: "acs/s1/gate/g1/status", Payload: []byte(`{"online":false}`), QoS: 2, Retain: true}
	if v == packet.V5 {
		will.Props = allProps(packet.TypeConnect, true)
	}
	clientID := "gate-01"
	big := bytes.Repeat([]byte("gate "), 14_000) // remaining length needs three bytes
	ps := []packet.Packet{
		&packet.Connect{ProtocolName: v.ProtocolName(), Version: v, CleanStart: true, KeepAlive: 65535, ClientID: clientID,
			Will: will, Username: "user", UsernameFlag: true, Password: []byte{0, 0xFF}, PasswordFlag: true, Props: props(packet.TypeConnect)},
		&packet.Connect{ProtocolName: v.ProtocolName(), Version: v, ClientID: clientID, Props: props(packet.TypeConnect)},
		&packet.Connack{SessionPresent: true, Code: packet.ConnackCode(v, packet.Success), Props: props(packet.TypeConnack)},
		&packet.Connack{Code: packet.ConnackCode(v, packet.NotAuthorized), Props: props(packet.TypeConnack)},
		&packet.Publish{Topic: "t", Payload: nil, Props: props(packet.TypePublish)},
		&packet.Publish{Dup: true, QoS: 1, Retain: true, Topic: "acs/s1/gate/g1/evt/card", PacketID: 1, Payload: []byte("x"), Props: props(packet.TypePublish)},
		&packet.Publish{QoS: 2, Topic: "ünïcödé/🚧", PacketID: 65535, Payload: big, Props: props(packet.TypePublish)},
		&packet.Puback{PacketID: 1, Code: code(packet.NoMatchingSubscribers), Props: props(packet.TypePuback)},
		&packet.Puback{PacketID: 2},
		&packet.Puback{PacketID: 3, Code: code(packet.NotAuthorized)},
		&packet.Pubrec{PacketID: 4, Code: code(packet.QuotaExceeded), Props: props(packet.TypePubrec)},
		&packet.Pubrec{PacketID: 5},
		&packet.Pubrel{PacketID: 6, Code: code(packet.PacketIdentifierNotFound), Props: props(packet.TypePubrel)},
		&packet.Pubrel{PacketID: 7},
		&packet.Pubcomp{PacketID: 8, Code: code(packet.PacketIdentifierNotFound), Props: props(packet.TypePubcomp)},
		&packet.Pubcomp{PacketID: 9},
		&packet.Subscribe{PacketID: 10, Props: props(packet.TypeSubscribe), Subscriptions: []packet.Subscription{
			{Filter: "a/+/c", QoS: 1}, {Filter: "#", QoS: 2}, {Filter: "a", QoS: 0}}},
		&packet.Suback{PacketID: 10, Props: props(packet.TypeSuback), Codes: []packet.ReasonCode{1, 2, 0, 0x80}},
		&packet.Unsubscribe{PacketID: 11, Props: props(packet.TypeUnsubscribe), Filters: []string{"a/+/c", "#"}},
		&packet.Pingreq{},
		&packet.Pingresp{},
		&packet.Disconnect{},
	}
	if v == packet.V5 {
		ps = append(ps,
			&packet.Subscribe{PacketID: 12, Subscriptions: []packet.Subscription{
				{Filter: "$share/g/a/#", QoS: 1, RetainHandling: 1, RetainAsPublished: true},
				{Filter: "b", QoS: 0, NoLocal: true, RetainHandling: 2}}},
			&packet.Unsuback{PacketID: 11, Props: props(packet.TypeUnsuback), Codes: []packet.ReasonCode{0, 0x11}},
			&packet.Disconnect{Code: packet.ServerShuttingDown, Props: props(packet.TypeDisconnect)},
			&packet.Disconnect{Code: packet.DisconnectWithWill},
			&packet.Auth{Code: packet.ReAuthenticate, Props: props(packet.TypeAuth)},
			&packet.Auth{},
		)
	} else {
		ps = append(ps, &packet.Unsuback{PacketID: 11})
	}
	return ps
}

// TestRoundTrip encodes every sample packet, decodes it back and requires the same struct, the
// advertised Size, and that AppendTo keeps what the buffer held before.
func TestRoundTrip(t *testing.T) {
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		for i, p := range samplePackets(v) {
			name := v.String() + "/" + p.Type().String() + "/" + itoa(i)
			t.Run(name, func(t *testing.T) {
				prefix := []byte("prefix")
				b, err := p.AppendTo(append([]byte(nil), prefix...), v)
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				if !bytes.HasPrefix(b, prefix) {
					t.Fatalf("AppendTo overwrote the buffer's existing bytes")
				}
				b = b[len(prefix):]
				if len(b) != p.Size(v) {
					t.Fatalf("Size = %d, encoded %d bytes", p.Size(v), len(b))
				}
				got, n, err := packet.Decode(b, v, 0)
				if err != nil {
					t.Fatalf("decode % x: %v", b[:min(len(b), 64)], err)
				}
				if n != len(b) {
					t.Fatalf("consumed %d of %d", n, len(b))
				}
				want := withPresent(p)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round trip changed the packet\n got %#v\nwant %#v", got, want)
				}
				// A decoded packet re-encodes to the same bytes.
				again, err := packet.Encode(got, v)
				if err != nil || !bytes.Equal(again, b) {
					t.Fatalf("re-encode differs: %v\n% x\n% x", err, again, b)
				}
			})
		}
	}
}

// TestRoundTripValid: the sample packets are valid, so Validate accepts each from its sender.
func TestRoundTripValid(t *testing.T) {
	for _, v := range []packet.Version{packet.V31, packet.V311, packet.V5} {
		for _, p := range samplePackets(v) {
			from := packet.Client
			switch p.Type() {
			case packet.TypeConnack, packet.TypeSuback, packet.TypeUnsuback, packet.TypePingresp:
				from = packet.Server
			case packet.TypePublish:
				from = packet.Server // the samples carry subscription identifiers
			case packet.TypeDisconnect:
				if d := p.(*packet.Disconnect); d.Code == packet.ServerShuttingDown {
					from = packet.Server
					d.Props.SessionExpiry = 0 // a server never sends it [MQTT-3.14.2-2]
				}
			}
			if c, ok := p.(*packet.Connect); ok && c.Props.AuthMethod == "" {
				c.Props.AuthData = nil
			}
			if err := packet.Validate(p, v, from); err != nil {
				t.Errorf("MQTT %s %s: %v", v, p.Type(), err)
			}
		}
	}
}

// TestShortForms checks that 5.0 acknowledgements, DISCONNECT and AUTH use the shortest encoding.
func TestShortForms(t *testing.T) {
	tests := []struct {
		p    packet.Packet
		want []byte
	}{
		{&packet.Puback{PacketID: 1}, []byte{0x40, 2, 0, 1}},
		{&packet.Puback{PacketID: 1, Code: 0x10}, []byte{0x40, 3, 0, 1, 0x10}},
		{&packet.Pubrel{PacketID: 1}, []byte{0x62, 2, 0, 1}},
		{&packet.Puback{PacketID: 1, Props: packet.Properties{Present: present(packet.PropReasonString)}},
			[]byte{0x40, 7, 0, 1, 0, 3, 0x1F, 0, 0}},
		{&packet.Disconnect{}, []byte{0xE0, 0}},
		{&packet.Disconnect{Code: 0x04}, []byte{0xE0, 1, 4}},
		{&packet.Auth{}, []byte{0xF0, 0}},
		{&packet.Auth{Code: 0x18}, []byte{0xF0, 2, 0x18, 0}},
	}
	for _, tc := range tests {
		got, err := packet.Encode(tc.p, packet.V5)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got % x (%v), want % x", tc.p.Type(), got, err, tc.want)
		}
	}
	// The long forms decode too: a PUBACK with code 0 and an empty property block.
	p, _, err := packet.Decode([]byte{0x40, 4, 0, 1, 0, 0}, packet.V5, 0)
	if err != nil || !reflect.DeepEqual(p, &packet.Puback{PacketID: 1}) {
		t.Errorf("long-form PUBACK: %#v, %v", p, err)
	}
	p, _, err = packet.Decode([]byte{0xE0, 2, 0, 0}, packet.V5, 0)
	if err != nil || !reflect.DeepEqual(p, &packet.Disconnect{}) {
		t.Errorf("long-form DISCONNECT: %#v, %v", p, err)
	}
}

// TestEncodeRefusesUnrepresentable: only what the wire cannot carry is refused.
func TestEncodeRefusesUnrepresentable(t *testing.T) {
	long := strings.Repeat("a", 65536)
	tests := []struct {
		name string
		p    packet.Packet
		v    packet.Version
	}{
		{"topic over 65535 bytes", &packet.Publish{Topic: long}, packet.V311},
		{"client id over 65535 bytes", &packet.Connect{ClientID: long}, packet.V311},
		{"will topic", &packet.Connect{Will: &packet.Will{Topic: long}}, packet.V311},
		{"password", &packet.Connect{Password: []byte(long)}, packet.V311},
		{"filter", &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: long}}}, packet.V311},
		{"unsubscribe filter", &packet.Unsubscribe{PacketID: 1, Filters: []string{long}}, packet.V311},
		{"reason string", &packet.Puback{PacketID: 1, Props: packet.Properties{ReasonString: long}}, packet.V5},
		{"user property", &packet.Disconnect{Props: packet.Properties{User: []packet.UserProperty{{Key: long}}}}, packet.V5},
		{"subscription id", &packet.Subscribe{Props: packet.Properties{SubscriptionIDs: []uint32{packet.MaxRemaining + 1}}}, packet.V5},
		{"remaining length over 268435455", &packet.Publish{Topic: "t", Payload: make([]byte, packet.MaxRemaining)}, packet.V311},
	}
	for _, tc := range tests {
		_, err := packet.Encode(tc.p, tc.v)
		var pe *packet.Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want *packet.Error", tc.name, err)
		}
	}
	// Semantic violations are encoded as given.
	for _, p := range []packet.Packet{
		&packet.Publish{QoS: 3, Topic: "a/+", PacketID: 0},
		&packet.Subscribe{},
		&packet.Connect{ReservedFlag: true, Version: 9},
	} {
		if _, err := packet.Encode(p, packet.V5); err != nil {
			t.Errorf("%s with semantic errors: %v", p.Type(), err)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
