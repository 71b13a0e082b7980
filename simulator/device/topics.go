package device

import "strings"

// Topics names a device's topics: {prefix}/{kind}/{id}/... (see simulator/README.md).
type Topics struct {
	Prefix string // e.g. "acs/site-1"
	Kind   string
	ID     string
}

// ExpandPrefix replaces {site} in a prefix template; an empty template means "acs/{site}".
func ExpandPrefix(template, site string) string {
	if template == "" {
		template = "acs/{site}"
	}
	if site == "" {
		site = "site-1"
	}
	return strings.ReplaceAll(template, "{site}", site)
}

// Base is {prefix}/{kind}/{id}.
func (t Topics) Base() string { return t.Prefix + "/" + t.Kind + "/" + t.ID }

// Status is the retained online/offline topic, also the will topic.
func (t Topics) Status() string { return t.Base() + "/status" }

// State is the retained current-state topic.
func (t Topics) State() string { return t.Base() + "/state" }

// Telemetry is the periodic QoS 0 measurements topic.
func (t Topics) Telemetry() string { return t.Base() + "/telemetry" }

// Event is the topic of events of one type (card, passage, charge, ...).
func (t Topics) Event(typ string) string { return t.Base() + "/evt/" + typ }

// Command is the topic a command arrives on.
func (t Topics) Command(name string) string { return t.Base() + "/cmd/" + name }

// Ack is the topic a command's ack is published on.
func (t Topics) Ack(name string) string { return t.Base() + "/cmd/" + name + "/ack" }

// Commands is the filter the device subscribes to.
func (t Topics) Commands() string { return t.Base() + "/cmd/+" }

// Snapshot is the topic of a camera's raw snapshot bytes.
func (t Topics) Snapshot() string { return t.Base() + "/snapshot" }
