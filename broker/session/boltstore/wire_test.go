package boltstore_test

import (
	"bufio"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// wait bounds every wait for one expected event.
const wait = 5 * time.Second

// wire is a raw MQTT client on the packet codec, so that a spec decides exactly which
// acknowledgements are sent (and which are not) before a broker stops or is killed.
type wire struct {
	nc net.Conn
	r  *packet.Reader
	v  packet.Version
}

func dial(addr string, v packet.Version) *wire {
	GinkgoHelper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = nc.Close() })
	r := packet.NewReader(bufio.NewReader(nc), 0)
	r.SetVersion(v)
	return &wire{nc: nc, r: r, v: v}
}

// persistent makes a CONNECT ask for a session that outlives the connection.
func persistent(c *packet.Connect) {
	c.CleanStart = false
	if c.Version == packet.V5 {
		c.Props.SessionExpiry = 3600
	}
}

// connectTo dials and connects; it returns the client and whether the broker had a session.
func connectTo(addr string, v packet.Version, id string, mods ...func(*packet.Connect)) (*wire, bool) {
	GinkgoHelper()
	w := dial(addr, v)
	c := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60, Version: v}
	for _, m := range mods {
		m(c)
	}
	w.send(c)
	ack := expectPacket[*packet.Connack](w)
	Expect(ack.Code).To(Equal(packet.Success), "CONNACK of %s", id)
	return w, ack.SessionPresent
}

func (w *wire) send(p packet.Packet) {
	GinkgoHelper()
	Expect(w.nc.SetWriteDeadline(time.Now().Add(wait))).To(Succeed())
	_, err := w.nc.Write(packet.Build(p, w.v))
	Expect(err).NotTo(HaveOccurred())
}

func (w *wire) next() packet.Packet {
	GinkgoHelper()
	Expect(w.nc.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
	p, err := w.r.ReadPacket()
	Expect(err).NotTo(HaveOccurred(), "waiting %s for a packet", wait)
	return p
}

func expectPacket[T packet.Packet](w *wire) T {
	GinkgoHelper()
	p := w.next()
	t, ok := p.(T)
	Expect(ok).To(BeTrue(), "got %s %+v", p.Type(), p)
	return t
}

func (w *wire) subscribe(pid uint16, filter string, qos packet.QoS) {
	GinkgoHelper()
	w.send(&packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	ack := expectPacket[*packet.Suback](w)
	Expect(ack.Codes).To(Equal([]packet.ReasonCode{packet.ReasonCode(qos)}))
}

// publish sends a PUBLISH and waits for its first acknowledgement: PUBACK for QoS 1, PUBREC for
// QoS 2 (the PUBREL is the caller's, so that a spec can leave a QoS 2 flow half done).
func (w *wire) publish(topic string, qos packet.QoS, retain bool, payload string, pid uint16) {
	GinkgoHelper()
	w.send(&packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload), PacketID: pid})
	switch qos {
	case 1:
		Expect(expectPacket[*packet.Puback](w).PacketID).To(Equal(pid))
	case 2:
		Expect(expectPacket[*packet.Pubrec](w).PacketID).To(Equal(pid))
	}
}

// answer completes the subscriber's side of a flow for p: PUBACK for a QoS 1 PUBLISH, PUBREC for a
// QoS 2 PUBLISH, PUBCOMP for a PUBREL. It reports whether p was a PUBLISH.
func (w *wire) answer(p packet.Packet) (*packet.Publish, bool) {
	GinkgoHelper()
	switch p := p.(type) {
	case *packet.Publish:
		switch p.QoS {
		case 1:
			w.send(&packet.Puback{PacketID: p.PacketID})
		case 2:
			w.send(&packet.Pubrec{PacketID: p.PacketID})
		}
		return p, true
	case *packet.Pubrel:
		w.send(&packet.Pubcomp{PacketID: p.PacketID})
	}
	return nil, false
}

// receive answers every flow and returns the PUBLISH packets read until done says enough, then
// until a PINGREQ/PINGRESP barrier, so that nothing the broker had queued by then is missed.
// When no packet comes in time, the failure says what explain returns (what is still missing).
func (w *wire) receive(done func(got []*packet.Publish) bool, explain ...func() string) []*packet.Publish {
	GinkgoHelper()
	var got []*packet.Publish
	for !done(got) {
		Expect(w.nc.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
		p, err := w.r.ReadPacket()
		if err != nil {
			why := ""
			for _, e := range explain {
				why += e()
			}
			Fail(fmt.Sprintf("after %d PUBLISH packets, no packet for %s (%v) %s", len(got), wait, err, why))
		}
		if p, ok := w.answer(p); ok {
			got = append(got, p)
		}
	}
	w.send(&packet.Pingreq{})
	for {
		p := w.next()
		if _, ok := p.(*packet.Pingresp); ok {
			return got
		}
		if p, ok := w.answer(p); ok {
			got = append(got, p)
		}
	}
}

// ping is the barrier alone: the PUBLISH packets the broker had queued for this client.
func (w *wire) ping() []*packet.Publish {
	GinkgoHelper()
	return w.receive(func([]*packet.Publish) bool { return true })
}
