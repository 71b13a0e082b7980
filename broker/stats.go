package broker

import "sync/atomic"

// Stats holds the broker's counters. Every field is updated atomically while the broker runs, so a
// metrics exporter can read them at any time; Snapshot copies them all at once.
type Stats struct {
	ClientsConnected  atomic.Int64  // clients past CONNACK
	ClientsTotal      atomic.Uint64 // accepted CONNECTs since start
	Sockets           atomic.Int64  // open network connections, including those before CONNECT
	ConnectsRefused   atomic.Uint64 // CONNACKs with an error code, and sockets over max_connections
	ProtocolErrors    atomic.Uint64 // connections closed for a protocol violation
	MessagesReceived  [3]atomic.Uint64
	MessagesSent      [3]atomic.Uint64
	BytesReceived     atomic.Uint64
	BytesSent         atomic.Uint64
	DroppedQueueFull  atomic.Uint64 // QoS 0 messages dropped because a client's queue was full
	DroppedOffline    atomic.Uint64 // QoS 0 messages for a disconnected session or a closing connection
	DroppedTooLarge   atomic.Uint64 // messages over a client's Maximum Packet Size (MQTT-3.1.2-25)
	DroppedExpired    atomic.Uint64 // queued messages whose Message Expiry Interval had passed
	DroppedDenied     atomic.Uint64 // messages refused by the ACL on publish or on delivery
	Retained          atomic.Int64  // retained messages stored
	Inflight          atomic.Int64  // outgoing QoS 1/2 messages sent and not yet acknowledged
	Queued            atomic.Int64  // outgoing QoS 1/2 messages waiting for a free in-flight slot
	Subscriptions     atomic.Int64
	WillsPublished    atomic.Uint64
	SessionsExpired   atomic.Uint64
	ClientsTakenOver  atomic.Uint64
	KeepaliveTimeouts atomic.Uint64
}

// StatsSnapshot is a copy of Stats at one instant.
type StatsSnapshot struct {
	ClientsConnected, Sockets, Retained, Inflight, Queued, Subscriptions int64
	ClientsTotal, ConnectsRefused, ProtocolErrors                        uint64
	MessagesReceived, MessagesSent                                       [3]uint64
	BytesReceived, BytesSent                                             uint64
	DroppedQueueFull, DroppedOffline, DroppedTooLarge, DroppedExpired    uint64
	DroppedDenied, WillsPublished, SessionsExpired, ClientsTakenOver     uint64
	KeepaliveTimeouts                                                    uint64
}

// Snapshot copies every counter.
func (s *Stats) Snapshot() StatsSnapshot {
	out := StatsSnapshot{
		ClientsConnected:  s.ClientsConnected.Load(),
		Sockets:           s.Sockets.Load(),
		Retained:          s.Retained.Load(),
		Inflight:          s.Inflight.Load(),
		Queued:            s.Queued.Load(),
		Subscriptions:     s.Subscriptions.Load(),
		ClientsTotal:      s.ClientsTotal.Load(),
		ConnectsRefused:   s.ConnectsRefused.Load(),
		ProtocolErrors:    s.ProtocolErrors.Load(),
		BytesReceived:     s.BytesReceived.Load(),
		BytesSent:         s.BytesSent.Load(),
		DroppedQueueFull:  s.DroppedQueueFull.Load(),
		DroppedOffline:    s.DroppedOffline.Load(),
		DroppedTooLarge:   s.DroppedTooLarge.Load(),
		DroppedExpired:    s.DroppedExpired.Load(),
		DroppedDenied:     s.DroppedDenied.Load(),
		WillsPublished:    s.WillsPublished.Load(),
		SessionsExpired:   s.SessionsExpired.Load(),
		ClientsTakenOver:  s.ClientsTakenOver.Load(),
		KeepaliveTimeouts: s.KeepaliveTimeouts.Load(),
	}
	for q := range 3 {
		out.MessagesReceived[q] = s.MessagesReceived[q].Load()
		out.MessagesSent[q] = s.MessagesSent[q].Load()
	}
	return out
}

// Dropped is the sum of every drop counter.
func (s StatsSnapshot) Dropped() uint64 {
	return s.DroppedQueueFull + s.DroppedOffline + s.DroppedTooLarge + s.DroppedExpired + s.DroppedDenied
}
