package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateFilter(t *testing.T) {
	cases := []struct {
		filter   string
		v311, v5 string // "" "" = valid
	}{
		{"sport/tennis/#", "", ""},
		{"#", "", ""},
		{"+", "", ""},
		{"+/tennis/#", "", ""},
		{"sport/+/player1", "", ""},
		{"/", "", ""},
		{"a//b", "", ""},
		{"$SYS/#", "", ""},
		{"$share/g/a/#", "", ""},
		{"$share/g//", "", ""},
		{"", "MQTT-4.7.3-1", "MQTT-4.7.3-1"},
		{"sport/tennis#", "MQTT-4.7.1-2", "MQTT-4.7.1-1"},
		{"sport/tennis/#/ranking", "MQTT-4.7.1-2", "MQTT-4.7.1-1"},
		{"##", "MQTT-4.7.1-2", "MQTT-4.7.1-1"},
		{"sport+", "MQTT-4.7.1-3", "MQTT-4.7.1-2"},
		{"sport/+x/a", "MQTT-4.7.1-3", "MQTT-4.7.1-2"},
		{"a\x00b", "MQTT-4.7.3-2", "MQTT-4.7.3-2"},
		{"a/\xff", "MQTT-1.5.3-1", "MQTT-1.5.4-1"},
		{strings.Repeat("a", 65536), "MQTT-4.7.3-3", "MQTT-4.7.3-3"},
		{"$share//a", "", "MQTT-4.8.2-1"},
		{"$share/g", "", "MQTT-4.8.2-2"},
		{"$share/g/", "", "MQTT-4.8.2-2"},
		{"$share/g+/a", "", "MQTT-4.8.2-2"},
		{"$share/g/a/#/b", "MQTT-4.7.1-2", "MQTT-4.7.1-1"},
	}
	for _, c := range cases {
		checkStatement(t, "filter", c.filter, ValidateFilter(c.filter), c.v311, c.v5)
	}
}

func TestValidateTopic(t *testing.T) {
	cases := []struct {
		topic    string
		v311, v5 string
	}{
		{"acs/site-1/gate/gate-01/status", "", ""},
		{"/", "", ""},
		{"$SYS/broker", "", ""},
		{"", "MQTT-4.7.3-1", "MQTT-4.7.3-1"},
		{"a/+", "MQTT-3.3.2-2", "MQTT-3.3.2-2"},
		{"a/#", "MQTT-3.3.2-2", "MQTT-3.3.2-2"},
		{"a\x00", "MQTT-4.7.3-2", "MQTT-4.7.3-2"},
	}
	for _, c := range cases {
		checkStatement(t, "topic", c.topic, ValidateTopic(c.topic), c.v311, c.v5)
	}
}

func checkStatement(t *testing.T, what, text string, err error, v311, v5 string) {
	t.Helper()
	short := text
	if len(short) > 40 {
		short = short[:40] + "..."
	}
	if v311 == "" && v5 == "" {
		if err != nil {
			t.Errorf("%s %q: unexpected error %v", what, short, err)
		}
		return
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("%s %q: error %v, want a *SyntaxError citing %s / %s", what, short, err, v311, v5)
		return
	}
	if se.V311 != v311 || se.V5 != v5 || !strings.Contains(err.Error(), v5) || !strings.Contains(err.Error(), v311) {
		t.Errorf("%s %q: error %q cites %q (3.1.1) and %q (5.0), want %q and %q", what, short, err, se.V311, se.V5, v311, v5)
	}
	if want := v5; se.Statement(true) != want {
		t.Errorf("%s %q: Statement(5.0) = %q, want %q", what, short, se.Statement(true), want)
	}
	want := v311
	if want == "" {
		want = v5
	}
	if se.Statement(false) != want {
		t.Errorf("%s %q: Statement(3.1.1) = %q, want %q", what, short, se.Statement(false), want)
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
