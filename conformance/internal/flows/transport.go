package flows

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/conformance/suite"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// DialWS opens a raw WebSocket to the broker's WebSocket listener offering the "mqtt"
// subprotocol, for checks of the framing itself. A broker without a WebSocket listener makes the
// check "not supported".
func DialWS(c *suite.C) (*websocket.Conn, *http.Response) {
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

// WSReader reads MQTT packets from a raw WebSocket without assuming that packets and frames line
// up: the broker may put several packets in one frame or split one over frames (section 6).
type WSReader struct {
	ws  *websocket.Conn
	buf []byte
}

// NewWSReader returns a reader of the packets on ws.
func NewWSReader(ws *websocket.Conn) *WSReader { return &WSReader{ws: ws} }

// Next reads the next packet, decoded for the check's version, requiring binary data frames.
func (r *WSReader) Next(c *suite.C) packet.Packet {
	for {
		if p, n, err := packet.Decode(r.buf, c.PacketVersion(), 0); err == nil {
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

// WSSubprotocol is the check that the broker's WebSocket handshake selects the subprotocol mqtt.
func WSSubprotocol(c *suite.C) {
	ws, resp := DialWS(c)
	defer ws.Close()
	c.Expect(ws.Subprotocol()).To(gomega.Equal("mqtt"), "Sec-WebSocket-Protocol of the handshake answer")
	c.Expect(resp.Header.Get("Sec-WebSocket-Protocol")).To(gomega.Equal("mqtt"))
}

// WSFrames is the check that the broker reads a packet split over WebSocket frames, and several
// packets from one frame.
func WSFrames(c *suite.C) {
	ws, _ := DialWS(c)
	defer ws.Close()
	connect := packet.Build(c.ConnectPacket("dev"), c.PacketVersion())
	c.Step("CONNECT split over two frames")
	c.Must(ws.WriteMessage(websocket.BinaryMessage, connect[:5]), "write")
	c.Must(ws.WriteMessage(websocket.BinaryMessage, connect[5:]), "write")
	rd := NewWSReader(ws)
	// 0x00 accepts in both versions: Connection Accepted in 3.1.1, Success in 5.0.
	ack, ok := rd.Next(c).(*packet.Connack)
	if !ok || ack.Code != packet.Success {
		c.Failf("the broker did not accept a CONNECT split over two frames")
	}
	c.Step("two PINGREQs in one frame")
	ping := packet.Build(&packet.Pingreq{}, c.PacketVersion())
	c.Must(ws.WriteMessage(websocket.BinaryMessage, append(ping, ping...)), "write")
	for range 2 {
		if p := rd.Next(c); p.Type() != packet.TypePingresp {
			c.Failf("answer to a PINGREQ is %s", wire.Describe(p))
		}
	}
}

// WSTextFrame is the check that the broker sends MQTT in binary frames only and closes the
// connection when a client sends MQTT in a text frame.
func WSTextFrame(c *suite.C) {
	ws, _ := DialWS(c)
	defer ws.Close()
	connect := packet.Build(c.ConnectPacket("dev"), c.PacketVersion())
	c.Must(ws.WriteMessage(websocket.BinaryMessage, connect), "write")
	rd := NewWSReader(ws)
	rd.Next(c)
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
}
