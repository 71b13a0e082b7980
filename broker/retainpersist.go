package broker

import (
	"hash/maphash"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/retain"
	persist "github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// retainStripes is how many locks order the persistence of retained messages: two publishers
// setting the same topic at once must reach the Store in the order they reached memory, or a
// restart could bring back the older message; different topics rarely share a lock, so their
// durable writes can proceed together (and be committed together by a group-committing Store).
const retainStripes = 32

var retainSeed = maphash.MakeSeed()

// retainedStore returns the Store's retained-message side, nil when there is none: retained
// messages persist only with a Store that also implements persist.RetainedStore.
func (b *Broker) retainedStore() persist.RetainedStore {
	rs, _ := b.cfg.Store.(persist.RetainedStore)
	return rs
}

// setRetained stores (or, with an empty payload, deletes) the retained message in memory and, for
// messages from clients, in the Store before returning, so that a PUBACK/PUBREC sent afterwards
// acknowledges a retained message that survives a restart. $SYS values (from the broker itself)
// are not persisted: they are recomputed after a restart.
func (b *Broker) setRetained(rm retain.Message, m *message) {
	rs := b.retainedStore()
	if rs == nil || m.from == "" {
		b.retain.Set(rm)
		return
	}
	mu := &b.retainMu[maphash.String(retainSeed, m.topic)%retainStripes]
	mu.Lock()
	defer mu.Unlock()
	b.retain.Set(rm)
	var err error
	if len(m.payload) == 0 {
		err = rs.DeleteRetained(m.topic)
	} else {
		err = rs.PutRetained(persist.Retained{
			Topic: m.topic, Payload: m.payload, QoS: byte(m.qos), Props: m.props, Expiry: m.expiry,
			Stored: rm.Stored, Publisher: m.from,
		})
	}
	if err != nil {
		b.log.Error("retained store: write failed", "topic", m.topic, "err", err)
	}
}

// restoreRetained loads the retained messages kept by the Store; expired ones are dropped from it.
func (b *Broker) restoreRetained() error {
	rs := b.retainedStore()
	if rs == nil {
		return nil
	}
	now := time.Now()
	var expired []string
	err := rs.LoadRetained(func(r persist.Retained) error {
		if !r.Expiry.IsZero() && !now.Before(r.Expiry) {
			expired = append(expired, r.Topic)
			return nil
		}
		props := r.Props
		m := newMessage(r.Topic, r.Payload, packet.QoS(r.QoS), true, &props, r.Publisher, now)
		m.expiry = r.Expiry
		b.retain.Set(retain.Message{Topic: m.topic, Payload: m.payload, QoS: r.QoS, Props: m, Stored: r.Stored, Expiry: m.expiry})
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range expired {
		if err := rs.DeleteRetained(t); err != nil {
			b.log.Error("retained store: delete expired failed", "topic", t, "err", err)
		}
	}
	b.stats.Retained.Store(int64(b.retain.Len()))
	return nil
}
