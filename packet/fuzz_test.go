package packet_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// seedDecode adds the golden vectors and every malformed case as seeds.
func seedDecode(f *testing.F, v packet.Version) {
	for _, g := range loadGolden(f) {
		f.Add(g.b)
	}
	for _, c := range badCases {
		if c.v == v {
			f.Add(c.b)
		}
	}
	for _, p := range samplePackets(v) {
		if p.Size(v) < 4096 {
			f.Add(packet.Build(p, v))
		}
	}
}

// checkDecode asserts the decoder's invariants on arbitrary input: no panic, never more bytes
// consumed than given, only the documented error kinds, and for accepted input a stable round
// trip: decode → encode → decode gives the same packet and encoding is idempotent.
func checkDecode(t *testing.T, b []byte, v packet.Version) {
	p, n, err := packet.Decode(b, v, 0)
	if n < 0 || n > len(b) {
		t.Fatalf("consumed %d of %d bytes", n, len(b))
	}
	if err != nil {
		var pe *packet.Error
		switch {
		case errors.Is(err, packet.ErrIncomplete):
			if n != 0 || p != nil {
				t.Fatalf("incomplete input returned %v, %d", p, n)
			}
		case errors.As(err, &pe):
			if pe.Rule == "" || pe.Reason == "" || pe.Offset > len(b) || pe.Code < 0x80 {
				t.Fatalf("error without rule, reason or a sane offset: %#v", pe)
			}
		default:
			t.Fatalf("unexpected error kind %T: %v", err, err)
		}
		return
	}
	if n == 0 {
		t.Fatal("accepted a packet of 0 bytes")
	}
	ver := v
	if c, ok := p.(*packet.Connect); ok {
		ver = c.Version
	}
	_ = packet.Validate(p, ver, packet.Client)
	_ = packet.Validate(p, ver, packet.Server)
	enc, err := packet.Encode(p, ver)
	if err != nil {
		t.Fatalf("a decoded %s does not encode: %v", p.Type(), err)
	}
	if len(enc) != p.Size(ver) {
		t.Fatalf("Size %d, encoded %d", p.Size(ver), len(enc))
	}
	// Encoding is never longer than what was read, except for an AUTH with a reason code and no
	// property length (remaining length 1), which the decoder accepts (§3.15.2.2.1) and the
	// encoder writes with an explicit empty property block.
	if len(enc) > n && !(p.Type() == packet.TypeAuth && n == 3) {
		t.Fatalf("re-encoding grew the packet from %d to %d bytes", n, len(enc))
	}
	q, m, err := packet.Decode(enc, ver, 0)
	if err != nil || m != len(enc) {
		t.Fatalf("re-encoded %s does not decode: %v\n% x", p.Type(), err, enc)
	}
	if !reflect.DeepEqual(normalize(p), normalize(q)) {
		t.Fatalf("decode → encode → decode changed the packet\n%#v\n%#v", p, q)
	}
	enc2, _ := packet.Encode(q, ver)
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding is not stable\n% x\n% x", enc, enc2)
	}
}

// normalize drops differences that do not survive encoding on purpose: empty and nil slices.
func normalize(p packet.Packet) packet.Packet {
	switch q := p.(type) {
	case *packet.Suback:
		if len(q.Codes) == 0 {
			q.Codes = nil
		}
	case *packet.Unsuback:
		if len(q.Codes) == 0 {
			q.Codes = nil
		}
	}
	return p
}

func FuzzDecode31(f *testing.F) {
	seedDecode(f, packet.V31)
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b, packet.V31) })
}

func FuzzDecode311(f *testing.F) {
	seedDecode(f, packet.V311)
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b, packet.V311) })
}

func FuzzDecode5(f *testing.F) {
	seedDecode(f, packet.V5)
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b, packet.V5) })
}

// FuzzReader feeds a stream to the Reader: it must stop with io.EOF, io.ErrUnexpectedEOF or an
// *Error, after at most one packet per two bytes, and agree with Decode on every packet.
func FuzzReader(f *testing.F) {
	var all []byte
	for _, g := range loadGolden(f) {
		if g.v == packet.V5 {
			all = append(all, g.b...)
		}
	}
	f.Add(all, byte(0))
	f.Add(all, byte(5))
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, byte(4))
	f.Fuzz(func(t *testing.T, stream []byte, level byte) {
		r := packet.NewReader(bufio.NewReader(bytes.NewReader(stream)), 1<<16)
		if level != 0 {
			r.SetVersion(packet.Version(level % 6))
		}
		rest := stream
		for i := 0; i <= len(stream)/2; i++ {
			v := r.Version()
			p, err := r.ReadPacket()
			var pe *packet.Error
			switch {
			case err == nil:
				d, n, derr := packet.Decode(rest, v, 1<<16)
				if derr != nil || !reflect.DeepEqual(d, p) {
					t.Fatalf("Reader and Decode disagree: %v / %v", derr, err)
				}
				rest = rest[n:]
				continue
			case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &pe):
				return
			default:
				t.Fatalf("unexpected error %T %v", err, err)
			}
		}
		t.Fatalf("more packets than the stream can hold")
	})
}

// FuzzTopic checks the topic rules against each other: a valid topic name has no wildcard and is
// also a valid filter (outside 5.0 shared subscriptions); a filter that passes has wildcards only
// as whole levels.
func FuzzTopic(f *testing.F) {
	for _, s := range []string{"a/b", "#", "+/+", "a/#", "$share/g/a", "a\x00", "\xff", "a+/b", "", "/", "$SYS/x"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, five bool) {
		v := packet.V311
		if five {
			v = packet.V5
		}
		nameErr := packet.ValidTopicName(v, s)
		filterErr := packet.ValidTopicFilter(v, s)
		if nameErr == nil {
			if strings.ContainsAny(s, "+#") {
				t.Fatalf("topic name %q with a wildcard accepted", s)
			}
			if filterErr != nil && !(five && strings.HasPrefix(s, "$share/")) {
				t.Fatalf("valid name %q is not a valid filter: %v", s, filterErr)
			}
		}
		if filterErr == nil {
			f := s
			if five && strings.HasPrefix(s, "$share/") {
				_, f, _ = strings.Cut(s[len("$share/"):], "/")
			}
			for i, level := range strings.Split(f, "/") {
				if strings.ContainsAny(level, "+#") && level != "+" && level != "#" {
					t.Fatalf("filter %q accepted with level %d %q", s, i, level)
				}
			}
			if i := strings.IndexByte(f, '#'); i >= 0 && i != len(f)-1 {
				t.Fatalf("filter %q accepted with '#' before the end", s)
			}
		}
	})
}
