package broker

import (
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// A client that fills the broker's first read buffer exactly with QoS 1 PUBLISH packets and then
// waits for their PUBACKs must get them: the read goroutine writes its answers before it waits
// for more data, never after.
func TestAnswersGoOutBeforeTheReaderWaits(t *testing.T) {
	b := startParkBroker(t)
	c := dialPark(t, b.Addr("").String(), "window", 0)
	var burst []byte
	for i := range 4 {
		p := &packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: "t/a", Payload: make([]byte, 23)}
		enc, err := packet.Encode(p, packet.V311)
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, enc...)
	}
	if len(burst) != smallRead {
		t.Fatalf("burst of %d bytes, want exactly the %d-byte first read buffer", len(burst), smallRead)
	}
	if _, err := c.nc.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		ack := c.expect(t, packet.TypePuback).(*packet.Puback)
		if ack.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK %d for packet %d", i, ack.PacketID)
		}
	}
}
