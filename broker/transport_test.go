package broker_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// testPKI is a certificate authority made for one spec, with a server certificate for 127.0.0.1.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	server tls.Certificate
}

func newPKI() *testPKI {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	p := &testPKI{ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = p.issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
	return p
}

func (p *testPKI) issue(cn string, usage x509.ExtKeyUsage) tls.Certificate {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	Expect(err).NotTo(HaveOccurred())
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func wrap(nc net.Conn, v packet.Version) *wire {
	DeferCleanup(func() { _ = nc.Close() })
	r := packet.NewReader(bufio.NewReader(nc), 0)
	r.SetVersion(v)
	return &wire{nc: nc, r: r, v: v}
}

// aclFunc adapts a function to auth.ACL.
type aclFunc func(id auth.Identity, topic string, a auth.Access) bool

func (f aclFunc) Allow(id auth.Identity, topic string, a auth.Access) bool { return f(id, topic, a) }

var _ = Describe("Listeners", func() {
	It("serves MQTT over TLS and takes the certificate's CN as the user name (use_identity_as_username)", func() {
		pki := newPKI()
		b := start(withConfig(func(c *broker.Config) {
			c.AllowAnonymous = false
			c.Listeners = append(c.Listeners, broker.Listener{Name: "tls", Kind: broker.TLS, Addr: "127.0.0.1:0",
				UseIdentityAsUsername: true,
				TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
					ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}})
			// Devices may write only under their own user name.
			c.ACL = aclFunc(func(id auth.Identity, topic string, a auth.Access) bool {
				return a != auth.Write || topic == "acs/"+id.Username+"/state"
			})
		}))
		dial := func(cert *tls.Certificate) *wire {
			cfg := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if cert != nil {
				cfg.Certificates = []tls.Certificate{*cert}
			}
			nc, err := tls.DialWithDialer(&net.Dialer{Timeout: wait}, "tcp", b.TLSAddr(), cfg)
			Expect(err).NotTo(HaveOccurred())
			return wrap(nc, packet.V5)
		}
		cert := pki.issue("gate-07", x509.ExtKeyUsageClientAuth)
		w := dial(&cert)
		Expect(w.connect("gate-07").Code).To(Equal(packet.Success))
		w.send(pub("acs/gate-07/state", 1, 1))
		Expect(expectPacket[*packet.Puback](w).Code).To(Equal(packet.NoMatchingSubscribers))
		w.send(pub("acs/gate-08/state", 1, 2))
		Expect(expectPacket[*packet.Puback](w).Code).To(Equal(packet.NotAuthorized))

		nocert := dial(nil)
		Expect(nocert.connect("anon").Code).To(Equal(packet.NotAuthorized))
	})

	It("serves MQTT over WebSocket with the mqtt subprotocol, alongside TCP", func() {
		b := start(withConfig(func(c *broker.Config) {
			c.Listeners = append(c.Listeners, broker.Listener{Name: "websocket", Kind: broker.WebSocket, Addr: "127.0.0.1:0"})
		}))
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: wait}
		ws, resp, err := d.Dial("ws://"+b.Broker.Addr("websocket").String()+"/mqtt", http.Header{})
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Header.Get("Sec-WebSocket-Protocol")).To(Equal("mqtt"))
		DeferCleanup(func() { _ = ws.Close() })
		send := func(p packet.Packet) {
			Expect(ws.WriteMessage(websocket.BinaryMessage, packet.Build(p, packet.V311))).To(Succeed())
		}
		read := func() packet.Packet {
			Expect(ws.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
			_, data, err := ws.ReadMessage()
			Expect(err).NotTo(HaveOccurred())
			p, n, err := packet.Decode(data, packet.V311, 0)
			Expect(err).NotTo(HaveOccurred())
			Expect(n).To(Equal(len(data)))
			return p
		}
		send(&packet.Connect{ClientID: "browser", CleanStart: true, KeepAlive: 30})
		Expect(read().(*packet.Connack).Code).To(Equal(packet.Success))
		send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "ws/#", QoS: 1}}})
		Expect(read()).To(BeAssignableToTypeOf(&packet.Suback{}))
		tcp := connectWire(b, packet.V311, "tcp")
		tcp.publish("ws/hello", 1, false, "over tcp", 1)
		got := read().(*packet.Publish)
		Expect(string(got.Payload)).To(Equal("over tcp"))
		send(&packet.Puback{PacketID: got.PacketID})
	})
})

var _ = Describe("Limits", func() {
	It("refuses connections beyond max_connections", func() {
		b := start(withConfig(func(c *broker.Config) { c.MaxConnections = 2 }))
		connectWire(b, packet.V311, "a")
		connectWire(b, packet.V311, "b")
		w := dialWire(b, packet.V311)
		w.send(&packet.Connect{ClientID: "c", CleanStart: true})
		w.expectClosed()
		Expect(b.Stats().ConnectsRefused.Load()).To(BeEquivalentTo(1))
	})

	It("drops and counts QoS 0 messages for a client that does not read, and never QoS 1", func() {
		b := start(withConfig(func(c *broker.Config) {
			c.MaxQueued = 8
			c.WriteTimeout = time.Minute
		}))
		slow := connectWire(b, packet.V311, "slow")
		slow.subscribe(1, "flood/#", 1)
		p := connectWire(b, packet.V311, "pub")
		payload := string(make([]byte, 32<<10))
		const n0, n1 = 600, 20
		for i := range n0 {
			p.send(&packet.Publish{Topic: "flood/0", Payload: []byte(payload), PacketID: uint16(i)})
		}
		for i := range n1 {
			p.publish("flood/1", 1, false, "q1", uint16(i+1))
		}
		p.ping()
		Expect(b.Stats().DroppedQueueFull.Load()).To(BeNumerically(">", 0))
		got0, got1 := 0, 0
		for got1 < n1 {
			m := slow.receive()
			if m.QoS == 0 {
				got0++
			} else {
				got1++
			}
		}
		slow.ping()
		for {
			if m, err := slow.next(200 * time.Millisecond); err == nil {
				Expect(m.(*packet.Publish).QoS).To(BeEquivalentTo(0))
				got0++
				continue
			}
			break
		}
		Expect(uint64(got0)+b.Stats().DroppedQueueFull.Load()).To(BeEquivalentTo(n0), "every QoS 0 message is delivered or counted as dropped")
	})
})

var _ = Describe("$SYS topics", func() {
	It("publishes broker counters under $SYS/broker/ when enabled", func() {
		b := start(withConfig(func(c *broker.Config) { c.SysInterval = 100 * time.Millisecond }))
		w := connectWire(b, packet.V311, "ops")
		w.subscribe(1, "$SYS/broker/clients/connected", 0)
		// The retained value from before this client connected comes first; a later period counts it.
		Eventually(func() string {
			got := w.receive()
			Expect(got.Topic).To(Equal("$SYS/broker/clients/connected"))
			return string(got.Payload)
		}).WithTimeout(wait).Should(Equal("1"))
	})
})
