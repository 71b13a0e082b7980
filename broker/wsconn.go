package broker

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn presents a WebSocket connection as a byte stream: MQTT packets may span binary messages
// and a message may hold several packets (MQTT 5.0 §6).
type wsConn struct {
	ws  *websocket.Conn
	tls *tls.ConnectionState // of the HTTP request, for client certificates; nil without TLS
	r   io.Reader            // current message being read; owned by the read loop
}

// errTextFrame ends a WebSocket connection that sends a text frame.
var errTextFrame = errors.New("websocket: text frame on an MQTT connection")

var _ net.Conn = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, st *tls.ConnectionState) *wsConn { return &wsConn{ws: ws, tls: st} }

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				// MQTT over WebSocket is binary only; a text frame is a protocol error.
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one binary message; the broker's writer hands it whole batches of packets.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                       { return c.ws.Close() }
func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}
