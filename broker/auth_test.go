package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// secured starts a broker with a password file (users gate-01, app) and an ACL where gate-01 may
// write only under its own prefix and read its commands, and app may read everything under acs/
// and write commands.
func secured() *brokertest.Broker {
	GinkgoHelper()
	return securedWith(`
user app
topic read acs/#
topic write acs/+/gate/+/cmd/#

pattern write acs/+/gate/%u/#
pattern read acs/+/gate/%u/cmd/#
`)
}

func securedWith(aclText string) *brokertest.Broker {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	pw := filepath.Join(dir, "passwd")
	Expect(auth.WritePasswordEntry(pw, "gate-01", []byte("s3cret"))).To(Succeed())
	Expect(auth.WritePasswordEntry(pw, "app", []byte("app-pw"))).To(Succeed())
	pf, err := auth.LoadPasswordFile(pw)
	Expect(err).NotTo(HaveOccurred())
	aclPath := filepath.Join(dir, "acl")
	Expect(os.WriteFile(aclPath, []byte(aclText), 0o600)).To(Succeed())
	acl, err := auth.LoadACLFile(aclPath)
	Expect(err).NotTo(HaveOccurred())
	return start(withConfig(func(c *broker.Config) {
		c.AllowAnonymous = false
		c.Authenticator = pf
		c.ACL = acl
	}))
}

func login(user, pass string) func(*packet.Connect) {
	return func(c *packet.Connect) {
		c.Username, c.UsernameFlag = user, true
		c.Password, c.PasswordFlag = []byte(pass), true
	}
}

var _ = Describe("Authentication and ACL", func() {
	for _, v := range versions {
		// 3.x: a well-formed user name and password that do not verify is "not authorized" (0x05);
		// 0x04 (Table 3.1) is for user name or password data that is malformed. mosquitto 2.0.11
		// answers the same. 5.0 has its own code for it: 0x86.
		want := packet.ConnRefusedNotAuthorized
		if v == packet.V5 {
			want = packet.BadUserNameOrPassword
		}
		It(fmt.Sprintf("refuses a wrong password or an unknown user with CONNACK 0x%02X in MQTT %s", byte(want), v), Label("§3.2.2.3"), func() {
			b := secured()
			w := dialWire(b, v)
			ack := w.connect("gate-01", login("gate-01", "wrong"))
			Expect(ack.Code).To(Equal(want), "wrong password: %s", ack.Code.Text(packet.TypeConnack, v))
			w.expectClosed()
			u := dialWire(b, v)
			ack = u.connect("gate-99", login("gate-99", "s3cret"))
			Expect(ack.Code).To(Equal(want), "unknown user: %s", ack.Code.Text(packet.TypeConnack, v))
			u.expectClosed()
			ok := dialWire(b, v)
			Expect(ok.connect("gate-01", login("gate-01", "s3cret")).Code).To(Equal(packet.Success))
		})

		It("refuses anonymous clients with CONNACK 0x05 / 0x87 unless allowed, in MQTT "+v.String(), func() {
			b := secured()
			w := dialWire(b, v)
			Expect(w.connect("anon").Code).To(Equal(packet.ConnackCode(v, packet.NotAuthorized)))
			w.expectClosed()
		})
	}

	It("refuses every client without a password file unless anonymous access is allowed", func() {
		b := start(withConfig(func(c *broker.Config) { c.AllowAnonymous = false }))
		w := dialWire(b, packet.V311)
		Expect(w.connect("x", login("u", "p")).Code).To(Equal(packet.ConnRefusedNotAuthorized))
	})

	It("answers a denied SUBSCRIBE with 0x80 in 3.1.1 and 0x87 in 5.0", Label("MQTT-3.3.5-2", "§3.9.3"), func() {
		b := secured()
		w := connectWire(b, packet.V311, "gate-01", login("gate-01", "s3cret"))
		w.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{
			{Filter: "acs/s/gate/gate-01/cmd/+", QoS: 1}, {Filter: "acs/#", QoS: 1},
		}})
		Expect(expectPacket[*packet.Suback](w).Codes).To(Equal([]packet.ReasonCode{packet.GrantedQoS1, packet.SubackFailure}))
		w5 := connectWire(b, packet.V5, "gate-01b", login("gate-01", "s3cret"))
		w5.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "acs/#", QoS: 1}}})
		Expect(expectPacket[*packet.Suback](w5).Codes).To(Equal([]packet.ReasonCode{packet.NotAuthorized}))
	})

	It("acknowledges and drops a denied PUBLISH in 3.1.1, answers 0x87 in 5.0", Label("MQTT-3.3.5-2"), func() {
		b := secured()
		app := connectWire(b, packet.V311, "app", login("app", "app-pw"))
		app.subscribe(1, "acs/#", 1)
		g := connectWire(b, packet.V311, "gate-01", login("gate-01", "s3cret"))
		g.publish("acs/s/gate/gate-02/state", 1, false, "forged", 1) // not its own prefix: acked, dropped
		g.publish("acs/s/gate/gate-01/state", 1, false, "mine", 2)
		Expect(string(app.receive().Payload)).To(Equal("mine"))
		g5 := connectWire(b, packet.V5, "gate-01-v5", login("gate-01", "s3cret"))
		g5.send(pub("acs/s/gate/gate-02/state", 1, 3))
		Expect(expectPacket[*packet.Puback](g5).Code).To(Equal(packet.NotAuthorized))
		g5.send(pub("acs/s/gate/gate-02/state", 2, 4))
		Expect(expectPacket[*packet.Pubrec](g5).Code).To(Equal(packet.NotAuthorized))
		app.expectSilence(200 * time.Millisecond)
	})

	It("checks read access on delivery", func() {
		b := securedWith(`
user app
topic readwrite acs/#
topic deny acs/s/secret/#
user gate-01
topic write acs/s/#
`)
		app := connectWire(b, packet.V311, "app", login("app", "app-pw"))
		Expect(app.subscribe(1, "acs/#", 1).Codes).To(Equal([]packet.ReasonCode{packet.GrantedQoS1}))
		g := connectWire(b, packet.V311, "gate-01", login("gate-01", "s3cret"))
		g.publish("acs/s/secret/x", 1, false, "hidden", 1)
		g.publish("acs/s/open/x", 1, false, "shown", 2)
		Expect(string(app.receive().Payload)).To(Equal("shown"))
		Expect(b.Stats().DroppedDenied.Load()).To(BeEquivalentTo(1))
	})

	It("refuses a will on a topic the client may not write", func() {
		b := secured()
		w := dialWire(b, packet.V5)
		ack := w.connect("gate-01", login("gate-01", "s3cret"), func(c *packet.Connect) {
			c.Will = &packet.Will{Topic: "acs/s/gate/gate-02/status", Payload: []byte("x")}
		})
		Expect(ack.Code).To(Equal(packet.NotAuthorized))
	})
})
