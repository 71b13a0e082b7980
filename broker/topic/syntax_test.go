package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateFilter(t *testing.T) {
	cases := []struct {
		filter    string
		statement string // "" = valid
	}{
		{"sport/tennis/#", ""},
		{"#", ""},
		{"+", ""},
		{"+/tennis/#", ""},
		{"sport/+/player1", ""},
		{"/", ""},
		{"a//b", ""},
		{"$SYS/#", ""},
		{"$share/g/a/#", ""},
		{"$share/g//", ""},
		{"", "MQTT-4.7.3-1"},
		{"sport/tennis#", "MQTT-4.7.1-2"},
		{"sport/tennis/#/ranking", "MQTT-4.7.1-2"},
		{"##", "MQTT-4.7.1-2"},
		{"sport+", "MQTT-4.7.1-3"},
		{"sport/+x/a", "MQTT-4.7.1-3"},
		{"a\x00b", "MQTT-4.7.3-2"},
		{"a/\xff", "MQTT-1.5.3-1"},
		{strings.Repeat("a", 65536), "MQTT-4.7.3-3"},
		{"$share//a", "MQTT-4.8.2-1"},
		{"$share/g", "MQTT-4.8.2-2"},
		{"$share/g/", "MQTT-4.8.2-2"},
		{"$share/g+/a", "MQTT-4.8.2-2"},
		{"$share/g/a/#/b", "MQTT-4.7.1-2"},
	}
	for _, c := range cases {
		err := ValidateFilter(c.filter)
		checkStatement(t, "filter", c.filter, err, c.statement)
	}
}

func TestValidateTopic(t *testing.T) {
	cases := []struct {
		topic     string
		statement string
	}{
		{"acs/site-1/gate/gate-01/status", ""},
		{"/", ""},
		{"$SYS/broker", ""},
		{"", "MQTT-4.7.3-1"},
		{"a/+", "MQTT-3.3.2-2"},
		{"a/#", "MQTT-3.3.2-2"},
		{"a\x00", "MQTT-4.7.3-2"},
	}
	for _, c := range cases {
		checkStatement(t, "topic", c.topic, ValidateTopic(c.topic), c.statement)
	}
}

func checkStatement(t *testing.T, what, text string, err error, statement string) {
	t.Helper()
	short := text
	if len(short) > 40 {
		short = short[:40] + "..."
	}
	if statement == "" {
		if err != nil {
			t.Errorf("%s %q: unexpected error %v", what, short, err)
		}
		return
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("%s %q: error %v, want a *SyntaxError citing %s", what, short, err, statement)
		return
	}
	if se.Statement != statement || !strings.Contains(err.Error(), statement) {
		t.Errorf("%s %q: error %q cites %s, want %s", what, short, err, se.Statement, statement)
	}
}

func TestSplitShared(t *testing.T) {
	g, f, err := SplitShared("$share/consumers/acs/+/evt/#")
	if err != nil || g != "consumers" || f != "acs/+/evt/#" {
		t.Fatalf("SplitShared = %q, %q, %v", g, f, err)
	}
	g, f, err = SplitShared("acs/#")
	if err != nil || g != "" || f != "acs/#" {
		t.Fatalf("SplitShared of an ordinary filter = %q, %q, %v", g, f, err)
	}
}
