package broker_test

import (
	"context"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// start starts a broker for one spec. GATEHOUSE_TEST_BROKER_FAULT=NAME[@CLIENTID] turns a fault
// mode on in every broker of the suite, to see which specs catch it:
//
//	GATEHOUSE_TEST_BROKER_FAULT=no-dup go test ./broker/ -ginkgo.label-filter='!fault'
func start(opts ...brokertest.Option) *brokertest.Broker {
	GinkgoHelper()
	if f := os.Getenv("GATEHOUSE_TEST_BROKER_FAULT"); f != "" {
		opts = append(opts, brokertest.WithFault(f))
	}
	return brokertest.Start(GinkgoT(), opts...)
}

func withConfig(f func(*broker.Config)) brokertest.Option { return brokertest.WithConfig(f) }

var versions = []packet.Version{packet.V31, packet.V311, packet.V5}

var _ = Describe("CONNECT", func() {
	for _, v := range versions {
		It("accepts a clean connection and answers CONNACK 0 in MQTT "+v.String(), Label("MQTT-3.2.0-1"), func() {
			b := start()
			w := dialWire(b, v)
			ack := w.connect("c-" + v.String())
			Expect(ack.Code).To(Equal(packet.Success))
			Expect(ack.SessionPresent).To(BeFalse())
			w.ping()
		})
	}

	It("refuses a 3.1 client identifier longer than 23 characters with 0x02", Label("MQTT 3.1 §3.1"), func() {
		b := start()
		w := dialWire(b, packet.V31)
		Expect(w.connect("abcdefghijklmnopqrstuvwx").Code).To(Equal(packet.ConnRefusedIdentifierRejected))
		w.expectClosed()
	})

	It("assigns a client identifier to an empty one in 5.0", Label("MQTT-3.1.3-6", "MQTT-3.2.2-16"), func() {
		b := start()
		w := dialWire(b, packet.V5)
		ack := w.connect("")
		Expect(ack.Code).To(Equal(packet.Success))
		Expect(ack.Props.AssignedClientID).NotTo(BeEmpty())
	})

	It("accepts an empty client identifier with CleanSession 1 in 3.1.1", Label("MQTT-3.1.3-6"), func() {
		b := start()
		w := dialWire(b, packet.V311)
		Expect(w.connect("").Code).To(Equal(packet.Success))
	})

	It("refuses an empty client identifier with CleanSession 0 in 3.1.1 (0x02)", Label("MQTT-3.1.3-8"), func() {
		b := start()
		w := dialWire(b, packet.V311)
		ack := w.connect("", func(c *packet.Connect) { c.CleanStart = false })
		Expect(ack.Code).To(Equal(packet.ConnRefusedIdentifierRejected))
		w.expectClosed()
	})

	It("answers an unknown protocol level with CONNACK 0x01 and closes", Label("MQTT-3.1.2-2"), func() {
		b := start()
		w := dialWire(b, packet.V311)
		w.raw(packet.Build(&packet.Connect{ClientID: "x", CleanStart: true, Version: 7}, packet.V311))
		ack := expectPacket[*packet.Connack](w)
		Expect(ack.Code).To(Equal(packet.ConnRefusedProtocolVersion))
		w.expectClosed()
	})

	It("closes a connection that sends nothing within the CONNECT timeout", func() {
		b := start(withConfig(func(c *broker.Config) { c.ConnectTimeout = 200 * time.Millisecond }))
		w := dialWire(b, packet.V311)
		w.expectClosed()
	})

	It("closes a connection whose first packet is not CONNECT", Label("MQTT-3.1.0-1"), func() {
		b := start()
		w := dialWire(b, packet.V311)
		w.send(&packet.Pingreq{})
		w.expectClosed()
	})

	It("announces its limits in the 5.0 CONNACK", Label("MQTT-3.2.2-21"), func() {
		b := start(withConfig(func(c *broker.Config) {
			c.MaxInflight = 7
			c.MaxPacketSize = 4096
			c.TopicAliasMaximum = 5
			c.MaxKeepAlive = 30
		}))
		w := dialWire(b, packet.V5)
		ack := w.connect("limits", func(c *packet.Connect) { c.KeepAlive = 0 })
		Expect(ack.Props.ReceiveMaximum).To(BeEquivalentTo(7))
		Expect(ack.Props.MaximumPacketSize).To(BeEquivalentTo(4096))
		Expect(ack.Props.TopicAliasMaximum).To(BeEquivalentTo(5))
		Expect(ack.Props.Present.Has(packet.PropServerKeepAlive)).To(BeTrue())
		Expect(ack.Props.ServerKeepAlive).To(BeEquivalentTo(30))
	})
})

var _ = Describe("QoS", func() {
	for _, v := range versions {
		for pubQoS := packet.QoS(0); pubQoS <= 2; pubQoS++ {
			for subQoS := packet.QoS(0); subQoS <= 2; subQoS++ {
				It("delivers a QoS "+string('0'+byte(pubQoS))+" message to a QoS "+string('0'+byte(subQoS))+" subscription at the lower QoS in MQTT "+v.String(), Label("MQTT-3.8.4-6", "MQTT-4.3.1-1", "MQTT-4.3.2-1", "MQTT-4.3.3-1"), func() {
					b := start()
					sub := connectWire(b, v, "sub")
					sub.subscribe(1, "acs/+/gate/#", subQoS)
					pub := connectWire(b, v, "pub")
					pub.publish("acs/s1/gate/g1/evt/card", pubQoS, false, "card-42", 9)
					got := sub.receive()
					Expect(got.Topic).To(Equal("acs/s1/gate/g1/evt/card"))
					Expect(string(got.Payload)).To(Equal("card-42"))
					Expect(got.QoS).To(Equal(min(pubQoS, subQoS)))
					Expect(got.Retain).To(BeFalse())
					Expect(got.Dup).To(BeFalse())
					if got.QoS > 0 {
						Expect(got.PacketID).NotTo(BeZero())
					}
					sub.ping()
				})
			}
		}
	}

	It("keeps per-publisher order on one topic", Label("MQTT-4.6.0-5"), func() {
		b := start()
		sub := connectWire(b, packet.V311, "sub")
		sub.subscribe(1, "order", 1)
		pub := connectWire(b, packet.V311, "pub")
		for i := range 50 {
			pub.send(&packet.Publish{Topic: "order", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
		}
		for i := range 50 {
			p := sub.receive()
			Expect(p.Payload).To(Equal([]byte{byte(i)}), "message %d out of order", i)
		}
	})

	It("never has more QoS 1 messages in flight to a 5.0 client than its Receive Maximum", Label("MQTT-3.3.4-9"), func() {
		b := start()
		sub := connectWire(b, packet.V5, "sub", func(c *packet.Connect) { c.Props.ReceiveMaximum = 2 })
		sub.subscribe(1, "rm", 1)
		pub := connectWire(b, packet.V5, "pub")
		for i := range 5 {
			pub.publish("rm", 1, false, string(rune('a'+i)), uint16(i+1))
		}
		first := expectPacket[*packet.Publish](sub)
		second := expectPacket[*packet.Publish](sub)
		sub.expectSilence(300 * time.Millisecond)
		sub.send(&packet.Puback{PacketID: first.PacketID})
		third := expectPacket[*packet.Publish](sub)
		Expect(string(third.Payload)).To(Equal("c"))
		sub.expectSilence(200 * time.Millisecond)
		sub.send(&packet.Puback{PacketID: second.PacketID})
		sub.send(&packet.Puback{PacketID: third.PacketID})
		Expect(string(sub.receive().Payload)).To(Equal("d"))
		Expect(string(sub.receive().Payload)).To(Equal("e"))
	})

	It("answers a duplicate QoS 2 PUBLISH with PUBREC without forwarding it twice", Label("MQTT-4.3.3-2"), func() {
		b := start()
		sub := connectWire(b, packet.V311, "sub")
		sub.subscribe(1, "q2", 2)
		pub := connectWire(b, packet.V311, "pub")
		pub.send(&packet.Publish{Topic: "q2", QoS: 2, PacketID: 5, Payload: []byte("once")})
		Expect(expectPacket[*packet.Pubrec](pub).PacketID).To(BeEquivalentTo(5))
		pub.send(&packet.Publish{Topic: "q2", QoS: 2, PacketID: 5, Dup: true, Payload: []byte("once")})
		Expect(expectPacket[*packet.Pubrec](pub).PacketID).To(BeEquivalentTo(5))
		pub.send(&packet.Pubrel{PacketID: 5})
		expectPacket[*packet.Pubcomp](pub)
		Expect(string(sub.receive().Payload)).To(Equal("once"))
		sub.expectSilence(200 * time.Millisecond)
	})
})

var _ = Describe("Retained messages", func() {
	for _, v := range versions {
		It("stores, replaces and deletes with an empty payload in MQTT "+v.String(), Label("MQTT-3.3.1-5", "MQTT-3.3.1-10", "MQTT-3.3.1-11", "MQTT-3.3.1-6"), func() {
			b := start()
			pub := connectWire(b, v, "pub")
			pub.publish("acs/s/gate/g1/status", 1, true, "v1", 1)
			pub.publish("acs/s/gate/g1/status", 1, true, "v2", 2)

			s1 := connectWire(b, v, "s1")
			s1.subscribe(1, "acs/+/gate/+/status", 1)
			got := s1.receive()
			Expect(got.Retain).To(BeTrue())
			Expect(string(got.Payload)).To(Equal("v2"))
			s1.expectSilence(100 * time.Millisecond)

			// A live subscriber receives a retained publish with RETAIN 0 (MQTT-3.3.1-9 in 3.1.1).
			pub.publish("acs/s/gate/g1/status", 0, true, "", 0)
			del := s1.receive()
			Expect(del.Payload).To(BeEmpty())
			Expect(del.Retain).To(BeFalse())

			s2 := connectWire(b, v, "s2")
			s2.subscribe(1, "acs/#", 1)
			s2.expectSilence(200 * time.Millisecond)
		})
	}

	It("does not match $-topics with a leading wildcard", Label("MQTT-4.7.2-1"), func() {
		b := start()
		pub := connectWire(b, packet.V311, "pub")
		pub.publish("$internal/x", 1, true, "hidden", 1)
		s := connectWire(b, packet.V311, "s")
		s.subscribe(1, "#", 1)
		s.subscribe(2, "+/x", 1)
		s.expectSilence(200 * time.Millisecond)
		s.subscribe(3, "$internal/+", 1)
		Expect(string(s.receive().Payload)).To(Equal("hidden"))
	})
})

var _ = Describe("Wills", func() {
	willConnect := func(topic string) func(*packet.Connect) {
		return func(c *packet.Connect) {
			c.Will = &packet.Will{Topic: topic, Payload: []byte(`{"online":false}`), QoS: 1}
		}
	}
	for _, v := range versions {
		It("publishes the will when the connection drops without DISCONNECT in MQTT "+v.String(), Label("MQTT-3.1.2-8"), func() {
			b := start()
			obs := connectWire(b, v, "obs")
			obs.subscribe(1, "acs/s/gate/+/status", 1)
			dev := connectWire(b, v, "g1", willConnect("acs/s/gate/g1/status"))
			dev.close()
			got := obs.receive()
			Expect(got.Topic).To(Equal("acs/s/gate/g1/status"))
			Expect(string(got.Payload)).To(Equal(`{"online":false}`))
		})

		It("never publishes the will after a normal DISCONNECT in MQTT "+v.String(), Label("MQTT-3.1.2-10"), func() {
			b := start()
			obs := connectWire(b, v, "obs")
			obs.subscribe(1, "acs/s/gate/+/status", 1)
			dev := connectWire(b, v, "g1", willConnect("acs/s/gate/g1/status"))
			dev.send(&packet.Disconnect{})
			dev.expectClosed()
			obs.expectSilence(300 * time.Millisecond)
		})
	}

	It("publishes the will on DISCONNECT 0x04 (with will message) in 5.0", Label("MQTT-3.1.2-8", "MQTT-3.1.2-10"), func() {
		b := start()
		obs := connectWire(b, packet.V5, "obs")
		obs.subscribe(1, "w/#", 1)
		dev := connectWire(b, packet.V5, "g1", willConnect("w/g1"))
		dev.send(&packet.Disconnect{Code: packet.DisconnectWithWill})
		dev.expectClosed()
		Expect(obs.receive().Topic).To(Equal("w/g1"))
	})

	It("delays the will by the Will Delay Interval and cancels it on reconnect", Label("MQTT-3.1.3-9"), func() {
		b := start()
		obs := connectWire(b, packet.V5, "obs")
		obs.subscribe(1, "w/#", 1)
		withDelay := func(c *packet.Connect) {
			willConnect("w/g1")(c)
			c.Will.Props.WillDelay = 1
			c.Props.SessionExpiry = 60
			c.CleanStart = false
		}
		dev := connectWire(b, packet.V5, "g1", withDelay)
		dev.close()
		// Reconnect at once: the will must not come.
		dev2 := connectWire(b, packet.V5, "g1", withDelay)
		obs.expectSilence(1500 * time.Millisecond)
		dev2.close()
		lost := time.Now()
		got := obs.receive()
		Expect(got.Topic).To(Equal("w/g1"))
		Expect(time.Since(lost)).To(BeNumerically(">=", 900*time.Millisecond), "will published before its delay")
	})

	It("forwards will properties and starts the will's message expiry when it is published", Label("MQTT-3.1.3-9", "MQTT-3.3.2-6"), func() {
		b := start()
		obs := connectWire(b, packet.V5, "obs")
		obs.subscribe(1, "w/#", 1)
		dev := connectWire(b, packet.V5, "g1", func(c *packet.Connect) {
			c.CleanStart = false
			c.Props.SessionExpiry = 60
			c.Will = &packet.Will{Topic: "w/g1", Payload: []byte(`{"online":false}`), QoS: 1, Props: packet.Properties{
				WillDelay: 1, MessageExpiry: 2, ContentType: "application/json",
				User: []packet.UserProperty{{Key: "fw", Value: "1.4.2"}},
			}}
		})
		dev.close()
		got := obs.receive()
		Expect(got.Props.ContentType).To(Equal("application/json"))
		Expect(got.Props.User).To(Equal([]packet.UserProperty{{Key: "fw", Value: "1.4.2"}}))
		Expect(got.Props.MessageExpiry).To(BeEquivalentTo(2), "expiry counted from CONNECT instead of publication")
	})

	It("publishes a delayed will at once when a clean start ends its session", Label("MQTT-3.1.2-8"), func() {
		b := start()
		obs := connectWire(b, packet.V5, "obs")
		obs.subscribe(1, "w/#", 1)
		dev := connectWire(b, packet.V5, "g1", func(c *packet.Connect) {
			c.CleanStart = false
			c.Props.SessionExpiry = 600
			c.Will = &packet.Will{Topic: "w/g1", Payload: []byte("gone"), QoS: 1, Props: packet.Properties{WillDelay: 600}}
		})
		dev.close()
		obs.expectSilence(200 * time.Millisecond)
		fresh := dialWire(b, packet.V5)
		Expect(fresh.connect("g1").SessionPresent).To(BeFalse()) // clean start: the old session ends
		Expect(string(obs.receive().Payload)).To(Equal("gone"))
	})

	It("publishes a retained will as retained", Label("MQTT-3.1.2-17"), func() {
		b := start()
		dev := connectWire(b, packet.V311, "g1", func(c *packet.Connect) {
			c.Will = &packet.Will{Topic: "w/g1", Payload: []byte("gone"), QoS: 1, Retain: true}
		})
		dev.close()
		Eventually(func() uint64 { return b.Stats().WillsPublished.Load() }).WithTimeout(wait).Should(BeEquivalentTo(1))
		late := connectWire(b, packet.V311, "late")
		late.subscribe(1, "w/#", 1)
		got := late.receive()
		Expect(got.Retain).To(BeTrue())
		Expect(string(got.Payload)).To(Equal("gone"))
	})
})

var _ = Describe("Keepalive", func() {
	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("closes a silent client after 1.5 × keepalive in MQTT "+v.String(), Label("MQTT-3.1.2-24", "MQTT-3.1.2-22"), func() {
			b := start()
			last := time.Now() // the CONNECT is the last packet the broker gets from this client
			w := connectWire(b, v, "idle", func(c *packet.Connect) { c.KeepAlive = 1 })
			d := w.expectClosed()
			Expect(time.Since(last)).To(BeNumerically(">=", 1500*time.Millisecond), "closed before 1.5 × keepalive")
			if v == packet.V5 {
				Expect(d).NotTo(BeNil())
				Expect(d.Code).To(Equal(packet.KeepAliveTimeout))
			}
		})
	}

	It("keeps a client that pings within the keepalive", func() {
		b := start()
		w := connectWire(b, packet.V311, "pinger", func(c *packet.Connect) { c.KeepAlive = 1 })
		for range 4 {
			w.expectSilence(500 * time.Millisecond)
			w.ping()
		}
	})

	It("never times out a client with keepalive 0", func() {
		b := start()
		w := connectWire(b, packet.V311, "forever", func(c *packet.Connect) { c.KeepAlive = 0 })
		w.expectSilence(2 * time.Second)
		w.ping()
	})
})

var _ = Describe("Sessions", func() {
	for _, v := range versions {
		persistent := func(c *packet.Connect) {
			c.CleanStart = false
			if c.Version == packet.V5 || v == packet.V5 {
				c.Props.SessionExpiry = 300
			}
		}
		It("resumes a persistent session with queued and unacknowledged messages, DUP set on redelivery, in MQTT "+v.String(), Label("MQTT-4.4.0-1", "MQTT-3.2.2-2", "MQTT-3.1.2-4"), func() {
			b := start()
			sub := dialWire(b, v)
			Expect(sub.connect("sub", persistent).SessionPresent).To(BeFalse())
			sub.subscribe(1, "q/#", 2)
			pub := connectWire(b, v, "pub")
			pub.publish("q/1", 1, false, "m1", 1)
			first := expectPacket[*packet.Publish](sub) // not acknowledged
			Expect(first.Dup).To(BeFalse())
			sub.close()
			pub.publish("q/2", 2, false, "m2", 2)
			pub.publish("q/3", 1, false, "m3", 3)
			pub.publish("q/4", 0, false, "lost", 0) // QoS 0 is not kept for an offline session
			pub.ping()                              // q/4 has been routed before the session resumes

			again := dialWire(b, v)
			ack := again.connect("sub", persistent)
			Expect(ack.SessionPresent).To(BeTrue())
			re := expectPacket[*packet.Publish](again)
			Expect(re.Dup).To(BeTrue(), "redelivery without DUP")
			Expect(re.PacketID).To(Equal(first.PacketID))
			Expect(string(re.Payload)).To(Equal("m1"))
			again.send(&packet.Puback{PacketID: re.PacketID})
			m2 := expectPacket[*packet.Publish](again)
			Expect(string(m2.Payload)).To(Equal("m2"))
			Expect(m2.QoS).To(BeEquivalentTo(2))
			m3 := expectPacket[*packet.Publish](again)
			Expect(string(m3.Payload)).To(Equal("m3"))
			again.send(&packet.Puback{PacketID: m3.PacketID})
			again.send(&packet.Pubrec{PacketID: m2.PacketID})
			Expect(expectPacket[*packet.Pubrel](again).PacketID).To(Equal(m2.PacketID))
			again.send(&packet.Pubcomp{PacketID: m2.PacketID})
			again.expectSilence(200 * time.Millisecond)
		})
	}

	It("re-sends PUBREL for a QoS 2 message released before the connection was lost", Label("MQTT-4.4.0-1"), func() {
		b := start()
		persistent := func(c *packet.Connect) { c.CleanStart = false }
		sub := dialWire(b, packet.V311)
		sub.connect("sub", persistent)
		sub.subscribe(1, "q", 2)
		pub := connectWire(b, packet.V311, "pub")
		pub.publish("q", 2, false, "x", 1)
		p := expectPacket[*packet.Publish](sub)
		sub.send(&packet.Pubrec{PacketID: p.PacketID})
		expectPacket[*packet.Pubrel](sub)
		sub.close()
		again := dialWire(b, packet.V311)
		Expect(again.connect("sub", persistent).SessionPresent).To(BeTrue())
		Expect(expectPacket[*packet.Pubrel](again).PacketID).To(Equal(p.PacketID))
		again.send(&packet.Pubcomp{PacketID: p.PacketID})
		again.ping()
	})

	It("completes an incoming QoS 2 flow across a reconnect without delivering twice", Label("MQTT-4.4.0-1", "MQTT-4.3.3-2"), func() {
		b := start()
		sub := connectWire(b, packet.V5, "sub")
		sub.subscribe(1, "bill", 2)
		keep := func(c *packet.Connect) { c.CleanStart = false; c.Props.SessionExpiry = 60 }
		dev := dialWire(b, packet.V5)
		dev.connect("gate-01", keep)
		dev.send(&packet.Publish{Topic: "bill", QoS: 2, PacketID: 7, Payload: []byte("2.50")})
		Expect(expectPacket[*packet.Pubrec](dev).PacketID).To(BeEquivalentTo(7))
		dev.close() // lost before PUBREL
		again := dialWire(b, packet.V5)
		Expect(again.connect("gate-01", keep).SessionPresent).To(BeTrue())
		again.send(&packet.Pubrel{PacketID: 7})
		comp := expectPacket[*packet.Pubcomp](again)
		Expect(comp.Code).To(Equal(packet.Success), "the packet id must still be known after the reconnect")
		Expect(string(sub.receive().Payload)).To(Equal("2.50"))
		sub.expectSilence(200 * time.Millisecond)
	})

	It("re-sends a message in flight to the taken-over connection on the new one", Label("MQTT-3.1.4-3", "MQTT-4.4.0-1"), func() {
		b := start()
		keep := func(c *packet.Connect) { c.CleanStart = false; c.Props.SessionExpiry = 60 }
		old := dialWire(b, packet.V5)
		old.connect("app", keep)
		old.subscribe(1, "evt/#", 1)
		p := connectWire(b, packet.V5, "gate-01")
		p.publish("evt/card", 1, false, "card 42", 1)
		first := expectPacket[*packet.Publish](old) // never acknowledged
		newer := dialWire(b, packet.V5)
		Expect(newer.connect("app", keep).SessionPresent).To(BeTrue())
		Expect(old.expectClosed().Code).To(Equal(packet.SessionTakenOver))
		re := expectPacket[*packet.Publish](newer)
		Expect(re.Dup).To(BeTrue())
		Expect(re.PacketID).To(Equal(first.PacketID))
		Expect(string(re.Payload)).To(Equal("card 42"))
	})

	It("discards the session on clean start", Label("MQTT-3.1.2-6", "MQTT-3.2.2-1"), func() {
		b := start()
		sub := dialWire(b, packet.V311)
		sub.connect("sub", func(c *packet.Connect) { c.CleanStart = false })
		sub.subscribe(1, "q", 1)
		sub.close()
		pub := connectWire(b, packet.V311, "pub")
		pub.publish("q", 1, false, "x", 1)
		again := dialWire(b, packet.V311)
		Expect(again.connect("sub").SessionPresent).To(BeFalse())
		again.expectSilence(200 * time.Millisecond)
		pub.publish("q", 1, false, "y", 2)
		again.expectSilence(200 * time.Millisecond)
	})

	It("expires a 5.0 session after its Session Expiry Interval", Label("MQTT-3.1.2-23"), func() {
		b := start()
		sub := dialWire(b, packet.V5)
		sub.connect("sub", func(c *packet.Connect) { c.CleanStart = false; c.Props.SessionExpiry = 1 })
		sub.subscribe(1, "q", 1)
		sub.close()
		Eventually(func() uint64 { return b.Stats().SessionsExpired.Load() }).WithTimeout(wait).Should(BeEquivalentTo(1))
		again := dialWire(b, packet.V5)
		Expect(again.connect("sub", func(c *packet.Connect) { c.CleanStart = false }).SessionPresent).To(BeFalse())
	})

	for _, v := range []packet.Version{packet.V311, packet.V5} {
		It("takes over a connected client with the same identifier in MQTT "+v.String(), Label("MQTT-3.1.4-3"), func() {
			b := start()
			old := connectWire(b, v, "dup")
			other := connectWire(b, v, "other")
			other.subscribe(1, "t", 1)
			newer := connectWire(b, v, "dup")
			d := old.expectClosed()
			if v == packet.V5 {
				Expect(d).NotTo(BeNil())
				Expect(d.Code).To(Equal(packet.SessionTakenOver))
			}
			newer.publish("t", 1, false, "from new", 1)
			Expect(string(other.receive().Payload)).To(Equal("from new"))
		})
	}
})

type brokerConfig = broker.Config

func ctxTimeout() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	DeferCleanup(cancel)
	return ctx
}
