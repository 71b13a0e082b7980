package packet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		v    packet.Version
		s    string
		rule string // "" when valid
	}{
		{v311, "acs/s1/gate/g1/state", ""},
		{v5, "/", ""},
		{v5, "a b/ü", ""},
		{v311, "", "MQTT-4.7.3-1"},
		{v311, "a/+", "MQTT-3.3.2-2"},
		{v5, "#", "MQTT-3.3.2-2"},
		{v311, "a\x00", "MQTT-1.5.3-2"},
		{v5, "a\x00", "MQTT-1.5.4-2"},
		{v311, "\xed\xbf\xbf", "MQTT-1.5.3-1"},
		{v5, "\xf4\x90\x80\x80", "MQTT-1.5.4-1"}, // above U+10FFFF
		{v5, "\xc0\x80", "MQTT-1.5.4-1"},         // overlong U+0000
		{v311, strings.Repeat("a", 65536), "MQTT-4.7.3-3"},
	}
	for _, tc := range tests {
		err := packet.ValidTopicName(tc.v, tc.s)
		assertRule(t, "name "+strings.ToValidUTF8(tc.s[:min(len(tc.s), 20)], "?"), err, tc.rule)
	}
}

func TestValidTopicFilter(t *testing.T) {
	tests := []struct {
		v    packet.Version
		s    string
		rule string
	}{
		{v311, "#", ""},
		{v311, "+/+/#", ""},
		{v5, "$share/g/#", ""},
		{v5, "$share/g/a/+/b", ""},
		{v311, "", "MQTT-4.7.3-1"},
		{v311, "a#", "MQTT-4.7.1-2"},
		{v5, "#/a", "MQTT-4.7.1-1"},
		{v311, "a/+b", "MQTT-4.7.1-3"},
		{v5, "a/b+", "MQTT-4.7.1-2"},
		{v5, "$share/", "MQTT-4.8.2-1"},
		{v5, "$share//a", "MQTT-4.8.2-1"},
		{v5, "$share/g", "MQTT-4.8.2-2"},
		{v5, "$share/g/", "MQTT-4.8.2-2"},
		{v5, "$share/#/a", "MQTT-4.8.2-2"},
		{v5, "$share/g/a#", "MQTT-4.7.1-1"},
		{v311, "$share/g", ""},
		{v311, "a\x00", "MQTT-1.5.3-2"},
	}
	for _, tc := range tests {
		err := packet.ValidTopicFilter(tc.v, tc.s)
		assertRule(t, "filter "+tc.s, err, tc.rule)
		if tc.rule != "" && err != nil && !strings.HasPrefix(tc.rule, "MQTT-1.5") && !errors.Is(err, packet.TopicFilterInvalid) {
			t.Errorf("filter %q: %v is not topic filter invalid", tc.s, err)
		}
	}
}

func TestValidUTF8String(t *testing.T) {
	assertRule(t, "plain", packet.ValidUTF8String(v5, "ok ✓"), "")
	assertRule(t, "BOM kept", packet.ValidUTF8String(v5, "\uFEFF"), "")
	assertRule(t, "surrogate", packet.ValidUTF8String(v5, "\xed\xa0\x80"), "MQTT-1.5.4-1")
	assertRule(t, "null", packet.ValidUTF8String(v311, "\x00"), "MQTT-1.5.3-2")
}

func assertRule(t *testing.T, what string, err error, rule string) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	var pe *packet.Error
	if !errors.As(err, &pe) || pe.Rule != rule {
		t.Errorf("%s: %v, want %s", what, err, rule)
	}
}
