//go:build !linux

package broker

// Parking idle connections uses epoll; elsewhere every connection keeps its goroutine.

type parking struct{}

type poller struct{ b *Broker }

func (c *conn) pollable() bool { return false }
func (c *conn) serveEvents()   {}
func (c *conn) wakeParked()    {}
func (p *poller) shutdown()    {}
func (c *conn) writeNow() bool { return false }
func (c *conn) initRaw()       {}

func (c *conn) readAvailable([]byte) (int, bool) { return 0, false }
