package interop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

// pki is a certificate authority generated for one spec, with its files written for mosquitto.
type pki struct {
	dir    string
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
	pool   *x509.CertPool
	caFile string
	serial int64
}

func newPKI(name string) *pki {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	p := &pki{dir: GinkgoT().TempDir(), ca: ca, key: key, pool: x509.NewCertPool(), serial: 1}
	p.pool.AddCert(ca)
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, kind string, der []byte) string {
	GinkgoHelper()
	path := filepath.Join(p.dir, name)
	Expect(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)).To(Succeed())
	return path
}

// issue signs a certificate for cn (the server's carries 127.0.0.1) and writes cn.pem and cn.key.
func (p *pki) issue(cn string, usage x509.ExtKeyUsage) (cert tls.Certificate, certFile, keyFile string) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	Expect(err).NotTo(HaveOccurred())
	kder, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		p.write(cn+".pem", "CERTIFICATE", der), p.write(cn+".key", "EC PRIVATE KEY", kder)
}

// tlsAddr is the address of a named listener.
func tlsAddr(b *brokertest.Broker, name string) string {
	GinkgoHelper()
	a := b.Broker.Addr(name)
	Expect(a).NotTo(BeNil(), "listener %s", name)
	return a.String()
}

var _ = Describe("TLS", func() {
	It("carries messages between mosquitto_sub/pub (--cafile) and paho.mqtt.golang over TLS, and refuses clients that do not trust the CA", func() {
		requireMosquitto()
		ca := newPKI("gatehouse interop CA")
		server, _, _ := ca.issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
		b := brokertest.Start(GinkgoT(), brokertest.WithConfig(func(c *broker.Config) {
			c.Listeners = append(c.Listeners, broker.Listener{Name: "tls", Kind: broker.TLS, Addr: "127.0.0.1:0",
				TLS: &tls.Config{Certificates: []tls.Certificate{server}, MinVersion: tls.VersionTLS12}})
		}))
		addr := tlsAddr(b, "tls")
		for _, v := range []string{"mqttv311", "mqttv5"} {
			sub := subscribeProc(b, addr, "dashboard-"+v, []string{"-V", v, "--cafile", ca.caFile, "-t", "acs/+/gate/+/state", "-q", "1"})
			pahoPublish(pahoConnect(tlsPaho(addr, "gate-01-"+v, &tls.Config{RootCAs: ca.pool})), "acs/s1/gate/gate-01/state", 1, false, `{"position":"open"}`)
			Expect(next(sub.msgs, "the state over TLS")).To(Equal(message{Topic: "acs/s1/gate/gate-01/state", Payload: `{"position":"open"}`, QoS: 1}))
		}

		got := make(chan message, 8)
		Expect(pahoSubscribe(pahoConnect(tlsPaho(addr, "ops", &tls.Config{RootCAs: ca.pool})), "acs/+/gate/+/cmd/#", 2, got)).To(Equal(byte(2)))
		out, status := runPub(append(pubArgs(addr, "mqttv311", "ops-cli", "acs/s1/gate/gate-01/cmd/open", 2, false, `{"corr":"c-7"}`), "--cafile", ca.caFile)...)
		Expect(status).To(BeZero(), out)
		Expect(next(got, "the command over TLS")).To(Equal(message{Topic: "acs/s1/gate/gate-01/cmd/open", Payload: `{"corr":"c-7"}`, QoS: 2}))

		other := newPKI("some other CA")
		out, status = runPub(append(pubArgs(addr, "mqttv311", "intruder", "acs/s1/gate/gate-01/cmd/open", 1, false, "x"), "--cafile", other.caFile)...)
		Expect(status).NotTo(BeZero(), "a client that does not trust the server's CA: %s", out)
		Expect(out).To(ContainSubstring("TLS"))
	})

	It("takes the client certificate's CN as the user name (use_identity_as_username): the ACL of that user applies", func() {
		requireMosquitto()
		ca := newPKI("gatehouse site CA")
		server, _, _ := ca.issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
		_, opsCert, opsKey := ca.issue("ops", x509.ExtKeyUsageClientAuth)
		gate, gateCert, gateKey := ca.issue("gate-07", x509.ExtKeyUsageClientAuth)
		acl, err := auth.ParseACL("site.acl", []byte(siteACL))
		Expect(err).NotTo(HaveOccurred())
		b := brokertest.Start(GinkgoT(), brokertest.WithConfig(func(c *broker.Config) {
			c.ACL = acl
			c.Listeners = append(c.Listeners, broker.Listener{Name: "mtls", Kind: broker.TLS, Addr: "127.0.0.1:0", UseIdentityAsUsername: true,
				TLS: &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12}})
		}))
		addr := tlsAddr(b, "mtls")
		ops := subscribeProc(b, addr, "ops", []string{"-V", "mqttv311", "--cafile", ca.caFile, "--cert", opsCert, "--key", opsKey, "-t", "acs/#", "-q", "1"})

		for i, v := range []string{"mqttv311", "mqttv5"} {
			cert := []string{"--cafile", ca.caFile, "--cert", gateCert, "--key", gateKey}
			own := fmt.Sprintf(`{"position":"open","n":%d}`, i)
			out, status := runPub(append(pubArgs(addr, v, "gate-07-"+v, "acs/s1/gate/gate-07/state", 1, false, own), cert...)...)
			Expect(status).To(BeZero(), out)
			Expect(next(ops.msgs, "gate-07's own state")).To(Equal(message{Topic: "acs/s1/gate/gate-07/state", Payload: own, QoS: 1}))
			out, status = runPub(append(pubArgs(addr, v, "gate-07-"+v, "acs/s1/gate/gate-02/state", 1, false, "spoofed"), cert...)...)
			if v == "mqttv5" {
				Expect(out).To(ContainSubstring("Publish 1 failed: Not authorized."), "5.0: PUBACK 0x87 for gate-02's topic")
			} else {
				Expect(status).To(BeZero(), "3.1.1: acknowledged and dropped: %s", out)
			}
		}
		c := pahoConnect(tlsPaho(addr, "gate-07-paho", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{gate}}))
		pahoPublish(c, "acs/s1/gate/gate-02/state", 1, false, "spoofed by paho")
		pahoPublish(c, "acs/s1/gate/gate-07/state", 1, false, "own by paho")
		Expect(next(ops.msgs, "gate-07's own state")).To(Equal(message{Topic: "acs/s1/gate/gate-07/state", Payload: "own by paho", QoS: 1}),
			"gate-07 may not write gate-02's topics: the CN is the user name")
		Expect(b.Stats().DroppedDenied.Load()).To(BeEquivalentTo(3))

		out, status := runPub(append(pubArgs(addr, "mqttv311", "nobody", "acs/s1/gate/gate-07/state", 1, false, "x"), "--cafile", ca.caFile)...)
		Expect(status).NotTo(BeZero(), "a client without a certificate is refused: %s", out)
	})
})

var _ = Describe("WebSocket", func() {
	It("carries QoS 0, 1 and 2 both ways between paho.mqtt.golang over ws:// and clients over TCP, retained messages included", func() {
		b := brokertest.Start(GinkgoT(), brokertest.WithWebSocket())
		Expect(b.WSURL()).To(HavePrefix("ws://127.0.0.1:"))
		pahoPublisher(b, "gate-01", "acs/s1/gate/gate-01/status", 1, true, `{"online":true}`)

		ws := make(chan message, 16)
		wsClient := pahoConnect(pahoOptions(b.WSURL(), "dashboard-ws"))
		Expect(pahoSubscribe(wsClient, "acs/#", 2, ws)).To(Equal(byte(2)))
		Expect(next(ws, "the retained status over WebSocket")).To(Equal(message{Topic: "acs/s1/gate/gate-01/status", Payload: `{"online":true}`, QoS: 1, Retained: true}))
		tcp := paho5Subscriber(b, "billing-tcp", "ws/#", 2)

		for qos := range byte(3) {
			payload := fmt.Sprintf("tcp to ws at QoS %d", qos)
			pahoPublisher(b, "gate-02", "acs/s1/gate/gate-02/evt/card", qos, false, payload)
			Expect(next(ws, payload)).To(Equal(message{Topic: "acs/s1/gate/gate-02/evt/card", Payload: payload, QoS: qos}))

			payload = fmt.Sprintf("ws to tcp at QoS %d", qos)
			pahoPublish(wsClient, "ws/dashboard/ack", qos, false, payload)
			Expect(next(tcp, payload)).To(Equal(message{Topic: "ws/dashboard/ack", Payload: payload, QoS: qos}))
		}
	})
})
