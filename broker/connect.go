package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	persist "github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// handle processes one decoded packet; it returns false when the connection must end.
func (c *conn) handle(p packet.Packet) bool {
	c.traceIn(p)
	if !c.connected {
		cp, ok := p.(*packet.Connect)
		if !ok {
			// MQTT-3.1.0-1: the first packet from the client must be CONNECT.
			c.b.stats.ProtocolErrors.Add(1)
			c.b.log.Warn("first packet is not CONNECT; closing connection", "remote", c.remote, "rule", "MQTT-3.1.0-1", "packet", p.Type().String())
			c.finish(nil)
			return false
		}
		return c.onConnect(cp)
	}
	v := c.sessVersion
	if err := packet.Validate(p, v, packet.Client); err != nil {
		var pe *packet.Error
		if errors.As(err, &pe) {
			if pub, ok := p.(*packet.Publish); ok && c.faults.has(FaultAcceptWildcardPublish) && strings.ContainsAny(pub.Topic, "+#") && pe.Code == packet.TopicNameInvalid {
				return c.onPublish(pub)
			}
			return c.violation(pe.Code, pe.Rule, pe.Error())
		}
		return c.violation(packet.ProtocolError, "", err.Error())
	}
	switch p := p.(type) {
	case *packet.Publish:
		return c.onPublish(p)
	case *packet.Puback:
		c.sess.onPuback(p, &c.fl)
	case *packet.Pubrec:
		c.sess.onPubrec(p, &c.fl)
	case *packet.Pubrel:
		c.onPubrel(p)
	case *packet.Pubcomp:
		c.sess.onPubcomp(p, &c.fl)
	case *packet.Subscribe:
		return c.onSubscribe(p)
	case *packet.Unsubscribe:
		return c.onUnsubscribe(p)
	case *packet.Pingreq:
		c.writeControlBy(&packet.Pingresp{}, c.sessVersion, &c.fl)
	case *packet.Disconnect:
		return c.onDisconnect(p)
	case *packet.Connect:
		// MQTT-3.1.0-2: a second CONNECT is a protocol violation.
		return c.violation(packet.ProtocolError, "MQTT-3.1.0-2", "second CONNECT on one connection")
	case *packet.Auth:
		// Enhanced authentication is not offered (no Authentication Method accepted at CONNECT),
		// so a client must send no AUTH (MQTT-4.12.0-7): it is a protocol error.
		return c.violation(packet.ProtocolError, "MQTT-4.12.0-7", "AUTH without an authentication method")
	default:
		return c.violation(packet.ProtocolError, "§2.1.2", p.Type().String()+" is sent by a server, not a client")
	}
	return true
}

// onConnect validates and authenticates a CONNECT, attaches the session and answers CONNACK.
func (c *conn) onConnect(cp *packet.Connect) bool {
	b := c.b
	v := cp.Version
	c.sessVersion = v
	c.setVersion(v)
	refuse := func(code packet.ReasonCode, rule, reason string) bool {
		b.stats.ConnectsRefused.Add(1)
		b.log.Warn("connection refused", "client", cp.ClientID, "remote", c.remote, "version", v.String(),
			"code", code.String(), "rule", rule, "reason", reason)
		ack := &packet.Connack{Code: packet.ConnackCode(v, code)}
		if v == packet.V5 && reason != "" && !(cp.Props.Present.Has(packet.PropRequestProblemInfo) && cp.Props.RequestProblemInfo == 0) {
			ack.Props.ReasonString = reason
			if m := cp.Props.MaximumPacketSize; m > 0 && ack.Size(v) > int(m) {
				// MQTT-3.2.2-19: no reason string that would exceed the client's Maximum Packet Size.
				ack.Props.ReasonString = ""
			}
		}
		c.send(ack)
		c.finish(nil)
		return false
	}
	if err := packet.Validate(cp, v, packet.Client); err != nil {
		var pe *packet.Error
		if errors.As(err, &pe) {
			if v != packet.V5 && pe.Code != packet.ClientIdentifierNotValid {
				// 3.x: a malformed CONNECT is closed without CONNACK (MQTT-3.1.4-1).
				b.stats.ProtocolErrors.Add(1)
				b.log.Warn("bad CONNECT; closing connection", "remote", c.remote, "rule", pe.Rule, "err", err)
				c.finish(nil)
				return false
			}
			return refuse(pe.Code, pe.Rule, pe.Error())
		}
		return refuse(packet.MalformedPacket, "", err.Error())
	}

	clientID := strings.Clone(cp.ClientID)
	assigned := false
	if clientID == "" {
		switch {
		case v == packet.V31:
			return refuse(packet.ClientIdentifierNotValid, "MQTT 3.1 §3.1", "empty client identifier")
		case v == packet.V311 && !cp.CleanStart:
			// MQTT-3.1.3-8: an empty client id needs CleanSession 1.
			return refuse(packet.ClientIdentifierNotValid, "MQTT-3.1.3-8", "empty client identifier with CleanSession 0")
		}
		// MQTT-3.1.3-6 (3.1.1), MQTT-3.1.3-6 (5.0): the server assigns a unique client id.
		clientID = newClientID()
		assigned = v == packet.V5
	}
	if v == packet.V5 && cp.Props.AuthMethod != "" {
		return refuse(packet.BadAuthenticationMethod, "MQTT-4.12.0-1", "enhanced authentication is not supported")
	}

	c.clientID = clientID
	c.identity = auth.Identity{
		ClientID:    clientID,
		Username:    strings.Clone(cp.Username),
		Password:    append([]byte(nil), cp.Password...),
		HasUsername: cp.UsernameFlag,
		HasPassword: cp.PasswordFlag,
		CertCN:      c.peerCN(),
		Remote:      c.remote,
	}
	if code, reason := b.authenticate(&c.identity, c.lis, v); code != packet.Success {
		// MQTT-3.1.4-2 (5.0), §3.1.4 (3.1.1, unnumbered): a failed authentication check closes
		// the connection, after a CONNACK saying why.
		rule := "§3.1.4"
		if v == packet.V5 {
			rule = "MQTT-3.1.4-2"
		}
		return refuse(code, rule, reason)
	}
	c.faults = b.faults.forClient(clientID)

	// Will: kept with the connection, published if it ends without DISCONNECT 0x00.
	if w := cp.Will; w != nil {
		if acl := b.cfg.ACL; acl != nil && !acl.Allow(c.identity, w.Topic, auth.Write) {
			return refuse(packet.NotAuthorized, "§3.1.2.5", "will topic not authorised")
		}
		if w.Retain && b.cfg.RetainUnavailable && v == packet.V5 {
			// MQTT-3.2.2-13: will retain when we offer no retained messages: CONNACK 0x9A.
			return refuse(packet.RetainNotSupported, "MQTT-3.2.2-13", "retained messages are not available")
		}
		c.will = newWill(newMessage(w.Topic, w.Payload, w.QoS, w.Retain, &w.Props, clientID, time.Now()), &w.Props)
	}

	// Keepalive: the server may impose its own (5.0 Server Keep Alive, MQTT-3.2.2-21).
	ka := cp.KeepAlive
	var serverKA bool
	if m := b.cfg.MaxKeepAlive; m > 0 && (ka == 0 || ka > m) {
		if v == packet.V5 {
			ka, serverKA = m, true
		}
	}
	c.keepAlive = time.Duration(ka) * time.Second * 3 / 2

	expiry := uint32(0)
	if v == packet.V5 {
		expiry = cp.Props.SessionExpiry
		if cp.Props.Present.Has(packet.PropReceiveMaximum) {
			c.recvMax = int(cp.Props.ReceiveMaximum)
		}
		c.maxOut = int(cp.Props.MaximumPacketSize)
		if cp.Props.Present.Has(packet.PropRequestProblemInfo) {
			c.problemInfo = cp.Props.RequestProblemInfo == 1
		}
	} else if !cp.CleanStart {
		expiry = persist.NeverExpires
	}
	expiryCapped := false
	if m := b.cfg.MaxSessionExpiry; m > 0 && expiry > m {
		expiry, expiryCapped = m, true
	}

	if c.faults.has(FaultSlowConnack) {
		select {
		case <-time.After(b.cfg.SlowConnackDelay):
		case <-b.quit:
			c.finish(nil)
			return false
		}
	}

	ack := &packet.Connack{}
	if v == packet.V5 {
		pr := &ack.Props
		if b.cfg.MaxInflight != 65535 {
			pr.ReceiveMaximum = b.cfg.MaxInflight
		}
		if b.cfg.MaxPacketSize > 0 {
			pr.MaximumPacketSize = b.cfg.MaxPacketSize
		}
		pr.TopicAliasMaximum = b.cfg.TopicAliasMaximum
		if b.cfg.RetainUnavailable {
			pr.RetainAvailable = 0
			pr.Present.Add(packet.PropRetainAvailable)
		}
		if assigned {
			pr.AssignedClientID = clientID
		}
		if serverKA {
			pr.ServerKeepAlive = ka
			pr.Present.Add(packet.PropServerKeepAlive)
		}
		if expiryCapped {
			pr.SessionExpiry = expiry
			pr.Present.Add(packet.PropSessionExpiry)
		}
		if cp.Props.RequestResponseInfo == 1 {
			pr.ResponseInfo = b.cfg.ResponseInformation + clientID
		}
	}
	if !b.attach(c, cp.CleanStart, expiry, ack) {
		c.finish(nil)
		return false
	}
	return true
}

// authenticate decides whether the identity may connect; it may set the username from the
// certificate (use_identity_as_username). The code it returns is a 5.0 reason code, which
// ConnackCode maps to the 3.x return code.
//
// Credentials that do not verify (unknown user, wrong or missing password) are 0x86 "Bad User
// Name or Password" in 5.0, but 0x05 "not authorized" in 3.1 and 3.1.1: their Table 3.1 keeps
// 0x04 "bad user name or password" for user name or password data that is malformed, and
// well-formed credentials that are refused are the client not being authorized to connect
// (mosquitto answers 0x05 too). Malformed credential data never reaches this point: in 3.x a
// password without a user name (MQTT-3.1.2-22) or a user name that is not UTF-8 makes the CONNECT
// malformed, and it is closed without CONNACK (MQTT-3.1.4-1), so the broker sends no 0x04.
func (b *Broker) authenticate(id *auth.Identity, l Listener, v packet.Version) (packet.ReasonCode, string) {
	if l.UseIdentityAsUsername {
		if id.CertCN == "" {
			return packet.NotAuthorized, "a client certificate is required"
		}
		id.Username, id.HasUsername = id.CertCN, true
		return packet.Success, ""
	}
	if !id.HasUsername {
		if b.cfg.AllowAnonymous {
			return packet.Success, ""
		}
		return packet.NotAuthorized, "anonymous clients are not allowed"
	}
	if b.cfg.Authenticator == nil {
		if b.cfg.AllowAnonymous {
			return packet.Success, ""
		}
		return packet.NotAuthorized, "no password file configured"
	}
	err := b.cfg.Authenticator.Authenticate(*id)
	switch {
	case err == nil:
		return packet.Success, ""
	case errors.Is(err, auth.ErrNotAuthorized):
		return packet.NotAuthorized, "not authorised"
	case v != packet.V5:
		// Table 3.1 (3.1.1): well-formed credentials that do not verify are 0x05, not 0x04.
		return packet.NotAuthorized, "bad user name or password"
	default:
		return packet.BadUserNameOrPassword, "bad user name or password"
	}
}

func newClientID() string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	return "gatehouse-" + hex.EncodeToString(r[:])
}

// attach binds the connection to its session (taking over a connected one, MQTT-3.1.4-3),
// writes CONNACK and re-sends what the session owes the client. It returns false when the broker
// is shutting down.
//
// Nothing of the new connection comes before the end of the previous one: attach waits until
// the previous connection of the client id is wound up — its will published, its ended session
// dismantled — so that the will a device left behind ({"online":false}) is routed and retained
// before anything the device publishes once reconnected (README.md, "Takeover").
func (b *Broker) attach(c *conn, cleanStart bool, expiry uint32, ack *packet.Connack) bool {
	id := c.clientID
	for {
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			return false
		}
		if wd := b.winding[id]; wd != nil {
			done := wd.done
			b.mu.Unlock()
			b.log.Debug("waiting for the previous connection to wind up", "client", id)
			select {
			case <-done:
			case <-b.quit:
				return false
			}
			continue
		}
		s := b.sessions[id]
		if s != nil {
			s.mu.Lock()
			old := s.conn
			s.mu.Unlock()
			if old != nil {
				b.mu.Unlock()
				// MQTT-3.1.4-2 (3.1.1), MQTT-3.1.4-3 (5.0): the existing connection is closed, 5.0 with
				// DISCONNECT 0x8E.
				b.stats.ClientsTakenOver.Add(1)
				b.log.Info("client taken over", "client", id, "old_remote", old.remote, "new_remote", c.remote)
				old.kick(packet.SessionTakenOver)
				select {
				case <-old.done:
				case <-b.quit:
					return false
				case <-time.After(b.cfg.WriteTimeout + time.Second):
					b.log.Error("taken-over connection did not end", "client", id)
					return false
				}
				continue
			}
		}
		if s != nil && cleanStart {
			// MQTT-3.1.2-4 (5.0) / MQTT-3.1.2-6 (3.1.1): Clean Start discards the session. It is
			// wound up before the new one exists: its stored state is deleted before the new
			// session saves its own under the same id, and a will it still held goes out now
			// (MQTT-3.1.2-8 (5.0): a delayed will is published when its session ends).
			s.mu.Lock()
			s.ended = true
			s.mu.Unlock()
			delete(b.sessions, id)
			b.beginWindLocked(id)
			b.mu.Unlock()
			b.deleteStored(id)
			if w := b.dismantle(s); w != nil {
				b.publishWill(w)
			}
			b.endWind(id)
			continue
		}
		present := s != nil
		if s == nil {
			s = newSession(b, id)
			b.sessions[id] = s
		}
		s.mu.Lock()
		b.mu.Unlock()

		s.stopTimersLocked()
		if s.pendingWill != nil {
			// MQTT-3.1.3-9: a new connection before the will delay ends cancels the will.
			s.pendingWill = nil
		}
		s.version = c.sessVersion
		s.identity = c.identity
		s.faults = c.faults
		s.expiry = expiry
		s.window = min(c.recvMax, int(b.cfg.MaxInflight))
		c.sess = s
		// MQTT-3.2.2-1/-2 (3.1.1), MQTT-3.2.2-2/-3 (5.0): Session Present.
		ack.SessionPresent = present && !c.faults.has(FaultNoSessionPresent)
		c.send(ack)
		c.connected = true
		s.conn = c
		s.online.Store(true)
		b.stats.ClientsConnected.Add(1)
		b.stats.ClientsTotal.Add(1)
		s.persistSave()
		s.resume()
		s.mu.Unlock()
		b.log.Info("client connected", "client", id, "remote", c.remote, "version", c.sessVersion.String(),
			"clean_start", cleanStart, "session_present", present, "keepalive", c.keepAlive*2/3)
		return true
	}
}

// detach ends the connection's hold on its session: the will is published or delayed and the
// session ends or waits for its expiry.
func (b *Broker) detach(c *conn) {
	s := c.sess
	b.stats.ClientsConnected.Add(-1)
	if s == nil {
		return
	}
	w := c.will
	if w != nil && c.faults.has(FaultNoWill) {
		w = nil
	}
	b.mu.Lock()
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	s.conn = nil
	s.online.Store(false)
	end := s.expiry == 0
	if end {
		s.ended = true
		if b.sessions[s.id] == s {
			delete(b.sessions, s.id)
		}
	}
	var publishNow *willMsg
	if w != nil {
		delay := w.delay
		if delay > s.expiry {
			// MQTT-3.1.3-9: the will is published when the session ends, if that is sooner.
			delay = s.expiry
		}
		if delay == 0 || end || c.sessVersion != packet.V5 {
			publishNow = w
		} else if !b.closing {
			w.due = time.Now().Add(time.Duration(delay) * time.Second)
			s.pendingWill = w
			s.willTimer = b.afterFunc(time.Duration(delay)*time.Second, func() { b.delayedWill(s, w) })
		}
	}
	if !end && s.expiry != persist.NeverExpires && !b.closing {
		s.expireTimer = b.afterFunc(time.Duration(s.expiry)*time.Second, func() { b.expireSession(s) })
	}
	if !end {
		s.persistSave()
	}
	// The will and the end of the session happen outside the locks; until they are done, a new
	// connection of the client id waits (attach).
	wind := end || publishNow != nil
	if wind {
		b.beginWindLocked(s.id)
	}
	s.mu.Unlock()
	b.mu.Unlock()

	b.log.Info("client disconnected", "client", s.id, "remote", c.remote, "will", publishNow != nil, "session_ended", end)
	if end {
		b.endSession(s)
	}
	if publishNow != nil {
		b.publishWill(publishNow)
	}
	if wind {
		b.endWind(s.id)
	}
}

// winding counts the wind-ups of one client id in progress (see beginWindLocked).
type winding struct {
	n    int
	done chan struct{} // closed when n drops to 0
}

// beginWindLocked records that the previous connection or session of client id is being wound
// up outside the locks: its will published, its ended session dismantled and deleted from the
// Store. attach admits no connection of that client id until endWind. Called with b.mu held.
func (b *Broker) beginWindLocked(id string) {
	wd := b.winding[id]
	if wd == nil {
		if b.winding == nil {
			b.winding = make(map[string]*winding)
		}
		wd = &winding{done: make(chan struct{})}
		b.winding[id] = wd
	}
	wd.n++
}

// endWind ends a wind-up begun by beginWindLocked.
func (b *Broker) endWind(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wd := b.winding[id]
	wd.n--
	if wd.n == 0 {
		delete(b.winding, id)
		close(wd.done)
	}
}

// endSession removes an ended session's subscriptions and stored state.
func (b *Broker) endSession(s *session) {
	b.dismantle(s)
	b.deleteStored(s.id)
}

// deleteStored removes a session from the Store.
func (b *Broker) deleteStored(id string) {
	if st := b.cfg.Store; st != nil {
		if err := st.DeleteSession(id); err != nil {
			b.log.Error("session store: delete failed", "client", id, "err", err)
		}
	}
}

// dismantle drops an ended session's subscriptions, messages and timers, and returns its delayed
// will if one was pending.
func (b *Broker) dismantle(s *session) *willMsg {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	w := s.pendingWill
	s.pendingWill = nil
	s.stopTimersLocked()
	b.stats.Inflight.Add(-int64(len(s.byPID)))
	b.stats.Queued.Add(-int64(len(s.queue)))
	s.inflight, s.queue, s.byPID = nil, nil, nil
	s.mu.Unlock()
	for f := range subs {
		if b.subs.Unsubscribe(s, f) {
			b.stats.Subscriptions.Add(-1)
		}
	}
	return w
}

func (b *Broker) delayedWill(s *session, w *willMsg) {
	b.mu.Lock()
	s.mu.Lock()
	if s.pendingWill != w || s.conn != nil {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	s.pendingWill = nil
	s.willTimer = nil
	s.persistSave()
	b.beginWindLocked(s.id)
	s.mu.Unlock()
	b.mu.Unlock()
	b.publishWill(w)
	b.endWind(s.id)
}

func (b *Broker) expireSession(s *session) {
	b.mu.Lock()
	s.mu.Lock()
	if s.conn != nil || s.ended {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	s.ended = true
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	w := s.pendingWill
	s.pendingWill = nil
	b.beginWindLocked(s.id)
	s.mu.Unlock()
	b.mu.Unlock()
	b.stats.SessionsExpired.Add(1)
	b.log.Info("session expired", "client", s.id)
	b.endSession(s)
	if w != nil {
		b.publishWill(w)
	}
	b.endWind(s.id)
}

// newWill keeps a will with its delay and message expiry interval (props are the will properties).
func newWill(m *message, props *packet.Properties) *willMsg {
	w := &willMsg{msg: m, delay: props.WillDelay}
	if props.Present.Has(packet.PropMessageExpiry) || props.MessageExpiry != 0 {
		w.expiry, w.hasExpiry = props.MessageExpiry, true
	}
	return w
}

// publishWill publishes a will message like a PUBLISH from its client; its Message Expiry
// Interval starts now, when it is published. Callers hold no lock and have begun a wind-up of the
// client id (beginWindLocked), so that the client's next connection comes after the will.
func (b *Broker) publishWill(w *willMsg) {
	m := w.msg
	if w.hasExpiry {
		cp := *m
		cp.expiry = time.Now().Add(time.Duration(w.expiry) * time.Second)
		m = &cp
	}
	b.log.Info("publishing will", "client", m.from, "topic", m.topic)
	b.stats.WillsPublished.Add(1)
	if m.retain {
		b.storeRetained(m, 0)
	}
	b.route(m, nil)
}

// afterFunc runs f after d on a goroutine counted by the broker, unless Shutdown has begun.
func (b *Broker) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			return
		}
		b.wg.Add(1)
		b.mu.Unlock()
		defer b.wg.Done()
		f()
	})
}

func (c *conn) onDisconnect(p *packet.Disconnect) bool {
	if c.sessVersion == packet.V5 {
		s := c.sess
		if p.Props.Present.Has(packet.PropSessionExpiry) {
			s.mu.Lock()
			if s.expiry == 0 && p.Props.SessionExpiry != 0 {
				s.mu.Unlock()
				// §3.14.2.2.2: a session that expired on close cannot be given an expiry now.
				return c.violation(packet.ProtocolError, "§3.14.2.2.2", "session expiry set on DISCONNECT after 0 at CONNECT")
			}
			s.expiry = p.Props.SessionExpiry
			s.mu.Unlock()
		}
		// MQTT-3.1.2-10: DISCONNECT 0x00 deletes the will; any other code (0x04 "with will") keeps it.
		if p.Code == packet.NormalDisconnection {
			c.will = nil
		}
	} else {
		// MQTT-3.1.2-10 (3.1.1): DISCONNECT deletes the will.
		c.will = nil
	}
	c.finish(nil)
	return false
}
