package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/session"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// A record is one value in the file:
//
//	byte 0      record version (1)
//	uvarint     length of the header
//	header      JSON (field names below are the on-disk schema: rename nothing)
//	rest        the payload, raw, so that binary payloads (camera snapshots) are not base64'd
const recordVersion = 1

// maxHeader bounds a header so that a damaged length cannot ask for gigabytes.
const maxHeader = 16 << 20

func appendRecord(header any, payload []byte) ([]byte, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(h)+len(payload))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(h)))
	b = append(b, h...)
	return append(b, payload...), nil
}

// readRecord decodes the header into header and returns a copy of the payload (values read from
// bbolt are valid only inside their transaction).
func readRecord(b []byte, header any) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("empty record")
	}
	if b[0] != recordVersion {
		return nil, fmt.Errorf("record version %d, this broker reads %d", b[0], recordVersion)
	}
	n, used := binary.Uvarint(b[1:])
	if used <= 0 || n > maxHeader || n > uint64(len(b)-1-used) {
		return nil, fmt.Errorf("header length at byte 1 is damaged (record of %d bytes)", len(b))
	}
	start := 1 + used
	if err := json.Unmarshal(b[start:start+int(n)], header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return append([]byte{}, b[start+int(n):]...), nil
}

type propsRecord struct {
	Present         uint64      `json:"present,omitempty"`
	PayloadFormat   byte        `json:"payload_format,omitempty"`
	MessageExpiry   uint32      `json:"message_expiry,omitempty"`
	ContentType     string      `json:"content_type,omitempty"`
	ResponseTopic   string      `json:"response_topic,omitempty"`
	CorrelationData []byte      `json:"correlation_data,omitempty"`
	SubscriptionIDs []uint32    `json:"subscription_ids,omitempty"`
	User            [][2]string `json:"user,omitempty"`
	WillDelay       uint32      `json:"will_delay,omitempty"`
}

// The properties an application message (or will) carries are kept; connection properties
// (session expiry, receive maximum...) never travel with a message.
func fromProps(p packet.Properties) propsRecord {
	r := propsRecord{
		Present: uint64(p.Present), PayloadFormat: p.PayloadFormat, MessageExpiry: p.MessageExpiry,
		ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
		SubscriptionIDs: p.SubscriptionIDs, WillDelay: p.WillDelay,
	}
	for _, u := range p.User {
		r.User = append(r.User, [2]string{u.Key, u.Value})
	}
	return r
}

func (r propsRecord) props() packet.Properties {
	p := packet.Properties{
		Present: packet.PropSet(r.Present), PayloadFormat: r.PayloadFormat, MessageExpiry: r.MessageExpiry,
		ContentType: r.ContentType, ResponseTopic: r.ResponseTopic, CorrelationData: r.CorrelationData,
		SubscriptionIDs: r.SubscriptionIDs, WillDelay: r.WillDelay,
	}
	for _, u := range r.User {
		p.User = append(p.User, packet.UserProperty{Key: u[0], Value: u[1]})
	}
	return p
}

type subRecord struct {
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	ID                uint32 `json:"id,omitempty"`
}

type willRecord struct {
	Topic     string      `json:"topic"`
	Payload   []byte      `json:"payload"`
	QoS       byte        `json:"qos"`
	Retain    bool        `json:"retain,omitempty"`
	Props     propsRecord `json:"props,omitzero"`
	PublishAt time.Time   `json:"publish_at"`
}

type stateRecord struct {
	ClientID        string      `json:"client_id"`
	Version         byte        `json:"version"`
	Username        string      `json:"username,omitempty"`
	ExpiryInterval  uint32      `json:"expiry_interval"`
	DisconnectedAt  time.Time   `json:"disconnected_at,omitzero"`
	Subscriptions   []subRecord `json:"subscriptions,omitempty"`
	AwaitingRelease []uint16    `json:"awaiting_release,omitempty"`
	Will            *willRecord `json:"will,omitempty"`
	NextPacketID    uint16      `json:"next_packet_id,omitempty"`
}

func encodeState(st session.State) ([]byte, error) {
	r := stateRecord{
		ClientID: st.ClientID, Version: byte(st.Version), Username: st.Username,
		ExpiryInterval: st.ExpiryInterval, DisconnectedAt: st.DisconnectedAt,
		AwaitingRelease: st.AwaitingRelease, NextPacketID: st.NextPacketID,
	}
	for _, s := range st.Subscriptions {
		r.Subscriptions = append(r.Subscriptions, subRecord(s))
	}
	if w := st.Will; w != nil {
		r.Will = &willRecord{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain, Props: fromProps(w.Props), PublishAt: w.PublishAt}
	}
	return appendRecord(r, nil)
}

func decodeState(b []byte) (session.State, error) {
	var r stateRecord
	if _, err := readRecord(b, &r); err != nil {
		return session.State{}, err
	}
	v := packet.Version(r.Version)
	if !v.Known() {
		return session.State{}, fmt.Errorf("protocol version %d is not 3, 4 or 5", r.Version)
	}
	if r.ClientID == "" {
		return session.State{}, errors.New("empty client id")
	}
	st := session.State{
		ClientID: r.ClientID, Version: v, Username: r.Username, ExpiryInterval: r.ExpiryInterval,
		DisconnectedAt: r.DisconnectedAt, AwaitingRelease: r.AwaitingRelease, NextPacketID: r.NextPacketID,
	}
	for _, s := range r.Subscriptions {
		if s.QoS > 2 {
			return session.State{}, fmt.Errorf("subscription %q: QoS %d", s.Filter, s.QoS)
		}
		st.Subscriptions = append(st.Subscriptions, session.Subscription(s))
	}
	if w := r.Will; w != nil {
		if w.QoS > 2 {
			return session.State{}, fmt.Errorf("will: QoS %d", w.QoS)
		}
		st.Will = &session.Will{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain, Props: w.Props.props(), PublishAt: w.PublishAt}
		if st.Will.Payload == nil {
			st.Will.Payload = []byte{}
		}
	}
	return st, nil
}

type messageRecord struct {
	Seq       uint64      `json:"seq"`
	State     byte        `json:"state"`
	PacketID  uint16      `json:"packet_id,omitempty"`
	Topic     string      `json:"topic"`
	QoS       byte        `json:"qos"`
	Retain    bool        `json:"retain,omitempty"`
	Props     propsRecord `json:"props,omitzero"`
	Expiry    time.Time   `json:"expiry,omitzero"`
	Publisher string      `json:"publisher,omitempty"`
}

func encodeMessage(m session.Message) ([]byte, error) {
	return appendRecord(messageRecord{
		Seq: m.Seq, State: byte(m.State), PacketID: m.PacketID, Topic: m.Topic, QoS: m.QoS,
		Retain: m.Retain, Props: fromProps(m.Props), Expiry: m.Expiry, Publisher: m.Publisher,
	}, m.Payload)
}

func decodeMessage(b []byte) (session.Message, error) {
	var r messageRecord
	payload, err := readRecord(b, &r)
	if err != nil {
		return session.Message{}, err
	}
	switch {
	case r.QoS != 1 && r.QoS != 2:
		return session.Message{}, fmt.Errorf("QoS %d (only QoS 1 and 2 messages are stored)", r.QoS)
	case session.MessageState(r.State) > session.AwaitComp:
		return session.Message{}, fmt.Errorf("state %d is not queued (0), awaiting ack (1) or awaiting PUBCOMP (2)", r.State)
	case r.State != byte(session.Queued) && r.PacketID == 0:
		return session.Message{}, errors.New("in flight without a packet identifier")
	case r.Topic == "":
		return session.Message{}, errors.New("empty topic")
	}
	return session.Message{
		Seq: r.Seq, State: session.MessageState(r.State), PacketID: r.PacketID, Topic: r.Topic,
		Payload: payload, QoS: r.QoS, Retain: r.Retain, Props: r.Props.props(), Expiry: r.Expiry,
		Publisher: r.Publisher,
	}, nil
}

type retainedRecord struct {
	Topic     string      `json:"topic"`
	QoS       byte        `json:"qos"`
	Props     propsRecord `json:"props,omitzero"`
	Expiry    time.Time   `json:"expiry,omitzero"`
	Stored    time.Time   `json:"stored,omitzero"`
	Publisher string      `json:"publisher,omitempty"`
}

func encodeRetained(m session.Retained) ([]byte, error) {
	if m.Topic == "" {
		return nil, errors.New("empty topic")
	}
	if len(m.Payload) == 0 {
		return nil, errors.New("empty payload (an empty retained payload deletes, MQTT-3.3.1-10)")
	}
	return appendRecord(retainedRecord{
		Topic: m.Topic, QoS: m.QoS, Props: fromProps(m.Props), Expiry: m.Expiry, Stored: m.Stored, Publisher: m.Publisher,
	}, m.Payload)
}

func decodeRetained(b []byte) (session.Retained, error) {
	var r retainedRecord
	payload, err := readRecord(b, &r)
	if err != nil {
		return session.Retained{}, err
	}
	switch {
	case r.QoS > 2:
		return session.Retained{}, fmt.Errorf("QoS %d", r.QoS)
	case len(payload) == 0:
		return session.Retained{}, errors.New("empty payload")
	}
	return session.Retained{
		Topic: r.Topic, Payload: payload, QoS: r.QoS, Props: r.Props.props(), Expiry: r.Expiry,
		Stored: r.Stored, Publisher: r.Publisher,
	}, nil
}
