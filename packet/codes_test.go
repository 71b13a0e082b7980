package packet_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestReasonCodeText(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{packet.MalformedPacket.Error(), "malformed packet (0x81)"},
		{packet.WildcardSubscriptionsNotSupported.String(), "wildcard subscriptions not supported"},
		{packet.ReasonCode(0x7F).String(), "reason code 0x7F"},
		{packet.Success.Text(packet.TypeDisconnect, v5), "normal disconnection"},
		{packet.Success.Text(packet.TypeSuback, v5), "granted QoS 0"},
		{packet.ConnRefusedBadUsernameOrPassword.Text(packet.TypeConnack, v311), "connection refused: bad user name or password"},
		{packet.SubackFailure.Text(packet.TypeSuback, v311), "failure"},
		{packet.V31.String() + " " + packet.V311.String() + " " + packet.V5.String(), "3.1 3.1.1 5.0"},
		{packet.TypeUnsubscribe.String(), "UNSUBSCRIBE"},
		{packet.Type(0).String(), "RESERVED"},
		{packet.PropTopicAlias.String(), "topic alias"},
		{packet.Side(1).String(), "server"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for c := 0; c < 256; c++ {
		r := packet.ReasonCode(c)
		if r.IsError() != (c >= 0x80) {
			t.Errorf("%#x IsError = %v", c, r.IsError())
		}
	}
}

func TestConnackCode(t *testing.T) {
	tests := []struct {
		in   packet.ReasonCode
		want packet.ReasonCode
		ok   bool
	}{
		{packet.Success, packet.ConnAccepted, true},
		{packet.UnsupportedProtocolVersion, packet.ConnRefusedProtocolVersion, true},
		{packet.ClientIdentifierNotValid, packet.ConnRefusedIdentifierRejected, true},
		{packet.ServerUnavailable, packet.ConnRefusedServerUnavailable, true},
		{packet.ServerBusy, packet.ConnRefusedServerUnavailable, true},
		{packet.BadUserNameOrPassword, packet.ConnRefusedBadUsernameOrPassword, true},
		{packet.NotAuthorized, packet.ConnRefusedNotAuthorized, true},
		{packet.Banned, packet.ConnRefusedNotAuthorized, true},
		{packet.MalformedPacket, packet.ConnRefusedServerUnavailable, false},
	}
	for _, tc := range tests {
		got, ok := packet.ConnackCodeOK(packet.V311, tc.in)
		if got != tc.want || ok != tc.ok || packet.ConnackCode(packet.V31, tc.in) != tc.want {
			t.Errorf("%v: got %#x %v, want %#x %v", tc.in, byte(got), ok, byte(tc.want), tc.ok)
		}
		if packet.ConnackCode(packet.V5, tc.in) != tc.in {
			t.Errorf("%v: 5.0 must keep the code", tc.in)
		}
		if tc.ok && tc.in != packet.ServerBusy && tc.in != packet.Banned && packet.ConnackReason(packet.V311, got) != tc.in {
			t.Errorf("%v: ConnackReason does not map back", tc.in)
		}
	}
}

func TestErrorValue(t *testing.T) {
	e := &packet.Error{Code: packet.TopicNameInvalid, Rule: "MQTT-3.3.2-2", Packet: packet.TypePublish,
		Field: "topic name", Offset: -1, Reason: "wildcard '+' in topic name"}
	want := "PUBLISH topic name: wildcard '+' in topic name (MQTT-3.3.2-2, topic name invalid 0x90)"
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
	e.Offset = 5
	if got := e.Error(); got != "PUBLISH topic name at byte 5: wildcard '+' in topic name (MQTT-3.3.2-2, topic name invalid 0x90)" {
		t.Errorf("with offset: %q", got)
	}
	wrapped := fmt.Errorf("read from client c1: %w", e)
	if !errors.Is(wrapped, packet.TopicNameInvalid) || errors.Is(wrapped, packet.MalformedPacket) {
		t.Error("errors.Is does not see the reason code through wrapping")
	}
	if !errors.Is(wrapped, &packet.Error{Code: packet.TopicNameInvalid, Rule: "MQTT-3.3.2-2"}) ||
		errors.Is(wrapped, &packet.Error{Code: packet.TopicNameInvalid, Rule: "MQTT-4.7.3-1"}) {
		t.Error("errors.Is does not compare code and rule")
	}
	var pe *packet.Error
	if !errors.As(wrapped, &pe) || pe.Rule != "MQTT-3.3.2-2" {
		t.Error("errors.As does not find the *Error")
	}
}

// TestOffsets: decoding errors point at the byte where the problem starts.
func TestOffsets(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		v    packet.Version
		off  int
	}{
		{"flags", []byte{0x41, 2, 0, 1}, v311, 0},
		{"topic alias 0 at its identifier", hx("30 08 00 01 61 03 23 00 00 78"), v5, 6},
		{"connect flags", connect(packet.Connect{ReservedFlag: true}, v311), v311, 9},
		{"trailing byte", []byte{0x40, 3, 0, 1, 9}, v311, 4},
	}
	for _, tc := range tests {
		_, _, err := packet.Decode(tc.b, tc.v, 0)
		var pe *packet.Error
		if !errors.As(err, &pe) || pe.Offset != tc.off {
			t.Errorf("%s: %v, want offset %d", tc.name, err, tc.off)
		}
	}
}
