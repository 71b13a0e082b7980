package wsnet_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker/wsnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

// pair returns the server side of a real WebSocket connection over loopback TCP, wrapped with
// opts, and the raw client side.
func pair(t testing.TB, opts ...wsnet.Option) (*wsnet.Conn, *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		accepted <- ws
	}))
	t.Cleanup(srv.Close)
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: wait}
	client, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/mqtt", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = client.Close() })
	select {
	case ws := <-accepted:
		c := wsnet.New(ws, opts...)
		t.Cleanup(func() { _ = c.Close() })
		if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		return c, client
	case <-time.After(wait):
		t.Fatal("no WebSocket accepted")
		return nil, nil
	}
}

func TestReadIsOneStreamAcrossMessages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		messages [][]byte
		want     []byte
	}{
		{"one packet split over three messages", [][]byte{{0x10, 0x0c}, {0x00, 0x04, 'M', 'Q'}, {'T', 'T', 4, 2, 0, 60, 0, 0}},
			[]byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0}},
		{"two packets in one message", [][]byte{{0xc0, 0x00, 0xc0, 0x00}}, []byte{0xc0, 0x00, 0xc0, 0x00}},
		{"empty messages between data", [][]byte{{0xc0}, {}, {}, {0x00}}, []byte{0xc0, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := pair(t)
			for _, m := range tc.messages {
				if err := client.WriteMessage(websocket.BinaryMessage, m); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("read % x, want % x", got, tc.want)
			}
		})
	}
}

func TestTextMessages(t *testing.T) {
	t.Run("end a binary-only stream", func(t *testing.T) {
		c, client := pair(t)
		if err := client.WriteMessage(websocket.TextMessage, []byte{0xc0, 0x00}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 8)); !errors.Is(err, wsnet.ErrTextFrame) {
			t.Errorf("read of a text message: %v, want ErrTextFrame", err)
		}
	})
	t.Run("read like binary ones with AcceptText", func(t *testing.T) {
		c, client := pair(t, wsnet.AcceptText())
		if err := client.WriteMessage(websocket.TextMessage, []byte{0xc0, 0x00}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, []byte{0xc0, 0x00}) {
			t.Errorf("read % x, %v; want c0 00", got, err)
		}
	})
}

func TestWriteIsOneMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []wsnet.Option
		want int
	}{
		{"binary by default", nil, websocket.BinaryMessage},
		{"text with WriteText", []wsnet.Option{wsnet.WriteText()}, websocket.TextMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := pair(t, tc.opts...)
			batch := []byte{0xd0, 0x00, 0x20, 0x02, 0x00, 0x00}
			if n, err := c.Write(batch); err != nil || n != len(batch) {
				t.Fatalf("write: %d, %v", n, err)
			}
			_ = client.SetReadDeadline(time.Now().Add(wait))
			typ, msg, err := client.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ != tc.want || !bytes.Equal(msg, batch) {
				t.Errorf("peer got message type %d % x, want type %d % x", typ, msg, tc.want, batch)
			}
		})
	}
}

func TestCloseFromPeerReadsAsEOF(t *testing.T) {
	c, client := pair(t)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := client.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, io.EOF) {
		t.Errorf("read after a close frame: %v, want io.EOF", err)
	}
}

// TestConcurrentUse reads and writes from several goroutines at once, as net.Conn allows; the race
// detector and the byte counts show whether the adapter serialises them.
func TestConcurrentUse(t *testing.T) {
	c, client := pair(t)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := c.Write([]byte{0xd0, 0x00}); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	sent := make(chan error, 1)
	go func() {
		for range writers * each {
			if err := client.WriteMessage(websocket.BinaryMessage, []byte{0xc0}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	read := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			n := 0
			buf := make([]byte, 1)
			for {
				k, err := c.Read(buf)
				n += k
				if err != nil {
					read <- n
					return
				}
			}
		})
	}
	got := 0
	_ = client.SetReadDeadline(time.Now().Add(wait))
	for got < writers*each*2 {
		_, msg, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += len(msg)
	}
	if err := <-sent; err != nil {
		t.Fatalf("peer write: %v", err)
	}
	_ = client.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wait))
	wg.Wait()
	if n := <-read + <-read; n != writers*each {
		t.Errorf("readers got %d bytes, want %d", n, writers*each)
	}
}

// TestReadSkipsMessageEnds: the end of a message is not a read of nothing; a Read returns bytes
// or an error (a bufio.Reader gives up after repeated empty reads).
func TestReadSkipsMessageEnds(t *testing.T) {
	c, client := pair(t)
	for _, m := range [][]byte{{0xc0}, {}, {0x00}} {
		if err := client.WriteMessage(websocket.BinaryMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8)
	for i, want := range []byte{0xc0, 0x00} {
		n, err := c.Read(buf)
		if err != nil || n != 1 || buf[0] != want {
			t.Fatalf("read %d: % x, %v; want %02x", i+1, buf[:n], err, want)
		}
	}
}
