package broker_test

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/packet"
)

var _ = Describe("Keep Alive 0", func() {
	// §3.1.2.10 (3.1.1) / §3.1.2.10 (5.0): a Keep Alive of zero turns the keep alive mechanism
	// off, so nothing closes such a client — not the CONNECT timeout either, once CONNECT is in.
	// A WebSocket client is read by the blocking read loop (plain TCP clients are parked and
	// served by events), which is where the CONNECT timeout once stayed in force.
	It("keeps a WebSocket client open past the CONNECT timeout", func() {
		const connectTimeout = 300 * time.Millisecond
		b := start(withConfig(func(c *broker.Config) {
			c.ConnectTimeout = connectTimeout
			c.Listeners = append(c.Listeners, broker.Listener{Name: "websocket", Kind: broker.WebSocket, Addr: "127.0.0.1:0"})
		}))
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: wait}
		ws, _, err := d.Dial("ws://"+b.Broker.Addr("websocket").String()+"/mqtt", http.Header{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = ws.Close() })
		Expect(ws.WriteMessage(websocket.BinaryMessage, packet.Build(&packet.Connect{ClientID: "ka0", CleanStart: true}, packet.V311))).To(Succeed())
		Expect(ws.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
		_, data, err := ws.ReadMessage()
		Expect(err).NotTo(HaveOccurred())
		ack, _, err := packet.Decode(data, packet.V311, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(ack.(*packet.Connack).Code).To(Equal(packet.Success))

		// Nothing may arrive, the close least of all, for three CONNECT timeouts: the read
		// must end by its own deadline.
		Expect(ws.SetReadDeadline(time.Now().Add(3 * connectTimeout))).To(Succeed())
		_, _, err = ws.ReadMessage()
		var ne net.Error
		Expect(errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "the broker closed a Keep Alive 0 client: %v", err)
		Expect(b.Stats().KeepaliveTimeouts.Load()).To(BeZero())
	})
})
