package interop_test

import (
	"path/filepath"

	paho5 "github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

// siteACL gives each device its own topics and operators a read-only view plus commands.
const siteACL = `# devices
user gate-01
topic readwrite acs/s1/gate/gate-01/#
user gate-07
topic readwrite acs/s1/gate/gate-07/#
# operators
user ops
topic read acs/#
topic write acs/+/gate/+/cmd/#
`

const (
	gatePassword = "gate-01-s3cret"
	opsPassword  = "ops-pass"
)

// securedBroker starts a broker that admits only users of a password file written by broker/auth
// (gate-01 and ops) and applies siteACL.
func securedBroker(opts ...brokertest.Option) *brokertest.Broker {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), "passwd")
	Expect(auth.CreatePasswordFile(path, "gate-01", []byte(gatePassword))).To(Succeed())
	Expect(auth.WritePasswordEntry(path, "ops", []byte(opsPassword))).To(Succeed())
	pf, err := auth.LoadPasswordFile(path)
	Expect(err).NotTo(HaveOccurred())
	acl, err := auth.ParseACL("site.acl", []byte(siteACL))
	Expect(err).NotTo(HaveOccurred())
	return brokertest.Start(GinkgoT(), append(opts, brokertest.WithConfig(func(c *broker.Config) {
		c.AllowAnonymous = false
		c.Authenticator = pf
		c.ACL = acl
	}))...)
}

// pahoConnectCode connects and returns the CONNACK return code (0 on success; the client is then
// disconnected when the spec ends).
func pahoConnectCode(o *mqtt.ClientOptions) (byte, error) {
	GinkgoHelper()
	c := mqtt.NewClient(o)
	tok := c.Connect()
	Expect(tok.WaitTimeout(wait)).To(BeTrue(), "CONNACK within %s", wait)
	if tok.Error() == nil {
		DeferCleanup(func() { c.Disconnect(50) })
	}
	return tok.(*mqtt.ConnectToken).ReturnCode(), tok.Error()
}

func userPaho(b *brokertest.Broker, id, user, password string) *mqtt.ClientOptions {
	return pahoOptions(b.URL(), id).SetUsername(user).SetPassword(password)
}

func user5(id, user, password string) *paho5.Connect {
	return &paho5.Connect{ClientID: id, CleanStart: true, Username: user, UsernameFlag: true, Password: []byte(password), PasswordFlag: true}
}

// withUser adds user name and password options to mosquitto_pub/sub arguments.
func withUser(args []string, user, password string) []string {
	return append(args, "-u", user, "-P", password)
}

var _ = Describe("Passwords from a file written by broker/auth", func() {
	It("admit the right password from every stack", func() {
		b := securedBroker()
		code, err := pahoConnectCode(userPaho(b, "gate-01", "gate-01", gatePassword))
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(BeZero())
		connect5(b.Addr(), user5("ops", "ops", opsPassword))
		requireMosquitto()
		for _, v := range []string{"mqttv311", "mqttv5"} {
			out, status := runPub(withUser(pubArgs(b.Addr(), v, "gate-01", "acs/s1/gate/gate-01/state", 1, false, "{}"), "gate-01", gatePassword)...)
			Expect(status).To(BeZero(), "mosquitto_pub -V %s: %s", v, out)
		}
	})

	// MQTT 3.1.1 Table 3.1 keeps 0x04 for user name or password data that is malformed; a
	// well-formed but wrong password is 0x05 (not authorized), which mosquitto 2.0.11 answers too.
	It("refuse a wrong 3.1.1 password with CONNACK 0x05 (paho.mqtt.golang)", func() {
		b := securedBroker()
		code, err := pahoConnectCode(userPaho(b, "gate-01", "gate-01", "wrong"))
		Expect(err).To(HaveOccurred())
		Expect(code).To(Equal(byte(0x05)), "%v", err)
	})

	It("refuse a wrong 3.1.1 password: mosquitto_pub exits 5, 'not authorised'", func() {
		b := securedBroker()
		out, status := runPub(withUser(pubArgs(b.Addr(), "mqttv311", "gate-01", "acs/s1/gate/gate-01/state", 1, false, "{}"), "gate-01", "wrong")...)
		Expect(status).To(Equal(5))
		Expect(out).To(ContainSubstring("Connection Refused: not authorised."))
	})

	It("refuse a wrong 5.0 password with CONNACK 0x86 (paho.golang)", func() {
		b := securedBroker()
		_, ack, err := dial5(b.Addr(), user5("gate-01", "gate-01", "wrong"))
		Expect(err).To(HaveOccurred())
		Expect(ack).NotTo(BeNil())
		Expect(ack.ReasonCode).To(Equal(byte(0x86)))
		Expect(ack.SessionPresent).To(BeFalse())
	})

	It("refuse a wrong 5.0 password: mosquitto_pub exits 134 (0x86), 'Bad User Name or Password'", func() {
		b := securedBroker()
		out, status := runPub(withUser(pubArgs(b.Addr(), "mqttv5", "gate-01", "acs/s1/gate/gate-01/state", 1, false, "{}"), "gate-01", "wrong")...)
		Expect(status).To(Equal(0x86), out)
		Expect(out).To(ContainSubstring("Connection error: Bad User Name or Password"))
	})

	It("refuse clients without a user name: 0x05 in 3.1.1, 0x87 in 5.0", func() {
		b := securedBroker()
		code, err := pahoConnectCode(pahoOptions(b.URL(), "anonymous"))
		Expect(err).To(HaveOccurred())
		Expect(code).To(Equal(byte(0x05)))
		_, ack, err := dial5(b.Addr(), &paho5.Connect{ClientID: "anonymous", CleanStart: true})
		Expect(err).To(HaveOccurred())
		Expect(ack.ReasonCode).To(Equal(byte(0x87)))
		requireMosquitto()
		out, status := runPub(pubArgs(b.Addr(), "mqttv311", "anonymous", "acs/s1/gate/gate-01/state", 1, false, "{}")...)
		Expect(status).To(Equal(5))
		Expect(out).To(ContainSubstring("not authorised"))
	})
})

var _ = Describe("ACL denials", func() {
	const (
		own   = "acs/s1/gate/gate-01/state"
		other = "acs/s1/gate/gate-02/state"
	)

	It("refuse a subscription outside the ACL: SUBACK 0x80 (paho.mqtt.golang), 0x87 (paho.golang), and mosquitto_sub says so",
		Label("MQTT-3.8.4-5", "MQTT-3.8.4-7"), func() {
			b := securedBroker()
			c := pahoConnect(userPaho(b, "gate-01", "gate-01", gatePassword))
			ch := make(chan message, 4)
			Expect(pahoSubscribe(c, "acs/s1/gate/gate-02/#", 1, ch)).To(Equal(byte(0x80)))
			Expect(pahoSubscribe(c, "acs/s1/gate/gate-01/cmd/#", 1, ch)).To(Equal(byte(1)), "its own topics are allowed")

			c5 := connect5(b.Addr(), user5("gate-01-v5", "gate-01", gatePassword))
			Expect(c5.subscribe("acs/s1/gate/gate-02/#", 1).Reasons).To(Equal([]byte{0x87}))

			requireMosquitto()
			for _, v := range []string{"mqttv311", "mqttv5"} {
				p := startSub(withUser(append(hostPort(b.Addr()), "-V", v, "-i", "gate-01-"+v, "-t", "acs/s1/gate/gate-02/#", "-q", "1"), "gate-01", gatePassword)...)
				Eventually(p.stderr.String).WithTimeout(wait).Should(ContainSubstring("All subscription requests were denied."), "mosquitto_sub -V %s", v)
			}
		})

	It("drop a PUBLISH outside the ACL: acknowledged in 3.1.1, PUBACK 0x87 in 5.0, delivered to nobody",
		Label("MQTT-3.3.5-2"), func() {
			b := securedBroker()
			ops := pahoConnect(userPaho(b, "ops", "ops", opsPassword))
			seen := make(chan message, 16)
			Expect(pahoSubscribe(ops, "acs/#", 1, seen)).To(Equal(byte(1)))

			gate := pahoConnect(userPaho(b, "gate-01", "gate-01", gatePassword))
			pahoPublish(gate, other, 1, false, "spoofed by paho.mqtt.golang")
			pahoPublish(gate, own, 1, false, "own by paho.mqtt.golang")
			Expect(next(seen, "the allowed message")).To(Equal(message{Topic: own, Payload: "own by paho.mqtt.golang", QoS: 1}), "the denied message is not delivered")

			c5 := connect5(b.Addr(), user5("gate-01-v5", "gate-01", gatePassword))
			resp, err := c5.publish(other, 1, false, "spoofed by paho.golang")
			Expect(err).To(HaveOccurred())
			Expect(resp).NotTo(BeNil())
			Expect(resp.ReasonCode).To(Equal(byte(0x87)))

			requireMosquitto()
			out, status := runPub(withUser(pubArgs(b.Addr(), "mqttv311", "gate-01-v3", other, 1, false, "spoofed by mosquitto_pub 3.1.1"), "gate-01", gatePassword)...)
			Expect(status).To(BeZero(), "3.1.1: the PUBACK carries no refusal: %s", out)
			out, _ = runPub(withUser(pubArgs(b.Addr(), "mqttv5", "gate-01-v5", other, 1, false, "spoofed by mosquitto_pub 5.0"), "gate-01", gatePassword)...)
			Expect(out).To(ContainSubstring("Publish 1 failed: Not authorized."), "5.0: PUBACK 0x87")

			pahoPublish(pahoConnect(userPaho(b, "ops-marker", "ops", opsPassword)), "acs/s1/gate/gate-01/cmd/marker", 1, false, "marker")
			m := message{Topic: "acs/s1/gate/gate-01/cmd/marker", Payload: "marker", QoS: 1}
			Expect(next(seen, "the marker")).To(Equal(m), "no denied message reached the operator")
			Expect(b.Stats().DroppedDenied.Load()).To(BeEquivalentTo(4))
		})
})
