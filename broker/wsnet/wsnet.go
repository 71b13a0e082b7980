// Package wsnet presents a WebSocket connection (github.com/gorilla/websocket) as a net.Conn
// carrying one byte stream, as MQTT over WebSocket needs: a control packet may span binary
// messages and one message may hold several packets (MQTT 3.1.1 and 5.0, section 6). The
// reference broker's WebSocket listener, the conformance suite's wire client and its mutant proxy
// all read and write MQTT through it.
//
// By default a text message ends the stream with ErrTextFrame, since MQTT is carried in binary
// data frames only ([MQTT-6.0.0-1]). Test equipment that has to tolerate or produce text frames
// says so with AcceptText and WriteText.
package wsnet

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrTextFrame is the read error of a text message on a connection that takes binary ones only.
var ErrTextFrame = errors.New("websocket: text frame on an MQTT connection")

// Option changes how a Conn treats message types.
type Option func(*Conn)

// AcceptText reads text messages like binary ones instead of failing with ErrTextFrame.
func AcceptText() Option { return func(c *Conn) { c.acceptText = true } }

// WriteText sends every Write as a text message, which breaks [MQTT-6.0.0-1] on purpose.
func WriteText() Option { return func(c *Conn) { c.writeType = websocket.TextMessage } }

// Conn is a WebSocket connection seen as a byte stream. Read and Write may be called from
// different goroutines, like those of any net.Conn.
type Conn struct {
	ws         *websocket.Conn
	acceptText bool
	writeType  int

	// rmu protects r, the reader of the message being read: a websocket.Conn has one reader at a
	// time, a net.Conn may be read from several goroutines.
	rmu sync.Mutex
	r   io.Reader

	// wmu serialises writes: a websocket.Conn has one writer at a time.
	wmu sync.Mutex
}

var _ net.Conn = (*Conn)(nil)

// New wraps an open WebSocket connection, from a websocket.Upgrader or a websocket.Dialer.
func New(ws *websocket.Conn, opts ...Option) *Conn {
	c := &Conn{ws: ws, writeType: websocket.BinaryMessage}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WebSocket returns the underlying connection, for callers that look at single messages.
func (c *Conn) WebSocket() *websocket.Conn { return c.ws }

// Read reads the stream across message boundaries. A close frame from the peer reads as io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				if _, ok := errors.AsType[*websocket.CloseError](err); ok {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage && !c.acceptText {
				return 0, ErrTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			// The message is over; the stream goes on in the next one.
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one message: a writer that hands it whole batches of packets sends them in one
// frame.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(c.writeType, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the network connection without a close handshake, as a lost link would.
func (c *Conn) Close() error { return c.ws.Close() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetReadDeadline sets the deadline of Read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Write.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// SetDeadline sets the deadlines of Read and Write.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}
