package broker_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// wait is how long a spec waits for one expected packet.
const wait = 3 * time.Second

// wire is a raw MQTT client built on the packet codec: it sends exactly the bytes a spec asks for
// and reads packets with a deadline, never sleeping.
type wire struct {
	nc net.Conn
	r  *packet.Reader
	v  packet.Version
	id string
}

func dialWire(b *brokertest.Broker, v packet.Version) *wire {
	GinkgoHelper()
	nc, err := net.DialTimeout("tcp", b.Addr(), wait)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = nc.Close() })
	r := packet.NewReader(bufio.NewReader(nc), 0)
	r.SetVersion(v)
	return &wire{nc: nc, r: r, v: v}
}

// connectWire dials and completes CONNECT/CONNACK with a clean start unless mod changes it.
func connectWire(b *brokertest.Broker, v packet.Version, id string, mod ...func(*packet.Connect)) *wire {
	GinkgoHelper()
	w := dialWire(b, v)
	ack := w.connect(id, mod...)
	Expect(ack.Code).To(Equal(packet.Success), "CONNACK code for %s", id)
	return w
}

func (w *wire) connect(id string, mod ...func(*packet.Connect)) *packet.Connack {
	GinkgoHelper()
	w.id = id
	c := &packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}
	for _, m := range mod {
		m(c)
	}
	w.send(c)
	return expectPacket[*packet.Connack](w)
}

func (w *wire) send(p packet.Packet) {
	GinkgoHelper()
	w.raw(packet.Build(p, w.v))
}

func (w *wire) raw(b []byte) {
	GinkgoHelper()
	Expect(w.nc.SetWriteDeadline(time.Now().Add(wait))).To(Succeed())
	_, err := w.nc.Write(b)
	Expect(err).NotTo(HaveOccurred())
}

// next reads the next packet within d.
func (w *wire) next(d time.Duration) (packet.Packet, error) {
	_ = w.nc.SetReadDeadline(time.Now().Add(d))
	return w.r.ReadPacket()
}

func expectPacket[T packet.Packet](w *wire) T {
	GinkgoHelper()
	p, err := w.next(wait)
	Expect(err).NotTo(HaveOccurred(), "%s: reading a %T", w.id, *new(T))
	t, ok := p.(T)
	Expect(ok).To(BeTrue(), "%s: expected %T, got %s %+v", w.id, *new(T), p.Type(), p)
	return t
}

// expectClosed reads until the broker closes the connection and returns the DISCONNECT it sent
// first, if any. Any other packet read meanwhile fails the spec unless allowOthers.
func (w *wire) expectClosed() *packet.Disconnect {
	GinkgoHelper()
	var disc *packet.Disconnect
	deadline := time.Now().Add(wait)
	for {
		p, err := w.next(time.Until(deadline))
		if err != nil {
			var ne net.Error
			Expect(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "%s: connection still open after %s", w.id, wait)
			Expect(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)).To(BeTrue(), "%s: unexpected read error %v", w.id, err)
			return disc
		}
		if d, ok := p.(*packet.Disconnect); ok {
			disc = d
			continue
		}
		Fail("expected the connection to close, got " + p.Type().String())
	}
}

// expectSilence checks that nothing arrives for d (the connection stays open and quiet).
func (w *wire) expectSilence(d time.Duration) {
	GinkgoHelper()
	p, err := w.next(d)
	if err == nil {
		Fail("expected nothing, got " + p.Type().String())
	}
	var ne net.Error
	Expect(errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "expected a timeout, got %v", err)
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

func (w *wire) subscribe(pid uint16, filter string, qos packet.QoS) *packet.Suback {
	GinkgoHelper()
	w.send(&packet.Subscribe{PacketID: pid, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	ack := expectPacket[*packet.Suback](w)
	Expect(ack.PacketID).To(Equal(pid))
	return ack
}

// publish sends a PUBLISH and completes its acknowledgement flow as the sender.
func (w *wire) publish(topic string, qos packet.QoS, retain bool, payload string, pid uint16) {
	GinkgoHelper()
	w.send(&packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload), PacketID: pid})
	switch qos {
	case 1:
		Expect(expectPacket[*packet.Puback](w).PacketID).To(Equal(pid))
	case 2:
		Expect(expectPacket[*packet.Pubrec](w).PacketID).To(Equal(pid))
		w.send(&packet.Pubrel{PacketID: pid})
		Expect(expectPacket[*packet.Pubcomp](w).PacketID).To(Equal(pid))
	}
}

// receive reads one PUBLISH and acknowledges it as a well-behaved receiver.
func (w *wire) receive() *packet.Publish {
	GinkgoHelper()
	p := expectPacket[*packet.Publish](w)
	w.ack(p)
	return p
}

func (w *wire) ack(p *packet.Publish) {
	GinkgoHelper()
	switch p.QoS {
	case 1:
		w.send(&packet.Puback{PacketID: p.PacketID})
	case 2:
		w.send(&packet.Pubrec{PacketID: p.PacketID})
		Expect(expectPacket[*packet.Pubrel](w).PacketID).To(Equal(p.PacketID))
		w.send(&packet.Pubcomp{PacketID: p.PacketID})
	}
}

// ping checks that the connection is alive and that everything before it has been processed.
func (w *wire) ping() {
	GinkgoHelper()
	w.send(&packet.Pingreq{})
	expectPacket[*packet.Pingresp](w)
}

func (w *wire) close() { _ = w.nc.Close() }
