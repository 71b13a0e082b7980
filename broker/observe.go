package broker

import "time"

// Uptime returns how long the broker has been running ($SYS/broker/uptime); zero before Start.
func (b *Broker) Uptime() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		return 0
	}
	return time.Since(b.start)
}

// SessionCounts returns how many sessions the broker holds, connected or not, and how many of them
// outlive their connection (3.x CleanSession 0, 5.0 Session Expiry Interval > 0). It visits every
// session, so it is meant for scrapes, not for hot paths.
func (b *Broker) SessionCounts() (all, persistent int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sessions {
		all++
		s.mu.Lock() // lock order: Broker.mu, then session.mu
		if s.expiry > 0 {
			persistent++
		}
		s.mu.Unlock()
	}
	return all, persistent
}
