package wsnet_test

import (
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkRead reads a stream of 16-byte packets sent two per message, through the adapter
// ("wsnet") and straight from gorilla's message readers ("gorilla"), to show what the adapter's
// locking and message boundaries cost on the broker's read path.
func BenchmarkRead(b *testing.B) {
	msg := make([]byte, 32)
	for _, mode := range []string{"wsnet", "gorilla"} {
		b.Run(mode, func(b *testing.B) {
			c, client := pair(b)
			// No deadlines: a benchmark may run longer than the tests' wait.
			if err := c.SetDeadline(time.Time{}); err != nil {
				b.Fatal(err)
			}
			ws := c.WebSocket()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if err := client.WriteMessage(websocket.BinaryMessage, msg); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			buf := make([]byte, 16)
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if mode == "wsnet" {
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
					continue
				}
				_, r, err := ws.NextReader()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkWrite writes 64-byte batches as one message each, through the adapter and straight
// through gorilla.
func BenchmarkWrite(b *testing.B) {
	batch := make([]byte, 64)
	for _, mode := range []string{"wsnet", "gorilla"} {
		b.Run(mode, func(b *testing.B) {
			c, client := pair(b)
			// No deadlines: a benchmark may run longer than the tests' wait.
			if err := c.SetDeadline(time.Time{}); err != nil {
				b.Fatal(err)
			}
			ws := c.WebSocket()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, _, err := client.ReadMessage(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			for range b.N {
				var err error
				if mode == "wsnet" {
					_, err = c.Write(batch)
				} else {
					err = ws.WriteMessage(websocket.BinaryMessage, batch)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}
