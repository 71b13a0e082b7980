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
	"unsafe"
)

// Parking: a connected plain-TCP client that has nothing to read costs no goroutine. When a read
// would block, its goroutine registers the socket with the broker's epoll instance and ends; the
// poller starts a new goroutine when data (or the peer's close) arrives, when the keepalive runs
// out, or when the connection is kicked or closed. An idle connection is then the conn and
// session structs alone, instead of those plus a goroutine stack (2 KB at least), which is what
// lets 10,000 idle devices cost less than 4 KB each.
//
// The socket stays in Go's own poller too, so the read paths that block — a packet split over
// reads, TLS, WebSocket — work as before. In the broker's epoll set it is armed for one event
// only when it parks (register), so busy connections never wake the poller goroutine.

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

	// readFn reads into buf, leaving n and errno; with wait set it asks Go's poller to wait when
	// nothing is there. Built once so that a read allocates nothing.
	readFn func(fd uintptr) bool
	wait   bool
	buf    []byte
	n      int
	errno  syscall.Errno
	// writeFn writes c.out without waiting (under outMu, see writeNow), leaving wn and werrno.
	writeFn func(fd uintptr) bool
	wn      int
	werrno  syscall.Errno
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
	return !parkingDisabled && c.connected && c.pk.raw != nil
}

// initRaw prepares the raw socket access of a plain-TCP connection (non-blocking reads for
// parking, non-blocking writes for writeNow). Called by newConn, before any other goroutine can
// see the connection.
func (c *conn) initRaw() {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	c.pk.raw = raw
	c.pk.writeFn = func(fd uintptr) bool {
		c.pk.wn, c.pk.werrno = rawIO(syscall.SYS_WRITE, fd, c.out)
		return true
	}
	c.pk.readFn = func(fd uintptr) bool {
		c.pk.n, c.pk.errno = rawIO(syscall.SYS_READ, fd, c.pk.buf)
		return !c.pk.wait || c.pk.errno != syscall.EAGAIN
	}
}

// rawIO is read(2) or write(2) on a non-blocking socket, retried on EINTR. It is a raw system
// call: the socket never blocks, so the goroutine keeps its processor, and the runtime is not
// told of a system call that could block — which, when every processor was idle, would wake the
// runtime's monitor thread (sysmon) for every message at moderate rates, a sleep and a wake-up
// of one more thread each time.
func rawIO(trap uintptr, fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	for {
		n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != syscall.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(n), 0
		}
	}
}

// readNow reads what the socket holds without waiting: again is true when there is nothing.
func (c *conn) readNow(buf []byte) (n int, err error, again bool) {
	c.pk.buf = buf
	rerr := c.pk.raw.Read(c.pk.readFn)
	n, errno := c.pk.n, c.pk.errno
	c.pk.buf, c.pk.errno = nil, 0
	switch {
	case rerr != nil:
		return 0, rerr, false
	case errno == syscall.EAGAIN:
		return 0, nil, true
	case errno != 0:
		return 0, os.NewSyscallError("read", errno), false
	case n == 0:
		return 0, io.EOF, false
	}
	return n, nil, false
}

// readWait reads into buf, waiting in Go's poller until data comes or the read deadline passes;
// it is c.nc.Read without the runtime's system call bookkeeping (see rawIO).
func (c *conn) readWait(buf []byte) (int, error) {
	c.pk.buf, c.pk.wait = buf, true
	rerr := c.pk.raw.Read(c.pk.readFn)
	n, errno := c.pk.n, c.pk.errno
	c.pk.buf, c.pk.errno, c.pk.wait = nil, 0, false
	switch {
	case rerr != nil:
		return 0, rerr
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// serveEvents serves a connected TCP client until it has nothing to read, then parks it; the
// poller calls it again on the next event. It cleans up when the connection ends.
func (c *conn) serveEvents() {
	// woken: the goroutine was started by an event, so data is probably waiting; after a burst
	// that drained the socket, it is not, and a read attempt would only cost a system call.
	woken := true
	for {
		if c.kicked.Load() {
			c.burst(0, nil) // what the client had sent is handled first
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

// linger waits up to parkLinger for data; 0 and no error means none came. The deadline it sets
// is kept for the next lingers while at least half of parkLinger of it remains, so a client that
// sends every few milliseconds costs a timer update every parkLinger/2 or so, not two per
// message; it may therefore wait between parkLinger/2 and parkLinger. burst sets its own
// deadline (setReadDeadline) before the reads it makes itself.
func (c *conn) linger() (int, error) {
	wait := parkLinger
	if d := c.keepaliveDue(); d > 0 && d < wait {
		wait = d
	}
	now := time.Now()
	if dl := c.rdl; dl.Before(now.Add(wait/2)) || dl.After(now.Add(wait)) {
		c.setDeadline(now.Add(wait))
	}
	m, err := c.readWait(c.small[:])
	if m == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !c.kicked.Load() {
		if d := c.keepaliveDue(); d > 0 && d <= parkLinger {
			return 0, err // the keepalive itself ran out
		}
		// No deadline while parked: the next reads (readNow) would fail on the one that passed.
		c.setDeadline(time.Time{})
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

// register arms c's socket in the epoll set for one event (EPOLLONESHOT), adding it on first use
// and starting the poller on first use. The event is level-triggered, so data that came before
// the arming fires it at once; once it has fired, the socket reports nothing more until it is
// armed again by the next park, so a connection that is being served costs the poller nothing.
func (p *poller) register(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	if !p.started {
		if err := p.start(); err != nil {
			p.b.log.Warn("parking idle connections unavailable; each keeps a goroutine", "err", err)
			p.stopped = true
			return false
		}
	}
	op, id := syscall.EPOLL_CTL_MOD, c.pk.id
	if !c.pk.registered {
		p.nextID++
		if p.nextID <= 0 {
			p.nextID = 1
		}
		for p.conns[p.nextID] != nil {
			p.nextID++
		}
		op, id = syscall.EPOLL_CTL_ADD, p.nextID
	}
	var cerr error
	err := c.pk.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: id}
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		return false
	}
	if !c.pk.registered {
		c.pk.id, c.pk.registered = id, true
		p.conns[id] = c
	}
	return true
}

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
			n, werr = epollWaitNow(fd, events)
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

// epollWaitNow collects the events of the epoll set epfd without waiting, as a raw system call
// (see rawIO): epoll_pwait with a zero timeout and no signal mask.
func epollWaitNow(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
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
// socket did not take stays in c.out for the writer goroutine. Called by a read goroutine with
// outMu held, only when no writer goroutine runs (flush.go).
func (c *conn) writeNow() bool {
	if c.pk.writeFn == nil || c.closing || c.broken {
		return false
	}
	if err := c.pk.raw.Write(c.pk.writeFn); err != nil {
		return false // closed: the writer goroutine finds out and marks the connection broken
	}
	n, errno := c.pk.wn, c.pk.werrno
	c.pk.werrno = 0
	if errno != 0 || n <= 0 {
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

// readAvailable reads what the socket holds without waiting, whatever its read deadline (a kick
// sets one in the past): false when there is nothing, at the end of the stream, on an error, and
// on connections other than plain TCP.
func (c *conn) readAvailable(b []byte) (int, bool) {
	if c.pk.raw == nil || len(b) == 0 {
		return 0, false
	}
	var n int
	var errno syscall.Errno
	if err := c.pk.raw.Control(func(fd uintptr) { n, errno = rawIO(syscall.SYS_READ, fd, b) }); err != nil {
		return 0, false
	}
	return n, errno == 0 && n > 0
}
