// Package packettest helps tests that work with MQTT bytes: it reads the byte-annotated hex
// vectors kept in packet/testdata/golden, so that the codec, the broker and the conformance suite
// share one catalogue of wire examples.
//
// A vector is a text file: '#' starts a comment that runs to the end of the line, the first
// comment lines are the vector's title, and every other token is one byte as two hex digits.
package packettest

import (
	"fmt"
	"os"
	"strings"
)

// ParseHex returns the bytes of an annotated hex text and its title (the leading comment lines,
// joined with newlines). A token that is not two hex digits is an error naming line:column.
func ParseHex(text string) ([]byte, string, error) {
	var (
		out    []byte
		title  []string
		inHead = true
	)
	for ln, line := range strings.Split(text, "\n") {
		code, comment, hasComment := strings.Cut(line, "#")
		if inHead && strings.TrimSpace(code) == "" && hasComment {
			title = append(title, strings.TrimSpace(comment))
			continue
		}
		if strings.TrimSpace(code) != "" {
			inHead = false
		}
		col := 0
		for _, tok := range strings.Fields(code) {
			col = strings.Index(line[col:], tok) + col
			b, ok := hexByte(tok)
			if !ok {
				return nil, "", fmt.Errorf("line %d:%d: %q is not a byte as two hex digits", ln+1, col+1, tok)
			}
			out = append(out, b)
			col += len(tok)
		}
	}
	return out, strings.Join(title, "\n"), nil
}

// ReadHexFile reads and parses one annotated hex vector; errors name the file.
func ReadHexFile(path string) ([]byte, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read vector: %w", err)
	}
	b, title, err := ParseHex(string(data))
	if err != nil {
		return nil, "", fmt.Errorf("%s:%w", path, err)
	}
	return b, title, nil
}

func hexByte(tok string) (byte, bool) {
	if len(tok) != 2 {
		return 0, false
	}
	var b byte
	for i := 0; i < 2; i++ {
		c := tok[i]
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}
