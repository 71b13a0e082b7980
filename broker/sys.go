package broker

import (
	"strconv"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/topic"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// Version is reported in $SYS/broker/version.
const Version = "gatehouse reference broker"

// sysLoop publishes $SYS topics (mosquitto's names) every SysInterval, retained, until Shutdown.
func (b *Broker) sysLoop() {
	t := time.NewTicker(b.cfg.SysInterval)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
			b.publishSys()
		}
	}
}

func (b *Broker) publishSys() {
	st := b.stats.Snapshot()
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	var recv, sent uint64
	for q := range 3 {
		recv += st.MessagesReceived[q]
		sent += st.MessagesSent[q]
	}
	b.mu.Lock()
	total := int64(len(b.sessions))
	b.mu.Unlock()
	values := [][2]string{
		{"$SYS/broker/version", Version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(time.Since(b.start)/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", i(st.ClientsConnected)},
		{"$SYS/broker/clients/total", i(total)},
		{"$SYS/broker/clients/disconnected", i(total - st.ClientsConnected)},
		{"$SYS/broker/messages/received", u(recv)},
		{"$SYS/broker/messages/sent", u(sent)},
		{"$SYS/broker/messages/inflight", i(st.Inflight)},
		{"$SYS/broker/messages/stored", i(st.Queued + st.Inflight)},
		{"$SYS/broker/publish/messages/dropped", u(st.Dropped())},
		{"$SYS/broker/retained messages/count", i(st.Retained)},
		{"$SYS/broker/subscriptions/count", i(st.Subscriptions)},
		{"$SYS/broker/load/bytes/received", u(st.BytesReceived)},
		{"$SYS/broker/load/bytes/sent", u(st.BytesSent)},
	}
	now := time.Now()
	for _, kv := range values {
		m := newMessage(kv[0], []byte(kv[1]), 0, true, nil, "", now)
		b.storeRetained(m, 0)
		b.route(m, nil)
	}
}

// restore rebuilds persistent sessions from the Store; each waits offline for its client.
func (b *Broker) restore() error {
	now := time.Now()
	return b.cfg.Store.Load(func(st sessionState, msgs []sessionMessage) error {
		s := newSession(b, st.ClientID)
		s.version = st.Version
		s.expiry = st.ExpiryInterval
		s.identity.ClientID = st.ClientID
		s.identity.Username = st.Username
		s.nextPID = st.NextPacketID
		for _, sub := range st.Subscriptions {
			o := subOptions(sub)
			if !b.subs.Subscribe(s, sub.Filter, o) {
				b.stats.Subscriptions.Add(1)
			}
			if s.subs == nil {
				s.subs = make(map[string]topic.Options)
			}
			s.subs[sub.Filter] = o
		}
		for _, id := range st.AwaitingRelease {
			s.setAwaitRel(id)
		}
		for _, sm := range msgs {
			props := sm.Props
			m := newMessage(sm.Topic, sm.Payload, packet.QoS(sm.QoS), sm.Retain, &props, sm.Publisher, now)
			m.expiry = sm.Expiry
			d := &delivery{msg: m, seq: sm.Seq, qos: packet.QoS(sm.QoS), retain: sm.Retain, ids: sm.Props.SubscriptionIDs, pid: sm.PacketID, state: sm.State}
			s.seq = max(s.seq, sm.Seq)
			if d.state == queuedState {
				s.queue = append(s.queue, d)
				b.stats.Queued.Add(1)
				continue
			}
			s.inflight = append(s.inflight, d)
			if s.byPID == nil {
				s.byPID = make(map[uint16]*delivery)
			}
			s.byPID[d.pid] = d
			b.stats.Inflight.Add(1)
		}
		if w := st.Will; w != nil {
			props := w.Props
			pw := newWill(newMessage(w.Topic, w.Payload, packet.QoS(w.QoS), w.Retain, &props, st.ClientID, now), &props)
			pw.due = w.PublishAt
			s.pendingWill = pw
			delay := max(time.Until(w.PublishAt), 0)
			s.willTimer = b.afterFunc(delay, func() { b.delayedWill(s, pw) })
		}
		if s.expiry != neverExpires {
			left := time.Duration(s.expiry) * time.Second
			if !st.DisconnectedAt.IsZero() {
				left -= now.Sub(st.DisconnectedAt)
			}
			s.expireTimer = b.afterFunc(max(left, 0), func() { b.expireSession(s) })
		}
		b.mu.Lock()
		b.sessions[s.id] = s
		b.mu.Unlock()
		return nil
	})
}
