package broker

import (
	"crypto/tls"

	"github.com/gorilla/websocket"

	"github.com/gatehouse-iot/gatehouse/broker/wsnet"
)

// wsConn is a WebSocket connection as the broker reads it: a byte stream of binary messages
// (wsnet; a text frame ends it, MQTT 5.0 §6) that remembers the TLS state of its HTTP request,
// for client certificates.
type wsConn struct {
	*wsnet.Conn
	tls *tls.ConnectionState // nil without TLS
}

func newWSConn(ws *websocket.Conn, st *tls.ConnectionState) *wsConn {
	return &wsConn{Conn: wsnet.New(ws), tls: st}
}
