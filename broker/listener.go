package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// boundListener is a listener that has been bound to its address.
type boundListener struct {
	cfg  Listener
	ln   net.Listener
	http *http.Server // WebSocket listeners only
	once sync.Once
}

func listen(ctx context.Context, l Listener) (*boundListener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.Addr)
	if err != nil {
		return nil, err
	}
	if l.TLS != nil {
		ln = tls.NewListener(ln, l.TLS)
	}
	return &boundListener{cfg: l, ln: ln}, nil
}

func (bl *boundListener) close() {
	bl.once.Do(func() {
		if bl.http != nil {
			// Close the listener and idle HTTP connections; upgraded WebSocket connections belong
			// to the broker's conns and are kicked separately.
			_ = bl.http.Close()
			return
		}
		_ = bl.ln.Close()
	})
}

// serveListener starts the accept loop of one listener.
func (b *Broker) serveListener(bl *boundListener) {
	if bl.cfg.Kind == WebSocket {
		b.serveWebSocket(bl)
		return
	}
	b.goFunc(func() { b.acceptLoop(bl) })
}

func (b *Broker) acceptLoop(bl *boundListener) {
	var backoff time.Duration
	for {
		nc, err := bl.ln.Accept()
		if err != nil {
			if b.shuttingDown() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (out of file descriptors): back off, bounded, then retry.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			b.log.Warn("accept failed", "listener", bl.cfg.Name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-b.quit:
				return
			}
			continue
		}
		backoff = 0
		b.accept(nc, bl.cfg)
	}
}

// accept registers a new network connection and starts its read loop, or refuses it when the
// broker is full or closing.
func (b *Broker) accept(nc net.Conn, l Listener) bool {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		_ = nc.Close()
		return false
	}
	if b.cfg.MaxConnections > 0 && len(b.conns) >= b.cfg.MaxConnections {
		b.mu.Unlock()
		b.stats.ConnectsRefused.Add(1)
		b.log.Warn("connection refused: max_connections reached", "remote", nc.RemoteAddr().String(), "max_connections", b.cfg.MaxConnections)
		_ = nc.Close()
		return false
	}
	c := newConn(b, nc, l)
	b.conns[c] = struct{}{}
	b.stats.Sockets.Add(1)
	b.mu.Unlock()
	b.goFunc(c.readLoop)
	return true
}

func (b *Broker) serveWebSocket(bl *boundListener) {
	up := websocket.Upgrader{
		Subprotocols:    []string{"mqtt"},
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		// Devices and test clients are not browsers; any origin may connect.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if bl.cfg.WebSocketPath != "" && r.URL.Path != bl.cfg.WebSocketPath {
			http.NotFound(w, r)
			return
		}
		if b.shuttingDown() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		b.accept(newWSConn(ws, r.TLS), bl.cfg)
	})
	bl.http = &http.Server{Handler: mux, ReadHeaderTimeout: b.cfg.ConnectTimeout, ErrorLog: nil}
	b.goFunc(func() {
		err := bl.http.Serve(bl.ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !b.shuttingDown() {
			b.log.Error("websocket listener stopped", "listener", bl.cfg.Name, "err", err)
		}
	})
}
