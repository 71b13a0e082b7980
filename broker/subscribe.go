package broker

import (
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/retain"
	"github.com/gatehouse-iot/gatehouse/broker/topic"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func (c *conn) onSubscribe(p *packet.Subscribe) bool {
	b := c.b
	v := c.sessVersion
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	type sendRetained struct {
		filter string
		o      topic.Options
	}
	var retained []sendRetained
	for i, sub := range p.Subscriptions {
		if err := packet.ValidTopicFilter(v, sub.Filter); err != nil {
			if v == packet.V5 {
				codes[i] = packet.TopicFilterInvalid
				continue
			}
			return c.violation(packet.TopicFilterInvalid, ruleOf(err, "MQTT-4.7.1-1"), err.Error())
		}
		shared := strings.HasPrefix(sub.Filter, topic.SharePrefix)
		if shared && sub.NoLocal {
			// MQTT-3.8.3-4: No Local on a shared subscription is a protocol error.
			return c.violation(packet.ProtocolError, "MQTT-3.8.3-4", "no local on a shared subscription")
		}
		if acl := b.cfg.ACL; acl != nil && !acl.Allow(c.identity, sub.Filter, auth.Subscribe) {
			b.log.Info("subscribe denied by ACL", "client", c.clientID, "filter", sub.Filter)
			if v == packet.V5 {
				codes[i] = packet.NotAuthorized
			} else {
				codes[i] = packet.SubackFailure
			}
			continue
		}
		granted := min(sub.QoS, 2)
		o := topic.Options{QoS: byte(granted), NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished,
			RetainHandling: sub.RetainHandling, ID: subID}
		if v != packet.V5 {
			o = topic.Options{QoS: byte(granted)}
		}
		filter := strings.Clone(sub.Filter)
		replaced := b.subs.Subscribe(s, filter, o)
		if !replaced {
			b.stats.Subscriptions.Add(1)
		}
		s.mu.Lock()
		if s.subs == nil {
			s.subs = make(map[string]topic.Options)
		}
		s.subs[filter] = o
		s.mu.Unlock()
		codes[i] = packet.ReasonCode(granted)
		if c.faults.has(FaultWrongSubackQoS) {
			codes[i] = packet.ReasonCode((granted + 1) % 3)
		}
		// Retained messages on subscribe (MQTT-3.3.1-6 in 3.1.1; 5.0 Retain Handling, MQTT-3.3.1-9..11),
		// never for shared subscriptions (§4.8.2).
		if !shared && (o.RetainHandling == 0 || o.RetainHandling == 1 && !replaced) {
			retained = append(retained, sendRetained{filter: filter, o: o})
		}
	}
	s.mu.Lock()
	s.persistSave()
	s.mu.Unlock()
	c.send(&packet.Suback{PacketID: p.PacketID, Codes: codes})
	if c.faults.has(FaultDropRetainedOnSubscribe) || c.faults.has(FaultNoRetain) {
		return true
	}
	now := time.Now()
	for _, r := range retained {
		var msgs []*message
		b.retain.Match(r.filter, now, func(rm retain.Message) bool {
			if m, ok := rm.Props.(*message); ok {
				msgs = append(msgs, m)
			}
			return true
		})
		var ids []uint32
		if r.o.ID != 0 {
			ids = []uint32{r.o.ID}
		}
		for _, m := range msgs {
			// MQTT-3.3.1-8 (3.1.1) / MQTT-3.3.1-9 (5.0): sent on subscribe with RETAIN=1.
			s.deliver(m, min(m.qos, packet.QoS(r.o.QoS)), true, ids, nil)
		}
	}
	return true
}

func (c *conn) onUnsubscribe(p *packet.Unsubscribe) bool {
	b := c.b
	s := c.sess
	v := c.sessVersion
	var codes []packet.ReasonCode
	if v == packet.V5 {
		codes = make([]packet.ReasonCode, len(p.Filters))
	}
	for i, f := range p.Filters {
		if err := packet.ValidTopicFilter(v, f); err != nil {
			if v == packet.V5 {
				codes[i] = packet.TopicFilterInvalid
				continue
			}
			return c.violation(packet.TopicFilterInvalid, ruleOf(err, "MQTT-4.7.1-1"), err.Error())
		}
		existed := b.subs.Unsubscribe(s, f)
		if existed {
			b.stats.Subscriptions.Add(-1)
		}
		s.mu.Lock()
		delete(s.subs, f)
		s.mu.Unlock()
		if v == packet.V5 {
			if existed {
				codes[i] = packet.Success
			} else {
				codes[i] = packet.NoSubscriptionExisted
			}
		}
	}
	s.mu.Lock()
	s.persistSave()
	s.mu.Unlock()
	c.send(&packet.Unsuback{PacketID: p.PacketID, Codes: codes})
	return true
}

// ruleOf returns the statement ID carried by a packet error, or def.
func ruleOf(err error, def string) string {
	if pe, ok := err.(*packet.Error); ok && pe.Rule != "" {
		return pe.Rule
	}
	return def
}
