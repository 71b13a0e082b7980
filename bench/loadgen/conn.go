// Package loadgen is the broker benchmark's load generator: raw MQTT 3.1.1 clients built on the
// packet codec, with no client library between the wire and the measurement, so that the load
// generator spends less CPU per message than the brokers it measures.
//
// Every application message carries its publisher's id, a per-publisher sequence number and the
// time it was written; receivers record each one in a Tracker, which counts losses, duplicates
// and reordering. Workloads (FanIn, FanOut, Idle, Latency) return a Result.
package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// version is the protocol every benchmark client speaks: 3.1.1 is what all three brokers
// implement most carefully, and 5.0 features play no part in the workloads.
const version = packet.V311

// Conn is one raw MQTT client connection. It is owned by one goroutine at a time; writes are
// appended to a buffer and sent by Flush, so that a burst of packets costs one system call.
type Conn struct {
	nc   net.Conn
	rbuf []byte
	r, w int // unread bytes are rbuf[r:w]
	wbuf []byte
}

// DialOptions configures Dial.
type DialOptions struct {
	// Source is the local address to connect from (127.0.0.2, ...: each loopback source address
	// has its own ephemeral port range); nil lets the system choose.
	Source net.IP
	// KeepAlive is the CONNECT keepalive in seconds; 0 turns keepalive off.
	KeepAlive uint16
	// ReadBuffer is the size of the receive buffer; 0 means 64 KiB.
	ReadBuffer int
	// Timeout bounds the TCP connect and the CONNACK wait; 0 means 10 s.
	Timeout time.Duration
}

// Dial connects to addr, sends CONNECT with a clean session and waits for a successful CONNACK.
func Dial(ctx context.Context, addr, clientID string, o DialOptions) (*Conn, error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ReadBuffer == 0 {
		o.ReadBuffer = 64 << 10
	}
	d := net.Dialer{Timeout: o.Timeout}
	if o.Source != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.Source}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client %s: dial %s: %w", clientID, addr, err)
	}
	c := &Conn{nc: nc, rbuf: make([]byte, o.ReadBuffer)}
	c.Append(&packet.Connect{Version: version, ClientID: clientID, CleanStart: true, KeepAlive: o.KeepAlive})
	_ = nc.SetDeadline(time.Now().Add(o.Timeout))
	if err := c.Flush(); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("client %s: CONNECT: %w", clientID, err)
	}
	h, body, err := c.Next()
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("client %s: waiting for CONNACK: %w", clientID, err)
	}
	var ack packet.Connack
	if h.Type != packet.TypeConnack {
		_ = nc.Close()
		return nil, fmt.Errorf("client %s: got %s, want CONNACK", clientID, h.Type)
	}
	if err := ack.Unmarshal(h, body, version); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("client %s: CONNACK: %w", clientID, err)
	}
	if ack.Code != packet.Success {
		_ = nc.Close()
		return nil, fmt.Errorf("client %s: CONNACK refused: return code %d", clientID, byte(ack.Code))
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// Subscribe subscribes to filter at qos and waits for a SUBACK granting it.
func (c *Conn) Subscribe(filter string, qos packet.QoS, timeout time.Duration) error {
	c.Append(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	if err := c.Flush(); err != nil {
		return fmt.Errorf("SUBSCRIBE %s: %w", filter, err)
	}
	h, body, err := c.Next()
	if err != nil {
		return fmt.Errorf("waiting for SUBACK of %s: %w", filter, err)
	}
	if h.Type != packet.TypeSuback {
		return fmt.Errorf("SUBSCRIBE %s: got %s, want SUBACK", filter, h.Type)
	}
	var sa packet.Suback
	if err := sa.Unmarshal(h, body, version); err != nil {
		return fmt.Errorf("SUBACK of %s: %w", filter, err)
	}
	if len(sa.Codes) != 1 || sa.Codes[0] != packet.ReasonCode(qos) {
		return fmt.Errorf("SUBACK of %s: granted %v, want QoS %d", filter, sa.Codes, qos)
	}
	return nil
}

// Append encodes p into the write buffer.
func (c *Conn) Append(p packet.Packet) {
	// Every packet the load generator builds can be represented; an error here is a bug.
	out, err := p.AppendTo(c.wbuf, version)
	if err != nil {
		panic(fmt.Sprintf("loadgen: encode %s: %v", p.Type(), err))
	}
	c.wbuf = out
}

// Pending is the number of bytes waiting in the write buffer.
func (c *Conn) Pending() int { return len(c.wbuf) }

// Flush writes the write buffer.
func (c *Conn) Flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// Buffered reports whether a whole or partial packet is already read and waiting, so that the
// owner can keep answering without a system call and flush only when the buffer runs dry.
func (c *Conn) Buffered() bool { return c.w > c.r }

// Next returns the next packet's fixed header and body. The body aliases the read buffer and is
// valid until the next call.
func (c *Conn) Next() (packet.FixedHeader, []byte, error) {
	for {
		if c.w > c.r {
			h, hl, err := packet.ReadFixedHeader(c.rbuf[c.r:c.w])
			if err == nil {
				total := hl + h.Remaining
				if total > len(c.rbuf) {
					return h, nil, fmt.Errorf("%s of %d bytes is larger than the read buffer", h.Type, total)
				}
				if c.w-c.r >= total {
					body := c.rbuf[c.r+hl : c.r+total : c.r+total]
					c.r += total
					return h, body, nil
				}
			} else if !errors.Is(err, packet.ErrIncomplete) {
				return h, nil, fmt.Errorf("fixed header: %w", err)
			}
		}
		if c.r > 0 {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		}
		n, err := c.nc.Read(c.rbuf[c.w:])
		c.w += n
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return packet.FixedHeader{}, nil, io.ErrUnexpectedEOF
			}
			return packet.FixedHeader{}, nil, err
		}
	}
}

// SetReadDeadline sets the deadline of the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Disconnect sends DISCONNECT and closes the connection.
func (c *Conn) Disconnect() error {
	c.Append(&packet.Disconnect{})
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	ferr := c.Flush()
	cerr := c.nc.Close()
	return errors.Join(ferr, cerr)
}

// Close closes the connection without DISCONNECT.
func (c *Conn) Close() error { return c.nc.Close() }

// ackID reads the packet identifier of an acknowledgement body (PUBACK, PUBREC, PUBREL, PUBCOMP).
func ackID(h packet.FixedHeader, body []byte) (uint16, error) {
	if len(body) < 2 {
		return 0, fmt.Errorf("%s of %d bytes has no packet identifier", h.Type, len(body))
	}
	return binary.BigEndian.Uint16(body), nil
}

// Message payload layout: publisher id, sequence number, the time the publisher wrote it (Unix
// nanoseconds), then padding.
const (
	stampSize = 4 + 8 + 8
	// DefaultPayload is the payload size of every workload: an access-control event with its
	// JSON is about this size.
	DefaultPayload = 64
)

// Stamp is what every benchmark message carries.
type Stamp struct {
	Publisher uint32
	Seq       uint64
	Sent      int64 // Unix nanoseconds
}

// PutStamp writes s at the start of payload, which must hold at least 20 bytes.
func PutStamp(payload []byte, s Stamp) {
	binary.BigEndian.PutUint32(payload[0:], s.Publisher)
	binary.BigEndian.PutUint64(payload[4:], s.Seq)
	binary.BigEndian.PutUint64(payload[12:], uint64(s.Sent))
}

// ReadStamp reads the stamp at the start of payload.
func ReadStamp(payload []byte) (Stamp, error) {
	if len(payload) < stampSize {
		return Stamp{}, fmt.Errorf("payload of %d bytes: want at least %d (publisher, sequence, time)", len(payload), stampSize)
	}
	return Stamp{
		Publisher: binary.BigEndian.Uint32(payload[0:]),
		Seq:       binary.BigEndian.Uint64(payload[4:]),
		Sent:      int64(binary.BigEndian.Uint64(payload[12:])),
	}, nil
}
