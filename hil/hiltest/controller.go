// Package hiltest holds fakes for testing the HIL packages: a controller that records what reaches
// its input terminals and whose outputs a test sets by hand.
package hiltest

import (
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/hil/sim"
)

var _ sim.Controller = (*Controller)(nil)

// Input is one change delivered to the fake controller's input terminal.
type Input struct {
	Terminal string
	Active   bool
	At       time.Time
}

// Controller is a fake sim.Controller.
type Controller struct {
	// Got receives every input change (buffered; a test that does not read it loses nothing until
	// it holds 256 changes, after which SetInput blocks).
	Got chan Input

	mu     sync.Mutex // protects inputs and out
	inputs map[string]bool
	out    func(terminal string, active bool, at time.Time)
}

// NewController returns a fake controller with every input inactive.
func NewController() *Controller {
	return &Controller{Got: make(chan Input, 256), inputs: map[string]bool{}}
}

// SetInput implements sim.Controller.
func (c *Controller) SetInput(terminal string, active bool) error {
	c.mu.Lock()
	c.inputs[terminal] = active
	c.mu.Unlock()
	c.Got <- Input{Terminal: terminal, Active: active, At: time.Now()}
	return nil
}

// InputActive reports the last state delivered to terminal.
func (c *Controller) InputActive(terminal string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inputs[terminal]
}

// OnOutput implements sim.Controller.
func (c *Controller) OnOutput(fn func(terminal string, active bool, at time.Time)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = fn
}

// SetOutput drives one of the controller's output terminals now.
func (c *Controller) SetOutput(terminal string, active bool) {
	c.mu.Lock()
	fn := c.out
	c.mu.Unlock()
	if fn != nil {
		fn(terminal, active, time.Now())
	}
}
