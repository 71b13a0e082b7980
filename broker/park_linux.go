package broker

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Parking: a connected plain-TCP client that has nothing to read costs no goroutine. When a read
// would block, its goroutine registers the socket with the broker's epoll instance and ends; the
// poller starts a new goroutine when data (or the peer's close) arrives, when the keepalive runs
// out, or when the connection is kicked or closed. An idle connection is then the conn and
// session structs alone, instead of those plus a goroutine stack (2 KB at least), which is what
// lets 10,000 idle devices cost less than 4 KB each.
//
// The socket stays in Go's own poller too (edge-triggered, as ours), so the read paths that
// block — a packet split over reads, TLS, WebSocket — work as before.

// Park states of a connection.
const (
	running int32 = iota // a goroutine serves the connection
	parked               // no goroutine; the poller starts one on the next event
	pending              // running, and an event arrived meanwhile: read again before parking
)

// parking is a connection's part in parking. Its fields are touched only through atomics, under
// poller.mu (id, registered) or by the goroutine serving the connection (timer).
type parking struct {
	state      atomic.Int32
	timedOut   atomic.Bool // the keepalive ran out while parked
	registered bool        // in the epoll set (under poller.mu)
	id         int32       // key in poller.conns (under poller.mu)
	timer      *time.Timer // keepalive while parked; created on first park
	raw        syscall.RawConn

	// readFn reads into buf, leaving n and err; built once so that a read allocates nothing.
	readFn func(fd uintptr) bool
	buf    []byte
	n      int
	err    error
	// writeFn writes c.out without waiting (under outMu, see writeNow), leaving wn and werr.
	writeFn func(fd uintptr) bool
	wn      int
	werr    error
}

// poller is the broker's epoll instance for parked connections. The epoll descriptor itself
// waits in Go's network poller (an epoll set is readable when it has events), so the poller
// goroutine never blocks a thread in epoll_wait and the scheduler keeps all its processors.
type poller struct {
	b *Broker

	// mu protects epfd, file, raw, started, stopped, conns and nextID.
	mu      sync.Mutex
	epfd    int
	file    *os.File
	raw     syscall.RawConn
	started bool
	stopped bool
	conns   map[int32]*conn
	nextID  int32
}

// parkingDisabled turns parking off (every connection keeps its goroutine), for comparison.
var parkingDisabled = os.Getenv("GATEHOUSE_NO_PARKING") != ""

// pollable reports whether the connection can be parked: a connected client on plain TCP.
func (c *conn) pollable() bool {
	if parkingDisabled || !c.connected {
		return false
	}
	if c.pk.raw != nil {
		return true
	}
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	c.pk.raw = raw
	c.pk.writeFn = func(fd uintptr) bool {
		for {
			c.pk.wn, c.pk.werr = syscall.Write(int(fd), c.out)
			if c.pk.werr != syscall.EINTR {
				return true
			}
		}
	}
	c.pk.readFn = func(fd uintptr) bool {
		for {
			c.pk.n, c.pk.err = syscall.Read(int(fd), c.pk.buf)
			if c.pk.err != syscall.EINTR {
				return true
			}
		}
	}
	return true
}

// readNow reads what the socket holds without waiting: again is true when there is nothing.
func (c *conn) readNow(buf []byte) (n int, err error, again bool) {
	c.pk.buf = buf
	rerr := c.pk.raw.Read(c.pk.readFn)
	n, err = c.pk.n, c.pk.err
	c.pk.buf, c.pk.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr, false
	case errors.Is(err, syscall.EAGAIN):
		return 0, nil, true
	case err != nil:
		return 0, os.NewSyscallError("read", err), false
	case n == 0:
		return 0, io.EOF, false
	}
	return n, nil, false
}

// serveEvents serves a connected TCP client until it has nothing to read, then parks it; the
// poller calls it again on the next event. It cleans up when the connection ends.
func (c *conn) serveEvents() {
	// woken: the goroutine was started by an event, so data is probably waiting; after a burst
	// that drained the socket, it is not, and a read attempt would only cost a system call.
	woken := true
	for {
		if c.kicked.Load() {
			c.endParked()
			return
		}
		var m int
		var err error
		again := !woken
		if woken {
			m, err, again = c.readNow(c.small[:])
			if again && c.pk.timedOut.Swap(false) {
				c.readError(os.ErrDeadlineExceeded)
				c.endParked()
				return
			}
		}
		if again {
			// A client that was just active usually sends again soon (the next message, the
			// acknowledgement of what it was sent): wait a little in Go's poller before parking,
			// so that busy connections never pay for parking.
			m, err = c.linger()
			if m == 0 && err == nil {
				if c.b.poller.park(c) {
					return
				}
				woken = true
				continue
			}
		}
		// Something arrived: the client is alive, whatever the keepalive timer said meanwhile.
		c.pk.timedOut.Store(false)
		if !c.burst(m, err) {
			c.endParked()
			return
		}
		woken = false
	}
}

// parkLinger is how long a connection waits for more data before it parks.
const parkLinger = 50 * time.Millisecond

// linger waits up to parkLinger for data; 0 and no error means none came.
func (c *conn) linger() (int, error) {
	wait := parkLinger
	if d := c.keepaliveDue(); d > 0 && d < wait {
		wait = d
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	m, err := c.nc.Read(c.small[:])
	// burst sets the keepalive deadline before its own reads; without a keepalive there is none.
	_ = c.nc.SetReadDeadline(time.Time{})
	if m == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.kicked.Load() {
		if d := c.keepaliveDue(); d > 0 && d <= parkLinger {
			return 0, err // the keepalive itself ran out
		}
		return 0, nil
	}
	return m, err
}

// endParked removes the connection from the poller and cleans up.
func (c *conn) endParked() {
	if t := c.pk.timer; t != nil {
		t.Stop()
	}
	c.b.poller.forget(c)
	c.cleanup()
}

// keepaliveDue is how long a parked client may stay silent; 0 for ever.
func (c *conn) keepaliveDue() time.Duration {
	if c.keepAlive > 0 && !c.faults.has(FaultNoKeepaliveTimeout) {
		return c.keepAlive
	}
	return 0
}

// park registers c and ends its goroutine's service, returning true; it returns false when an
// event arrived meanwhile (read again). When the socket cannot be registered, c is served with
// blocking reads until it ends, as an unparkable connection would be.
func (p *poller) park(c *conn) bool {
	if !p.register(c) {
		c.serveBlocking()
		return true
	}
	if d := c.keepaliveDue(); d > 0 {
		d -= parkLinger // silent for parkLinger already
		if c.pk.timer == nil {
			c.pk.timer = time.AfterFunc(d, func() {
				c.pk.timedOut.Store(true)
				c.wakeParked()
			})
		} else {
			c.pk.timer.Reset(d)
		}
	}
	if c.pk.state.CompareAndSwap(running, parked) {
		return true
	}
	// pending: data came in between the read and here.
	c.pk.state.Store(running)
	if c.pk.timer != nil {
		c.pk.timer.Stop()
	}
	return false
}

// serveBlocking serves c with blocking reads until it ends (used when epoll is unavailable).
func (c *conn) serveBlocking() {
	for !c.kicked.Load() {
		c.setReadDeadline()
		m, err := c.nc.Read(c.small[:])
		if !c.burst(m, err) {
			break
		}
	}
	c.endParked()
}

// wakeParked starts a goroutine for c if it is parked, or marks the event for its running one.
func (c *conn) wakeParked() {
	for {
		switch c.pk.state.Load() {
		case parked:
			if c.pk.state.CompareAndSwap(parked, running) {
				if t := c.pk.timer; t != nil && !c.pk.timedOut.Load() {
					t.Stop()
				}
				c.b.goFunc(c.serveEvents)
				return
			}
		case running:
			if c.pk.state.CompareAndSwap(running, pending) {
				return
			}
		default:
			return
		}
	}
}

// register adds c's socket to the epoll set once (edge-triggered: one event per arrival) and
// starts the poller on first use.
func (p *poller) register(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	if c.pk.registered {
		return true
	}
	if !p.started {
		if err := p.start(); err != nil {
			p.b.log.Warn("parking idle connections unavailable; each keeps a goroutine", "err", err)
			p.stopped = true
			return false
		}
	}
	p.nextID++
	if p.nextID <= 0 {
		p.nextID = 1
	}
	for p.conns[p.nextID] != nil {
		p.nextID++
	}
	id := p.nextID
	var cerr error
	err := c.pk.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: id}
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		return false
	}
	c.pk.id, c.pk.registered = id, true
	p.conns[id] = c
	return true
}

// epollET is EPOLLET as the unsigned event mask (syscall declares it as a negative int).
const epollET = 1 << 31

// forget removes c from the poller. The socket leaves the epoll set when it is closed.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !c.pk.registered {
		return
	}
	delete(p.conns, c.pk.id)
	c.pk.registered = false
	if !p.stopped {
		_ = c.pk.raw.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
}

// start creates the epoll instance and starts the poller goroutine. Called with mu held.
func (p *poller) start() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return err
	}
	p.epfd, p.file, p.raw, p.started = epfd, f, raw, true
	p.conns = make(map[int32]*conn)
	p.b.goFunc(p.loop)
	return nil
}

// loop waits for events on parked sockets and wakes their connections, until the epoll file is
// closed (shutdown).
func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 256)
	woken := make([]*conn, 0, 256)
	for {
		var n int
		var werr error
		err := p.raw.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), events, 0)
			// Nothing yet: return false to wait in Go's poller until the set is readable.
			return werr != nil && werr != syscall.EINTR || n > 0
		})
		if err == nil && werr != nil {
			err = os.NewSyscallError("epoll_wait", werr)
		}
		if err != nil {
			p.mu.Lock()
			closed := p.stopped
			p.mu.Unlock()
			if !closed {
				p.b.log.Error("parked connections: epoll failed; they are woken and keep goroutines", "err", err)
			}
			p.stop()
			return
		}
		woken = woken[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			if c := p.conns[ev.Fd]; c != nil {
				woken = append(woken, c)
			}
		}
		p.mu.Unlock()
		for _, c := range woken {
			c.wakeParked()
		}
	}
}

// stop closes the epoll instance (if shutdown has not) and wakes every parked connection, which
// then serves itself with blocking reads. Called by the poller goroutine as it ends.
func (p *poller) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		_ = p.file.Close()
	}
	conns := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.wakeParked()
	}
}

// shutdown closes the epoll instance, which ends the poller goroutine (Broker.Shutdown).
func (p *poller) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started && !p.stopped {
		p.stopped = true
		_ = p.file.Close()
	}
}

// writeNow writes c.out with one non-blocking write and reports whether all of it went; what the
// socket did not take stays in c.out for the writer goroutine. Called by the read goroutine with
// outMu held, only when no writer goroutine runs.
func (c *conn) writeNow() bool {
	if c.pk.writeFn == nil || c.closing || c.broken {
		return false
	}
	if err := c.pk.raw.Write(c.pk.writeFn); err != nil {
		return false // closed: the writer goroutine finds out and marks the connection broken
	}
	n, err := c.pk.wn, c.pk.werr
	c.pk.werr = nil
	if err != nil || n <= 0 {
		return false // EAGAIN (socket full) or an error: left to the writer goroutine
	}
	c.b.stats.BytesSent.Add(uint64(n))
	if n < len(c.out) {
		c.out = c.out[:copy(c.out, c.out[n:])]
		return false
	}
	putBuf(c.out)
	c.out, c.q0 = nil, 0
	return true
}
