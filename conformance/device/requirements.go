package device

import (
	"github.com/gatehouse-iot/gatehouse/conformance/spec"
)

// Level says how a requirement's failure counts: a Must failure fails the certification, a
// Should failure is a warning.
type Level string

// The levels.
const (
	Must   Level = "must"
	Should Level = "should"
)

// Scope says which part of the certification a requirement belongs to: the MQTT protocol (every
// profile, any MQTT client) or the device contract (the gate, turnstile and camera profiles).
type Scope string

// The scopes.
const (
	Protocol Scope = "protocol"
	Contract Scope = "contract"
)

// Requirement is one thing a device must (or should) do, with the normative statements it
// checks. Statements are per protocol version because 3.1.1 and 5.0 number them differently;
// Sections cites the specification where the behaviour is required without a numbered
// statement.
type Requirement struct {
	ID       string
	Title    string
	Level    Level
	Scope    Scope
	V311     []spec.ID
	V5       []spec.ID
	Sections []string
	// Only5 marks requirements about MQTT 5.0 features; a 3.1.1 device is not judged on them.
	Only5 bool
}

// Statements returns the statement IDs the requirement checks for a device speaking version
// ("3.1.1" or "5.0").
func (r Requirement) Statements(version string) []spec.ID {
	if version == spec.Version5 {
		return r.V5
	}
	return r.V311
}

// Labels returns the requirement's labels for a device speaking version: its statement IDs,
// its section references, its level and its scope.
func (r Requirement) Labels(version string) []string {
	out := spec.Labels(r.Statements(version)...)
	out = append(out, r.Sections...)
	return append(out, string(r.Level), string(r.Scope))
}

// The requirement IDs.
const (
	ReqConnect          = "connect"
	ReqPackets          = "packets"
	ReqKeepalive        = "keepalive"
	ReqSilentServer     = "silent-server"
	ReqAcknowledges     = "acknowledges"
	ReqResendQoS1       = "resend-qos1"
	ReqDup              = "dup"
	ReqQoS2             = "qos2"
	ReqPacketIDs        = "packet-ids"
	ReqResubscribe      = "resubscribe"
	ReqRefused          = "refused"
	ReqServerDisconnect = "server-disconnect"
	ReqServerKeepalive  = "server-keepalive"
	ReqTopicAlias       = "topic-alias"
	ReqReceiveMaximum   = "receive-maximum"
	ReqReconnects       = "reconnects"
	ReqStatus           = "status"
	ReqWill             = "will"
	ReqState            = "state"
	ReqCommands         = "commands"
	ReqRejects          = "rejects"
	ReqMessageQoS       = "message-qos"
	ReqEvents           = "events"
	ReqPowerLoss        = "power-loss"
)

// Requirements is the catalogue, in the order reports list it.
var Requirements = []Requirement{
	{
		ID: ReqConnect, Level: Must, Scope: Protocol,
		Title: "opens every connection with a CONNECT whose fields agree with each other (client identifier, will, user name and password flags)",
		V311: []spec.ID{spec.V311_3_1_0_1, spec.V311_3_1_2_9, spec.V311_3_1_2_11, spec.V311_3_1_2_13, spec.V311_3_1_2_14,
			spec.V311_3_1_2_15, spec.V311_3_1_2_22, spec.V311_3_1_3_3, spec.V311_3_1_3_4, spec.V311_3_1_3_7},
		V5: []spec.ID{spec.V5_3_1_0_1, spec.V5_3_1_2_9, spec.V5_3_1_2_11, spec.V5_3_1_2_12, spec.V5_3_1_2_13,
			spec.V5_3_1_3_3, spec.V5_3_1_3_4},
	},
	{
		ID: ReqPackets, Level: Must, Scope: Protocol,
		Title: "sends only well-formed packets that keep the rules of their type, and nothing after its own DISCONNECT",
		V311: []spec.ID{spec.V311_2_2_2_1, spec.V311_2_3_1_1, spec.V311_2_3_1_5, spec.V311_3_3_1_2, spec.V311_3_3_2_2,
			spec.V311_1_5_3_1, spec.V311_1_5_3_2, spec.V311_4_7_3_1, spec.V311_3_8_3_3, spec.V311_3_10_3_2,
			spec.V311_3_14_4_1, spec.V311_3_14_4_2},
		V5: []spec.ID{spec.V5_2_1_3_1, spec.V5_2_2_1_2, spec.V5_3_3_1_2, spec.V5_3_3_2_2, spec.V5_1_5_4_1, spec.V5_1_5_4_2,
			spec.V5_1_5_5_1, spec.V5_3_3_2_8, spec.V5_3_3_4_6, spec.V5_3_8_3_2, spec.V5_3_10_3_2, spec.V5_3_14_4_1,
			spec.V5_3_14_4_2},
	},
	{
		ID: ReqKeepalive, Level: Must, Scope: Protocol,
		Title: "keeps the connection alive: never stays silent longer than its Keep Alive, sending PINGREQ when it has nothing else to send",
		V311:  []spec.ID{spec.V311_3_1_2_23},
		V5:    []spec.ID{spec.V5_3_1_2_20},
	},
	{
		ID: ReqSilentServer, Level: Should, Scope: Protocol,
		Title:    "notices a server that stopped answering (no PINGRESP) and closes the connection",
		Sections: []string{"§3.1.2.10"},
	},
	{
		ID: ReqAcknowledges, Level: Must, Scope: Protocol,
		Title: "acknowledges every QoS 1 and QoS 2 message it receives, with the message's packet identifier, in the order received",
		V311: []spec.ID{spec.V311_4_5_0_2, spec.V311_3_3_4_1, spec.V311_2_3_1_6, spec.V311_4_6_0_2, spec.V311_4_6_0_3,
			spec.V311_4_3_2_2, spec.V311_4_3_3_2},
		V5: []spec.ID{spec.V5_4_5_0_2, spec.V5_3_3_4_1, spec.V5_2_2_1_5, spec.V5_4_6_0_2, spec.V5_4_6_0_3, spec.V5_4_3_2_4,
			spec.V5_4_3_3_8, spec.V5_4_3_3_10, spec.V5_4_3_3_11},
	},
	{
		ID: ReqResendQoS1, Level: Must, Scope: Protocol,
		Title: "resends an unacknowledged QoS 1 message when it resumes its session, with the same packet identifier",
		V311:  []spec.ID{spec.V311_4_4_0_1, spec.V311_2_3_1_3, spec.V311_4_3_2_1, spec.V311_4_6_0_1},
		V5:    []spec.ID{spec.V5_4_4_0_1, spec.V5_4_3_2_3, spec.V5_4_6_0_1},
	},
	{
		ID: ReqDup, Level: Must, Scope: Protocol,
		Title: "sets DUP on every PUBLISH it sends again, so that a receiver can tell a resend from a new message",
		V311:  []spec.ID{spec.V311_3_3_1_1},
		V5:    []spec.ID{spec.V5_3_3_1_1},
	},
	{
		ID: ReqQoS2, Level: Must, Scope: Protocol,
		Title: "completes QoS 2 exchanges exactly once across connection losses: resends the PUBLISH until PUBREC, then only the PUBREL, and never the message anew",
		V311:  []spec.ID{spec.V311_4_3_3_1, spec.V311_4_4_0_1, spec.V311_2_3_1_6, spec.V311_4_6_0_4},
		V5: []spec.ID{spec.V5_4_3_3_1, spec.V5_4_3_3_3, spec.V5_4_3_3_4, spec.V5_4_3_3_5, spec.V5_4_3_3_6, spec.V5_4_4_0_1,
			spec.V5_2_2_1_5, spec.V5_4_6_0_4},
	},
	{
		ID: ReqPacketIDs, Level: Must, Scope: Protocol,
		Title: "never gives a new message, subscription or unsubscription a packet identifier that is still in use",
		V311:  []spec.ID{spec.V311_2_3_1_2},
		V5:    []spec.ID{spec.V5_2_2_1_3, spec.V5_4_3_2_1, spec.V5_4_3_3_1},
	},
	{
		ID: ReqResubscribe, Level: Must, Scope: Protocol,
		Title:    "subscribes again when the server answers Session Present 0 (it lost the session)",
		Sections: []string{"§3.2.2.2"},
	},
	{
		ID: ReqRefused, Level: Must, Scope: Protocol,
		Title:    "stops using a connection the server refused: sends nothing more on it and lets it close",
		V5:       []spec.ID{spec.V5_4_13_2_1},
		Sections: []string{"§3.2.2.3"},
	},
	{
		ID: ReqServerDisconnect, Level: Must, Scope: Protocol, Only5: true,
		Title: "on a DISCONNECT from the server, sends nothing more and closes the connection",
		V5:    []spec.ID{spec.V5_4_13_2_1},
	},
	{
		ID: ReqServerKeepalive, Level: Must, Scope: Protocol, Only5: true,
		Title: "uses the Server Keep Alive of CONNACK in place of its own",
		V5:    []spec.ID{spec.V5_3_1_2_21, spec.V5_3_2_2_21},
	},
	{
		ID: ReqTopicAlias, Level: Must, Scope: Protocol, Only5: true,
		Title: "sends no Topic Alias above the server's Topic Alias Maximum, none when it is absent, and never alias 0",
		V5:    []spec.ID{spec.V5_3_2_2_17, spec.V5_3_2_2_18, spec.V5_3_3_2_9, spec.V5_3_3_2_8},
	},
	{
		ID: ReqReceiveMaximum, Level: Must, Scope: Protocol, Only5: true,
		Title: "keeps no more unacknowledged QoS 1 and QoS 2 messages in flight than the server's Receive Maximum",
		V5:    []spec.ID{spec.V5_3_3_4_7, spec.V5_4_9_0_2},
	},
	{
		ID: ReqReconnects, Level: Must, Scope: Contract,
		Title: "reconnects by itself after losing the connection or being refused, within the limit",
	},
	{
		ID: ReqStatus, Level: Must, Scope: Contract,
		Title: `announces itself online on every connection: retained {"online":true,"fw":...,"model":...} on its status topic at QoS 1`,
	},
	{
		ID: ReqWill, Level: Must, Scope: Contract,
		Title: `leaves its offline will on its status topic: {"online":false}, QoS 1, retained`,
		V311:  []spec.ID{spec.V311_3_1_2_9},
		V5:    []spec.ID{spec.V5_3_1_2_9},
	},
	{
		ID: ReqState, Level: Must, Scope: Contract,
		Title: "publishes its state on its state topic, retained, at QoS 1",
	},
	{
		ID: ReqCommands, Level: Must, Scope: Contract,
		Title: "subscribes to its command topics at QoS 1 and answers each command with an ack carrying the command's correlation id, within the limit",
	},
	{
		ID: ReqRejects, Level: Should, Scope: Contract,
		Title: "answers a command it cannot carry out (unknown or malformed) with a rejected ack that gives the reason",
	},
	{
		ID: ReqMessageQoS, Level: Must, Scope: Contract,
		Title: "publishes each kind of message at the contract's QoS: telemetry 0, events 1, billing 2, acks 1",
	},
	{
		ID: ReqEvents, Level: Must, Scope: Contract,
		Title: "gives every event its device id, an increasing per-device seq and a timestamp, and the command's corr when it answers one",
	},
	{
		ID: ReqPowerLoss, Level: Must, Scope: Contract,
		Title: "on a power loss leaves without DISCONNECT (so that the broker publishes its will), and comes back online when power returns",
	},
}

func init() {
	seen := map[string]bool{}
	for _, r := range Requirements {
		if seen[r.ID] {
			panic("device: requirement " + r.ID + " listed twice")
		}
		seen[r.ID] = true
		if len(r.V311) == 0 && len(r.V5) == 0 && len(r.Sections) == 0 && r.Scope == Protocol {
			panic("device: protocol requirement " + r.ID + " cites nothing of the specification")
		}
	}
}
