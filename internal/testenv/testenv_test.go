package testenv

import (
	"io"
	"net"
	"testing"
)

func TestStartMosquittoAcceptsConnections(t *testing.T) {
	m := StartMosquitto(t)
	c, err := net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatalf("dial mosquitto at %s: %v", m.Addr, err)
	}
	// CONNECT (3.1.1, clean session, keepalive 10, client id "t") and expect CONNACK accepted.
	connect := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 't'}
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read CONNACK: %v (mosquitto log: %s)", err, m.Log())
	}
	if buf[0] != 0x20 || buf[3] != 0 {
		t.Fatalf("CONNACK = % x, want 20 02 00 00", buf)
	}
	c.Close()
}

func TestLookToolFindsSbin(t *testing.T) {
	if _, err := LookTool("definitely-not-a-tool-xyz"); err == nil {
		t.Fatal("LookTool found a tool that does not exist")
	}
}
