// Package devicetest helps test simulated devices without a network: a Recorder that stands in
// for the MQTT client, and Advance, which moves a fake clock through a device's timers one
// deadline at a time, letting the device's loop react to each before the next.
package devicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/clock"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
)

// Recorder is a device.Publisher that keeps every message.
type Recorder struct {
	mu      sync.Mutex // protects msgs and waiters
	msgs    []device.Message
	waiters []chan struct{}
}

var _ device.Publisher = (*Recorder)(nil)

// Publish records m.
func (r *Recorder) Publish(m device.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.Payload = append([]byte(nil), m.Payload...)
	r.msgs = append(r.msgs, m)
	for _, w := range r.waiters {
		close(w)
	}
	r.waiters = nil
}

// Messages returns the messages recorded so far.
func (r *Recorder) Messages() []device.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]device.Message(nil), r.msgs...)
}

// Reset forgets the recorded messages.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = nil
}

// On returns the recorded messages whose topic ends with suffix (e.g. "/evt/passage").
func (r *Recorder) On(suffix string) []device.Message {
	var out []device.Message
	for _, m := range r.Messages() {
		if strings.HasSuffix(m.Topic, suffix) {
			out = append(out, m)
		}
	}
	return out
}

// Last returns the payload of the last message whose topic ends with suffix, decoded as JSON.
func (r *Recorder) Last(suffix string) map[string]any {
	ms := r.On(suffix)
	if len(ms) == 0 {
		return nil
	}
	return Decode(ms[len(ms)-1].Payload)
}

// Wait returns the first message (in order, including ones already recorded) whose topic ends
// with suffix, waiting until ctx ends.
func (r *Recorder) Wait(ctx context.Context, suffix string) (device.Message, error) {
	for {
		r.mu.Lock()
		for _, m := range r.msgs {
			if strings.HasSuffix(m.Topic, suffix) {
				r.mu.Unlock()
				return m, nil
			}
		}
		w := make(chan struct{})
		r.waiters = append(r.waiters, w)
		r.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return device.Message{}, fmt.Errorf("no message on *%s: %w", suffix, ctx.Err())
		}
	}
}

// Decode decodes a JSON object payload (nil when it is not one).
func Decode(p []byte) map[string]any {
	var v map[string]any
	if json.Unmarshal(p, &v) != nil {
		return nil
	}
	return v
}

// Syncer is what Advance needs of a device: a way to wait until its loop is idle.
type Syncer interface{ Sync() error }

// Advance moves the fake clock forward by d, stopping at each timer deadline on the way and
// waiting for the device's loop to handle the expiry (which may schedule further timers inside
// the window) before going on. Timers of several devices can be driven by passing them all.
func Advance(f *clock.Fake, d time.Duration, devs ...Syncer) error {
	target := f.Now().Add(d)
	sync := func() error {
		for _, dv := range devs {
			if err := dv.Sync(); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := sync(); err != nil {
			return err
		}
		next, ok := f.Next()
		if !ok || next.After(target) {
			break
		}
		f.Set(next)
	}
	f.Set(target)
	return sync()
}
