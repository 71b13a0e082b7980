package broker

import (
	"fmt"
	"sort"
	"strings"
)

// Fault names a deliberate, deterministic misbehaviour of the broker. Faults are off by default; a
// conformance suite turns one on to prove that its check catches the defect, and device
// certification turns them on to push firmware through error paths.
//
// Every fault mode, what it breaks and the statement it violates:
//
//	name                        effect                                                              breaks
//	drop-puback                 never send PUBACK for a QoS 1 PUBLISH from the client               MQTT-4.3.2-2 (3.1.1)
//	drop-pubrec                 never send PUBREC for a QoS 2 PUBLISH from the client               MQTT-4.3.3-2 (3.1.1), MQTT-4.3.3-8 (5.0)
//	drop-pubcomp                never send PUBCOMP for a PUBREL from the client                     MQTT-4.3.3-2 (3.1.1)
//	no-retain                   retained messages are neither stored nor delivered                  MQTT-3.3.1-5
//	no-will                     wills are never published                                           MQTT-3.1.2-8
//	no-dup                      redeliveries of QoS 1/2 messages carry DUP=0                        MQTT-3.3.1-1, MQTT-4.4.0-1
//	no-keepalive-timeout        idle clients are never closed                                       MQTT-3.1.2-24 (3.1.1), MQTT-3.1.2-22 (5.0)
//	qos-downgrade               every message is delivered at QoS 0                                 MQTT-3.8.4-6 (3.1.1), §4.3 (5.0)
//	slow-connack                CONNACK is delayed by Config.SlowConnackDelay                       (timing; no statement)
//	no-session-present          CONNACK always says session present 0                               MQTT-3.2.2-2 (3.1.1), MQTT-3.2.2-3 (5.0)
//	wrong-suback-qos            SUBACK grants QoS requested+1 (2 becomes 0)                         §3.8.4 (granted above requested)
//	drop-retained-on-subscribe  retained messages are stored but not sent on SUBSCRIBE              MQTT-3.3.1-6 (3.1.1), MQTT-3.3.1-9 (5.0)
//	no-message-order            messages to a client are delivered in swapped pairs                 MQTT-4.6.0-5 (3.1.1), MQTT-4.6.0-6 (5.0)
//	duplicate-qos2              every QoS 2 message is delivered twice, as two distinct messages    §4.3.3 (exactly once)
//	accept-wildcard-publish     a PUBLISH whose topic holds + or # is accepted and routed           MQTT-3.3.2-2
//
// A fault applies to the whole broker (FaultRule.ClientID empty) or to the connections of one client
// identifier. Where a fault acts on delivery (no-dup, qos-downgrade, no-message-order,
// duplicate-qos2, drop-retained-on-subscribe, no-retain on delivery) the client id is the receiver's;
// where it acts on what a client sends (drop-puback, drop-pubrec, drop-pubcomp, no-retain on storing,
// no-will, accept-wildcard-publish) it is the sender's.
type Fault string

// The fault modes. See the table in the documentation of Fault.
const (
	FaultDropPuback              Fault = "drop-puback"
	FaultDropPubrec              Fault = "drop-pubrec"
	FaultDropPubcomp             Fault = "drop-pubcomp"
	FaultNoRetain                Fault = "no-retain"
	FaultNoWill                  Fault = "no-will"
	FaultNoDup                   Fault = "no-dup"
	FaultNoKeepaliveTimeout      Fault = "no-keepalive-timeout"
	FaultQoSDowngrade            Fault = "qos-downgrade"
	FaultSlowConnack             Fault = "slow-connack"
	FaultNoSessionPresent        Fault = "no-session-present"
	FaultWrongSubackQoS          Fault = "wrong-suback-qos"
	FaultDropRetainedOnSubscribe Fault = "drop-retained-on-subscribe"
	FaultNoMessageOrder          Fault = "no-message-order"
	FaultDuplicateQoS2           Fault = "duplicate-qos2"
	FaultAcceptWildcardPublish   Fault = "accept-wildcard-publish"
)

// faultBits holds one bit per fault mode, in the order of allFaults.
type faultBits uint32

var allFaults = []Fault{
	FaultDropPuback, FaultDropPubrec, FaultDropPubcomp, FaultNoRetain, FaultNoWill, FaultNoDup,
	FaultNoKeepaliveTimeout, FaultQoSDowngrade, FaultSlowConnack, FaultNoSessionPresent,
	FaultWrongSubackQoS, FaultDropRetainedOnSubscribe, FaultNoMessageOrder, FaultDuplicateQoS2,
	FaultAcceptWildcardPublish,
}

// Faults returns the names of every fault mode, sorted.
func Faults() []Fault {
	out := append([]Fault(nil), allFaults...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (f Fault) bit() faultBits {
	for i, g := range allFaults {
		if g == f {
			return 1 << i
		}
	}
	return 0
}

// Valid reports whether f names a fault mode.
func (f Fault) Valid() bool { return f.bit() != 0 }

// FaultRule turns a fault mode on for the whole broker (ClientID empty) or for one client.
type FaultRule struct {
	Fault    Fault
	ClientID string
}

// String renders the rule as the CLI takes it: NAME or NAME@CLIENTID.
func (r FaultRule) String() string {
	if r.ClientID == "" {
		return string(r.Fault)
	}
	return string(r.Fault) + "@" + r.ClientID
}

// ParseFault parses NAME or NAME@CLIENTID, as given to `gatehouse broker --fault`.
func ParseFault(s string) (FaultRule, error) {
	name, client, _ := strings.Cut(strings.TrimSpace(s), "@")
	r := FaultRule{Fault: Fault(name), ClientID: client}
	if !r.Fault.Valid() {
		names := make([]string, 0, len(allFaults))
		for _, f := range Faults() {
			names = append(names, string(f))
		}
		return FaultRule{}, fmt.Errorf("unknown fault mode %q (known: %s)", name, strings.Join(names, ", "))
	}
	return r, nil
}

// faultTable resolves the faults that apply to a client identifier.
type faultTable struct {
	global    faultBits
	perClient map[string]faultBits
}

func newFaultTable(rules []FaultRule) (faultTable, error) {
	t := faultTable{}
	for _, r := range rules {
		b := r.Fault.bit()
		if b == 0 {
			return faultTable{}, fmt.Errorf("fault %q: unknown fault mode", r.Fault)
		}
		if r.ClientID == "" {
			t.global |= b
			continue
		}
		if t.perClient == nil {
			t.perClient = make(map[string]faultBits)
		}
		t.perClient[r.ClientID] |= b
	}
	return t, nil
}

// forClient returns the fault bits for a client identifier.
func (t faultTable) forClient(id string) faultBits {
	return t.global | t.perClient[id]
}

func (b faultBits) has(f Fault) bool { return b&f.bit() != 0 }
