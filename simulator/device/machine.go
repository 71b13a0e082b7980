package device

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// Machine is a device kind's state machine. Every method is called from the device's loop only,
// so a Machine holds its state in plain fields without locks. It reads time, randomness and
// publishes only through the Env.
type Machine interface {
	// Kind is "gate", "turnstile" or "camera".
	Kind() string
	// Model is the default model string reported in the status.
	Model() string
	// Boot starts from the power-on state; it sets the outputs and may publish the state.
	Boot(env Env)
	// PowerOff forgets the volatile state; timers are cancelled by the Sim.
	PowerOff(env Env)
	// Command handles one command and acks it through env.Ack, now or later.
	Command(env Env, cmd Command)
	// Stimulate applies a physical event; an error names a stimulus that does not apply.
	Stimulate(env Env, s Stimulus) error
	// Inject applies a device-level fault (jam, stuck relay, bounce); it returns false for a
	// fault the kind does not have.
	Inject(env Env, f fault.Fault) (bool, error)
	// Clear ends a device-level fault.
	Clear(env Env, kind string)
	// State is the content of the retained state topic.
	State() map[string]any
}

// Env is what a Machine may use. Implemented by the Sim; valid only inside the loop.
type Env interface {
	// ID is the device ID.
	ID() string
	// Now is the device's clock (without skew: skew only shows in published timestamps).
	Now() time.Time
	// Rand is the device's seeded generator.
	Rand() *rand.Rand
	// After runs f on the loop after d unless cancelled or the power goes.
	After(d time.Duration, f func()) (cancel func())
	// Event publishes evt/{typ} with id, seq, ts, corr (when not empty) and fields, at QoS qos.
	// It returns the sequence number it used.
	Event(typ string, qos byte, corr string, fields map[string]any) uint64
	// StateChanged publishes the machine's State, retained.
	StateChanged()
	// Publish sends a raw message on {base}/{suffix}.
	Publish(suffix string, qos byte, retain bool, payload []byte)
	// Ack answers a command.
	Ack(cmd Command, result Result, reason string)
	// Output reports that an output terminal changed level.
	Output(terminal string, active bool)
	// Config is the device's common configuration.
	Config() Config
}

// Result is the outcome of a command.
type Result string

// Command results.
const (
	OK       Result = "ok"
	Rejected Result = "rejected" // the command does not apply, or its payload is malformed
	Failed   Result = "failed"   // the device tried and could not (jam, stuck relay, simulated failure)
)

// Command is one command for a device.
type Command struct {
	Name string
	Corr string
	// Args are the payload's fields other than corr.
	Args map[string]json.RawMessage
	// Local marks a command that came from the device's own inputs (an open button): it is
	// acted on but never acked on MQTT.
	Local bool
	reply chan<- Ack
}

// Ack is a command's answer, published on cmd/{name}/ack.
type Ack struct {
	ID     string `json:"id"`
	Corr   string `json:"corr"`
	Result Result `json:"result"`
	Reason string `json:"reason,omitempty"`
	TS     string `json:"ts"`
}

// Message is one MQTT message a device publishes.
type Message struct {
	Topic   string
	QoS     byte
	Retain  bool
	Payload []byte
}

// Publisher receives a device's messages instead of an MQTT client: a device built with one
// has no network, is online as soon as it boots, and takes commands through Do.
type Publisher interface {
	Publish(m Message)
}

// PublisherFunc adapts a function to a Publisher.
type PublisherFunc func(m Message)

// Publish calls f(m).
func (f PublisherFunc) Publish(m Message) { f(m) }
