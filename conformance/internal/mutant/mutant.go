// Package mutant is a proxy that adds one deliberate defect between a client and a correct MQTT
// broker. The conformance suite's own tests put it in front of the reference broker to see each of
// its checks fail against a broker that breaks the statement the check is about: the broker's own
// fault modes break some statements, and these mutations break the rest, at the wire.
//
// A mutation rewrites, drops, duplicates or injects packets in one direction, or changes the
// WebSocket framing. Each is a plausible broker bug, named for what it does; Mutations lists them
// with the statements they break. The proxy is test equipment: it trusts its peers, keeps all
// state in memory and stops with Close.
package mutant

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gatehouse-iot/gatehouse/broker/wsnet"
	"github.com/gatehouse-iot/gatehouse/conformance/wire"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Mutation names a defect.
type Mutation string

// Proxy accepts MQTT clients over TCP and WebSocket and connects each to the broker over TCP,
// applying its mutation to the packets in between.
type Proxy struct {
	m        Mutation
	upstream string
	ln       net.Listener
	wsLn     net.Listener
	http     *http.Server

	// wg counts the accept loop, the WebSocket server and every connection's pumps.
	wg sync.WaitGroup

	// mu protects conns, closed, wills and delivered.
	mu        sync.Mutex
	conns     map[*session]struct{}
	closed    bool
	wills     map[string]*packet.Will // replay-will: the last will each client id connected with
	delivered map[string]time.Time    // deliver-once: topic and payload, when first delivered
}

// Start listens on 127.0.0.1 (a TCP and a WebSocket listener, both on free ports) and proxies to
// the broker at upstream (host:port of its TCP listener).
func Start(upstream string, m Mutation) (*Proxy, error) {
	if _, ok := Mutations[m]; !ok {
		return nil, fmt.Errorf("mutant: unknown mutation %q", m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mutant: %w", err)
	}
	wsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("mutant: %w", err)
	}
	p := &Proxy{m: m, upstream: upstream, ln: ln, wsLn: wsLn, conns: map[*session]struct{}{},
		wills: map[string]*packet.Will{}, delivered: map[string]time.Time{}}
	p.http = &http.Server{Handler: http.HandlerFunc(p.serveWS), ReadHeaderTimeout: 10 * time.Second}
	p.goFunc(p.acceptLoop)
	p.goFunc(func() { _ = p.http.Serve(wsLn) })
	return p, nil
}

func (p *Proxy) goFunc(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// URL is the proxy's TCP address as mqtt://127.0.0.1:PORT.
func (p *Proxy) URL() string { return "mqtt://" + p.ln.Addr().String() }

// WSURL is the proxy's WebSocket address.
func (p *Proxy) WSURL() string { return "ws://" + p.wsLn.Addr().String() + "/mqtt" }

// Close stops the listeners, closes every connection and waits for every goroutine.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*session, 0, len(p.conns))
	for s := range p.conns {
		conns = append(conns, s)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.http.Shutdown(ctx)
	for _, s := range conns {
		s.close()
	}
	p.wg.Wait()
	return nil
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.serve(c, false)
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (p *Proxy) serveWS(w http.ResponseWriter, r *http.Request) {
	up := upgrader
	if p.m != WSNoSubprotocol {
		// A correct server selects mqtt; the defect ws-no-subprotocol selects none.
		up.Subprotocols = []string{"mqtt"}
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	// Text frames from the client are read like binary ones: a proxy that does so is the defect
	// ws-accept-text; the other mutations never receive one from the suite but the text-frame
	// check, whose expectations they do not judge.
	opts := []wsnet.Option{wsnet.AcceptText()}
	if p.m == WSTextFrames {
		opts = append(opts, wsnet.WriteText())
	}
	p.serve(wsnet.New(ws, opts...), true)
}

// session is one client connection and its connection to the broker.
type session struct {
	p        *Proxy
	client   net.Conn
	broker   net.Conn
	ws       bool
	once     sync.Once
	holdOpen atomic.Bool // keep-refused-open: the broker refused; keep the client's side open
	// Written and read by the client pump only.
	connects int
	retained []string
	// mu protects clientID, version and pinged, which the client pump writes and the broker pump
	// reads.
	mu       sync.Mutex
	clientID string
	version  packet.Version
	pinged   bool
	// cmu serialises writes to the client (both pumps may write to it).
	cmu sync.Mutex
}

func (p *Proxy) serve(c net.Conn, ws bool) {
	b, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	s := &session{p: p, client: c, broker: b, ws: ws, version: packet.V311}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		_ = b.Close()
		return
	}
	p.conns[s] = struct{}{}
	p.mu.Unlock()
	p.goFunc(s.fromClientLoop)
	p.goFunc(s.fromBrokerLoop)
}

// state returns the version packets are decoded for and whether the client has pinged.
func (s *session) state() (packet.Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.pinged
}

func (s *session) close() {
	s.once.Do(func() {
		_ = s.client.Close()
		_ = s.broker.Close()
		s.p.mu.Lock()
		delete(s.p.conns, s)
		s.p.mu.Unlock()
	})
}

func (s *session) toClient(frames ...[]byte) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, f := range frames {
		if _, err := s.client.Write(f); err != nil {
			return
		}
	}
}

func (s *session) toBroker(frames ...[]byte) {
	for _, f := range frames {
		if _, err := s.broker.Write(f); err != nil {
			return
		}
	}
}

func (s *session) fromClientLoop() {
	defer s.close()
	if s.p.m == ClearRetainedAtEnd {
		// The connection ends without DISCONNECT: the deletions go first, then the close.
		defer func() { s.toBroker(s.clearRetained()...) }()
	}
	if s.ws && s.p.m == WSFramePerPacket {
		s.framePerPacketLoop()
		return
	}
	br := bufio.NewReader(s.client)
	for {
		raw, err := wire.ReadFrame(br, 1<<24)
		if err != nil {
			return
		}
		if !s.fromClient(raw) {
			return
		}
	}
}

// framePerPacketLoop is the WebSocket defect ws-frame-per-packet: every frame is taken to hold
// exactly one whole packet, and a frame that does not is dropped.
func (s *session) framePerPacketLoop() {
	ws := s.client.(*wsnet.Conn).WebSocket()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if _, n, err := packet.Decode(msg, s.version, 0); err != nil || n != len(msg) {
			continue
		}
		if !s.fromClient(msg) {
			return
		}
	}
}

func (s *session) fromBrokerLoop() {
	defer func() {
		if !s.holdOpen.Load() {
			s.close()
		}
	}()
	br := bufio.NewReader(s.broker)
	for {
		raw, err := wire.ReadFrame(br, 1<<24)
		if err != nil {
			return
		}
		s.fromBroker(raw)
	}
}

// fromClient applies the mutation to one packet from the client; false ends the connection.
func (s *session) fromClient(raw []byte) bool {
	if s.p.m == NormalizeConnect && len(raw) > 0 && raw[0]>>4 == byte(packet.TypeConnect) {
		raw = repairConnect(raw, 4, 0)
	}
	v, _ := s.state()
	pk, _, decodeErr := packet.Decode(raw, v, 0)
	var err error
	if decodeErr == nil {
		err = packet.Validate(pk, v, packet.Client)
	}
	s.mu.Lock()
	if c, ok := pk.(*packet.Connect); ok && decodeErr == nil {
		s.clientID, s.version = c.ClientID, c.Version
	}
	if _, ok := pk.(*packet.Pingreq); ok {
		s.pinged = true
	}
	s.mu.Unlock()
	out, keep := s.p.client(s, raw, pk, decodeErr, err)
	s.toBroker(out...)
	return keep
}

// fromBroker applies the mutation to one packet from the broker.
func (s *session) fromBroker(raw []byte) {
	v, _ := s.state()
	pk, _, err := packet.Decode(raw, v, 0)
	if err != nil {
		s.toClient(raw)
		return
	}
	s.toClient(s.p.broker(s, raw, pk)...)
}

func enc(p packet.Packet, v packet.Version) []byte {
	b, err := packet.Encode(p, v)
	if err != nil {
		panic(err) // the proxy re-encodes packets it decoded: always representable
	}
	return b
}

// repairConnect rewrites the protocol name of an encoded CONNECT to "MQTT", its protocol level
// to level and clears its reserved connect flag, whatever else is wrong with it. A CONNECT whose
// level is below from is left as it is.
func repairConnect(raw []byte, level, from byte) []byte {
	hl := 1
	for hl < len(raw) && hl < 5 && raw[hl]&0x80 != 0 {
		hl++
	}
	hl++
	if len(raw) < hl+2 {
		return raw
	}
	nameLen := int(raw[hl])<<8 | int(raw[hl+1])
	rest := hl + 2 + nameLen
	if len(raw) < rest+2 || raw[rest] < from {
		return raw
	}
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', level, raw[rest+1] &^ 0x01}, raw[rest+2:]...)
	return append(append([]byte{0x10}, packet.AppendVarint(nil, len(body))...), body...)
}

// uniqOf returns the check's unique string from a client id the suite made ("gh" + 8 characters
// + role), for mutations that act on the check's own topics.
func uniqOf(clientID string) string {
	if len(clientID) >= 10 && strings.HasPrefix(clientID, "gh") {
		return clientID[2:10]
	}
	return ""
}
