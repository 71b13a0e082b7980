package wire

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gatehouse-iot/gatehouse/broker/wsnet"
)

// dialWebSocket opens an MQTT-over-WebSocket connection (subprotocol "mqtt", binary frames) and
// returns it as a net.Conn. Text frames from the broker are read like binary ones: the checks of
// the framing judge them on a raw WebSocket, and every other check still sees the packets.
func dialWebSocket(ctx context.Context, u *url.URL, cfg *tls.Config) (net.Conn, error) {
	v := *u
	if v.Path == "" {
		v.Path = "/mqtt"
	}
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: cfg, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, v.String(), nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	return wsnet.New(ws, wsnet.AcceptText()), nil
}
