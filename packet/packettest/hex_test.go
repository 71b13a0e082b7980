package packettest

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseHex(t *testing.T) {
	tests := []struct {
		name, text, title string
		want              []byte
		err               string
	}{
		{"bytes and comments", "# PINGREQ\n# second title line\nc0   # type 12\n00 # length 0\n", "PINGREQ\nsecond title line", []byte{0xC0, 0x00}, ""},
		{"upper and lower case", "Ab cD\n", "", []byte{0xAB, 0xCD}, ""},
		{"comment after bytes is not title", "01\n# not title\n02", "", []byte{1, 2}, ""},
		{"empty", "", "", nil, ""},
		{"three digits", "# t\nc0 000\n", "", nil, "line 2:4"},
		{"not hex", "zz\n", "", nil, "line 1:1"},
		{"single digit", "0\n", "", nil, "line 1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, title, err := ParseHex(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) || title != tc.title {
				t.Fatalf("got % x %q, want % x %q", got, title, tc.want, tc.title)
			}
		})
	}
}
