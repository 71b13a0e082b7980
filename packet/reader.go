package packet

import (
	"errors"
	"io"
)

// Reader reads packets from a stream. It allocates one buffer per packet body, which the returned
// packet aliases, so packets stay valid after the next read. Wrap a network connection in a
// bufio.Reader first: the fixed header is read in small pieces.
type Reader struct {
	r   io.Reader
	max int
	v   Version
	hdr [5]byte
}

// NewReader returns a Reader of packets from r, refusing any packet larger than maxSize bytes
// (0 means the protocol maximum) before reading or allocating its body.
func NewReader(r io.Reader, maxSize int) *Reader { return &Reader{r: r, max: maxSize} }

// SetVersion sets the version used to decode packets other than CONNECT. A Reader whose version is
// unset takes it from the first CONNECT it decodes (the server side of a connection).
func (r *Reader) SetVersion(v Version) { r.v = v }

// Version returns the version packets are decoded for, 0 while unknown.
func (r *Reader) Version() Version { return r.v }

// ReadPacket reads and decodes the next packet. It returns io.EOF when the stream ends cleanly
// between packets, io.ErrUnexpectedEOF when it ends inside one, an *Error for a packet that breaks
// a rule (the stream cannot be trusted after it) and the reader's error otherwise.
func (r *Reader) ReadPacket() (Packet, error) {
	b := r.hdr[:]
	if _, err := io.ReadFull(r.r, b[:2]); err != nil {
		return nil, err
	}
	n := 2
	var (
		h   FixedHeader
		hl  int
		err error
	)
	for {
		h, hl, err = readFixedHeader(b[:n], r.v)
		if !errors.Is(err, ErrIncomplete) {
			break
		}
		if _, err := io.ReadFull(r.r, b[n:n+1]); err != nil {
			return nil, noEOF(err)
		}
		n++
	}
	if err != nil {
		return nil, err
	}
	if err := checkSize(h, hl, r.v, r.max); err != nil {
		return nil, err
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return nil, noEOF(err)
	}
	p := New(h.Type).(unmarshaler)
	if err := p.Unmarshal(h, body, r.v); err != nil {
		return p, err
	}
	if c, ok := p.(*Connect); ok && r.v == 0 {
		r.v = c.Version
	}
	return p, nil
}

// noEOF turns a clean end of stream inside a packet into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
