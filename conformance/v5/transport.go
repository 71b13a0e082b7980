package v5

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// dialWS opens a raw WebSocket to the broker's WebSocket listener offering the "mqtt"
// subprotocol, for checks of the framing itself.
func dialWS(c *suite.C) (*websocket.Conn, *http.Response) {
	c.Require(suite.FeatureWebSocket)
	ctx, cancel := context.WithTimeout(c.Context(), c.Timeout())
	defer cancel()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: c.Env.TLS}
	ws, resp, err := d.DialContext(ctx, c.Env.WebSocketURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	c.Must(err, "open a WebSocket to "+c.Env.WebSocketURL)
	c.Trace().Notef("ws", "WebSocket open to %s, subprotocol %q", c.Env.WebSocketURL, ws.Subprotocol())
	return ws, resp
}

// wsReader reads MQTT packets from a WebSocket without assuming that packets and frames line
// up: the broker may put several packets in one frame or split one over frames (section 6).
type wsReader struct {
	ws  *websocket.Conn
	buf []byte
}

// next reads the next packet, requiring binary data frames.
func (r *wsReader) next(c *suite.C) packet.Packet {
	for {
		if p, n, err := packet.Decode(r.buf, v5, 0); err == nil {
			r.buf = r.buf[n:]
			c.Trace().Notef("ws", "← %s", wire.Describe(p))
			return p
		} else if !errors.Is(err, packet.ErrIncomplete) {
			c.Failf("the broker sent a malformed packet over the WebSocket: %v", err)
		}
		_ = r.ws.SetReadDeadline(time.Now().Add(c.Timeout()))
		kind, msg, err := r.ws.ReadMessage()
		c.Must(err, "read from the WebSocket")
		if kind != websocket.BinaryMessage {
			c.Failf("the broker sent a WebSocket message of type %d, not a binary data frame", kind)
		}
		r.buf = append(r.buf, msg...)
	}
}

var _ = describe("Transports", func() {
	suite.Must("carries MQTT over an ordered, lossless byte stream in both directions",
		ids(spec.V5_4_2_0_1), func(c *suite.C) {
			topic := c.Topic("stream")
			sub := subscriber(c, "sub", 0, topic)
			conn, _ := c.Connect("pub")
			c.Step("50 PINGREQs in one write, and 50 PINGRESPs")
			var burst []byte
			for range 50 {
				burst = append(burst, packet.Build(&packet.Pingreq{}, v5)...)
			}
			c.SendRaw(conn, burst)
			for range 50 {
				c.Await(conn, wire.IsType(packet.TypePingresp))
			}
			c.Step("a 64 KiB message, byte for byte, to a subscriber")
			big := make([]byte, 64<<10)
			for i := range big {
				big[i] = byte(i * 7)
			}
			c.Send(conn, &packet.Publish{Topic: topic, Payload: big})
			in := c.AwaitPublish(sub, wire.PublishOn(topic))
			c.Expect(in.Payload).To(Equal(big), "payload of a 64 KiB message as delivered")
		})

	suite.Must("selects the WebSocket subprotocol mqtt",
		ids(spec.V5_6_0_0_4), func(c *suite.C) {
			ws, resp := dialWS(c)
			defer ws.Close()
			c.Expect(ws.Subprotocol()).To(Equal("mqtt"), "Sec-WebSocket-Protocol of the handshake answer")
			c.Expect(resp.Header.Get("Sec-WebSocket-Protocol")).To(Equal("mqtt"))
		})

	suite.Must("reads packets across WebSocket frame boundaries and several packets from one frame",
		ids(spec.V5_6_0_0_2), func(c *suite.C) {
			ws, _ := dialWS(c)
			defer ws.Close()
			connect := packet.Build(c.ConnectPacket("dev"), v5)
			c.Step("CONNECT split over two frames")
			c.Must(ws.WriteMessage(websocket.BinaryMessage, connect[:5]), "write")
			c.Must(ws.WriteMessage(websocket.BinaryMessage, connect[5:]), "write")
			rd := &wsReader{ws: ws}
			ack, ok := rd.next(c).(*packet.Connack)
			if !ok || ack.Code != packet.Success {
				c.Failf("the broker did not accept a CONNECT split over two frames")
			}
			c.Step("two PINGREQs in one frame")
			ping := packet.Build(&packet.Pingreq{}, v5)
			c.Must(ws.WriteMessage(websocket.BinaryMessage, append(ping, ping...)), "write")
			for range 2 {
				if p := rd.next(c); p.Type() != packet.TypePingresp {
					c.Failf("answer to a PINGREQ is %s", wire.Describe(p))
				}
			}
		})

	suite.Must("sends MQTT in binary frames and closes the connection when a client sends MQTT in a text frame",
		ids(spec.V5_6_0_0_1), func(c *suite.C) {
			ws, _ := dialWS(c)
			defer ws.Close()
			connect := packet.Build(c.ConnectPacket("dev"), v5)
			c.Must(ws.WriteMessage(websocket.BinaryMessage, connect), "write")
			rd := &wsReader{ws: ws}
			rd.next(c)
			c.Step("PINGREQ in a text frame")
			c.Must(ws.WriteMessage(websocket.TextMessage, []byte{0xC0, 0x00}), "write")
			_ = ws.SetReadDeadline(time.Now().Add(c.Timeout()))
			for {
				kind, msg, err := ws.ReadMessage()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					c.Failf("the connection is still open %s after a text frame", c.Timeout())
				}
				if err != nil {
					c.Trace().Notef("ws", "× closed: %v", err)
					return
				}
				if kind != websocket.BinaryMessage {
					c.Failf("the broker sent a WebSocket message of type %d, not a binary data frame", kind)
				}
				if len(msg) > 0 && msg[0] == 0xD0 {
					c.Failf("the broker answered a PINGREQ sent in a text frame")
				}
			}
		})
})
