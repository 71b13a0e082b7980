package mutant

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// The mutations of MQTT 5.0 features: properties, reason codes, flow control, topic aliases and
// the 5.0 forms of the connection rules. Each comment says what the proxy does; MutationsV5 says
// which MQTT 5.0 statements that breaks.
const (
	SwallowInvalidV5          Mutation = "swallow-invalid-v5"          // drops packets from a 5.0 client that do not decode or validate (CONNECT excepted), keeps the connection
	RepairConnectV5           Mutation = "repair-connect-v5"           // repairs a 5.0 CONNECT's protocol name, level (to 5) and reserved flag
	StripUserProperties       Mutation = "strip-user-properties"       // removes User Properties from every PUBLISH to the client
	ReverseUserProperties     Mutation = "reverse-user-properties"     // reverses the order of the User Properties of every PUBLISH to the client
	StripResponseTopic        Mutation = "strip-response-topic"        // removes Response Topic and Correlation Data from every PUBLISH to the client
	StripContentType          Mutation = "strip-content-type"          // removes Content Type and Payload Format Indicator from every PUBLISH to the client
	ExpiryPlusMinute          Mutation = "expiry-plus-minute"          // adds 60 s to the Message Expiry Interval of every PUBLISH to the client
	StripMessageExpiry        Mutation = "strip-message-expiry"        // removes the Message Expiry Interval from every PUBLISH from the client
	DropSubscriptionIDs       Mutation = "drop-subscription-ids"       // removes Subscription Identifiers from every PUBLISH to the client
	IgnoreReceiveMaximum      Mutation = "ignore-receive-maximum"      // removes Receive Maximum from CONNECT, so the broker's default applies
	DropWhenReceiveMaximum    Mutation = "drop-when-receive-maximum"   // sends no QoS 1 or 2 PUBLISH to a client that announced a Receive Maximum
	IgnoreMaxPacketSize       Mutation = "ignore-maximum-packet-size"  // removes Maximum Packet Size from CONNECT
	TopicAliasZero            Mutation = "topic-alias-zero"            // adds Topic Alias 0 to every PUBLISH to the client
	TopicAliasOverMax         Mutation = "topic-alias-over-max"        // adds a Topic Alias one above the client's Topic Alias Maximum to every PUBLISH to the client
	ShiftTopicAliases         Mutation = "shift-topic-aliases"         // adds one to every Topic Alias from the client
	RememberTopicAliases      Mutation = "remember-topic-aliases"      // fills in the Topic Name of an alias the client set on an earlier connection
	IgnoreNoLocal             Mutation = "ignore-no-local"             // clears No Local in SUBSCRIBE
	IgnoreRetainHandling      Mutation = "ignore-retain-handling"      // sets Retain Handling 0 in SUBSCRIBE
	DropAssignedClientID      Mutation = "drop-assigned-clientid"      // removes the Assigned Client Identifier from CONNACK
	AddResponseInformation    Mutation = "add-response-information"    // adds Response Information to every successful CONNACK
	ExplainAcks               Mutation = "explain-acks"                // adds a long Reason String to every CONNACK, acknowledgement, SUBACK, UNSUBACK and DISCONNECT
	TagAcks                   Mutation = "tag-acks"                    // adds a User Property to every CONNACK, acknowledgement, SUBACK, UNSUBACK and DISCONNECT
	ConnackReservedBit        Mutation = "connack-reserved-bit"        // sets a reserved bit of the CONNACK Acknowledge Flags
	DisconnectSessionExpiry   Mutation = "disconnect-session-expiry"   // adds a Session Expiry Interval to every DISCONNECT to the client
	DropDisconnect            Mutation = "drop-disconnect"             // drops every DISCONNECT to the client
	PingrespAfterDisconnect   Mutation = "pingresp-after-disconnect"   // sends PINGRESP after a DISCONNECT to the client
	KeepOpenAfterDisconnect   Mutation = "keep-open-after-disconnect"  // keeps the client's connection open after a DISCONNECT to it
	InvalidReasonCodes        Mutation = "invalid-reason-codes"        // replaces Reason Codes to the client by values their packet may not carry
	AddAuthenticationMethod   Mutation = "add-authentication-method"   // adds an Authentication Method to every successful CONNACK
	StripAuthenticationMethod Mutation = "strip-authentication-method" // removes the Authentication Method from CONNECT, so the broker accepts it
	LongRemainingLength       Mutation = "long-remaining-length"       // encodes the Remaining Length of short packets to the client in two bytes
	OmitPropertyLength        Mutation = "omit-property-length"        // leaves out the zero Property Length of SUBACK
	DisconnectBeforeConnack   Mutation = "disconnect-before-connack"   // sends DISCONNECT 0x82 when a connection's first packet is not a CONNECT
	ExpireSentMessages        Mutation = "expire-sent-messages"        // drops a re-sent PUBLISH to the client that carries a Message Expiry Interval
	ZeroSessionExpiry         Mutation = "zero-session-expiry"         // sets the Session Expiry Interval of CONNECT to 0
	KeepSessions              Mutation = "keep-sessions"               // raises a Session Expiry Interval below a minute to an hour
	IgnoreWillDelay           Mutation = "ignore-will-delay"           // removes the Will Delay Interval from CONNECT
	IgnoreKeepAlive           Mutation = "ignore-keepalive"            // sets Keep Alive 0 in CONNECT
	AnnounceMaximumQoS1       Mutation = "announce-maximum-qos-1"      // announces Maximum QoS 1 in CONNACK although the broker supports 2
	AnnounceNoRetain          Mutation = "announce-no-retain"          // announces Retain Available 0 in CONNACK although the broker retains
	RefuseLongClientIDsOpen   Mutation = "refuse-long-clientids-open"  // refuses Client Identifiers over 23 bytes with CONNACK 0x85 and keeps the connection open
	RefuseQoS2                Mutation = "refuse-qos2"                 // answers every QoS 2 PUBLISH with PUBREC 0x9B without announcing a Maximum QoS
	DoubleConnack             Mutation = "double-connack"              // sends every CONNACK twice
	PingrespBeforeConnackV5   Mutation = "pingresp-before-connack-v5"  // sends a PINGRESP before the CONNACK of every client but the suite's capability probe
	DropLatePubcomp           Mutation = "drop-late-pubcomp"           // answers a PUBREL that comes more than a second after its PUBREC with PUBCOMP 0x92
	ReservedFlagsV5           Mutation = "reserved-flags-v5"           // sets a reserved fixed header bit in PUBACK, SUBACK, UNSUBACK and PINGRESP to a 5.0 client
	QoS0PacketIDV5            Mutation = "qos0-packet-id-v5"           // puts a Packet Identifier into QoS 0 PUBLISH packets to a 5.0 client
	StripWill                 Mutation = "strip-will"                  // removes the will from CONNECT
	SameAssignedClientID      Mutation = "same-assigned-clientid"      // gives every Assigned Client Identifier in CONNACK the same value
	AcceptWithErrorCodeV5     Mutation = "accept-with-error-code-v5"   // answers an accepted CONNECT with CONNACK 0x80 and keeps the connection (the probe excepted)
	WildcardResponseTopics    Mutation = "wildcard-response-topics"    // lets a Response Topic with + or # through to the subscribers
	SplitSubscriptionIDs      Mutation = "split-subscription-ids"      // sends a PUBLISH with several Subscription Identifiers once per identifier, each copy with all of them
	HoldAtReceiveMaximum      Mutation = "hold-at-receive-maximum"     // drops PINGRESP, SUBACK and UNSUBACK while the client has its Receive Maximum of messages unacknowledged
	RetainHandlingOne         Mutation = "retain-handling-one"         // sets Retain Handling 1 in SUBSCRIBE, so a replaced subscription gets no retained messages
	UnsubscribeFirstOnly      Mutation = "unsubscribe-first-only"      // deletes only the first filter of an UNSUBSCRIBE, and pads the UNSUBACK to look complete
	DropAfterSessionExpiry    Mutation = "drop-after-session-expiry"   // stops delivering to a connection once it has lasted longer than its Session Expiry Interval
	DedupeQoS1IDs             Mutation = "dedupe-qos1-ids"             // treats a QoS 1 PUBLISH reusing a Packet Identifier as a duplicate: PUBACK, not forwarded
	ResendAfterPubrel         Mutation = "resend-after-pubrel"         // sends the PUBLISH again after a re-sent PUBREL
	RememberRefusedIDs        Mutation = "remember-refused-ids"        // answers a QoS 2 PUBLISH reusing a Packet Identifier the broker refused with PUBREC 0x91
	RememberCompletedIDs      Mutation = "remember-completed-ids"      // treats a QoS 2 PUBLISH reusing a completed Packet Identifier as a duplicate: acknowledged, not forwarded
	RetryRefused              Mutation = "retry-refused"               // sends a PUBLISH the client answered with an error Reason Code again
	DropRedeliveries          Mutation = "drop-redeliveries"           // drops every PUBLISH to the client with DUP 1
	ShareOnSessionEnd         Mutation = "share-on-session-end"        // offers a shared QoS 2 message to another member when the Session it went to ends unacknowledged
)

// MutationsV5 maps mutations to the MQTT 5.0 statements they break: those of this file, and
// those of the MQTT 3.1.1 mutations that break a 5.0 statement as well. The suite's own tests
// run the 5.0 checks of those statements against the reference broker behind the mutation and
// require each statement to be caught by a check that fails on it.
var MutationsV5 = map[Mutation][]spec.ID{
	SwallowInvalidV5: {spec.V5_1_5_4_1, spec.V5_1_5_4_2, spec.V5_1_5_7_1, spec.V5_3_3_1_4, spec.V5_3_3_2_1, spec.V5_3_3_2_2,
		spec.V5_4_7_0_1, spec.V5_3_3_2_13, spec.V5_3_3_2_19, spec.V5_3_6_1_1, spec.V5_3_8_1_1, spec.V5_3_8_3_2, spec.V5_3_8_3_5,
		spec.V5_3_10_1_1, spec.V5_3_10_3_2, spec.V5_3_14_1_1, spec.V5_3_15_1_1, spec.V5_4_7_1_1, spec.V5_4_7_1_2, spec.V5_4_7_3_1,
		spec.V5_4_7_3_2, spec.V5_4_13_1_1, spec.V5_3_8_3_4, spec.V5_4_8_2_1, spec.V5_4_8_2_2},
	RepairConnectV5:           {spec.V5_3_1_2_1, spec.V5_3_1_2_2, spec.V5_3_1_2_3, spec.V5_3_1_4_1},
	StripUserProperties:       {spec.V5_3_3_2_17, spec.V5_3_1_3_10},
	ReverseUserProperties:     {spec.V5_3_3_2_18, spec.V5_3_1_3_10},
	StripResponseTopic:        {spec.V5_3_3_2_15, spec.V5_3_3_2_16},
	StripContentType:          {spec.V5_3_3_2_20, spec.V5_3_3_2_4},
	ExpiryPlusMinute:          {spec.V5_3_3_2_6},
	StripMessageExpiry:        {spec.V5_3_3_2_5},
	DropSubscriptionIDs:       {spec.V5_3_3_4_3, spec.V5_3_3_4_4},
	IgnoreReceiveMaximum:      {spec.V5_3_3_4_9, spec.V5_4_9_0_2},
	DropWhenReceiveMaximum:    {spec.V5_4_9_0_1},
	IgnoreMaxPacketSize:       {spec.V5_3_1_2_24, spec.V5_3_1_2_25},
	TopicAliasZero:            {spec.V5_3_3_2_8},
	TopicAliasOverMax:         {spec.V5_3_1_2_26, spec.V5_3_1_2_27, spec.V5_3_3_2_11},
	ShiftTopicAliases:         {spec.V5_3_3_2_12},
	RememberTopicAliases:      {spec.V5_3_3_2_7},
	IgnoreNoLocal:             {spec.V5_3_8_3_3},
	IgnoreRetainHandling:      {spec.V5_3_3_1_10, spec.V5_3_3_1_11},
	DropAssignedClientID:      {spec.V5_3_1_3_7, spec.V5_3_2_2_16},
	AddResponseInformation:    {spec.V5_3_1_2_28},
	ExplainAcks:               {spec.V5_3_1_2_29, spec.V5_3_2_2_19, spec.V5_3_4_2_2, spec.V5_3_5_2_2, spec.V5_3_6_2_2, spec.V5_3_7_2_2, spec.V5_3_9_2_1, spec.V5_3_11_2_1, spec.V5_3_14_2_3},
	TagAcks:                   {spec.V5_3_2_2_20, spec.V5_3_4_2_3, spec.V5_3_5_2_3, spec.V5_3_6_2_3, spec.V5_3_7_2_3, spec.V5_3_9_2_2, spec.V5_3_11_2_2, spec.V5_3_14_2_4},
	ConnackReservedBit:        {spec.V5_3_2_2_1},
	DisconnectSessionExpiry:   {spec.V5_3_14_2_2},
	DropDisconnect:            {spec.V5_3_1_4_3},
	PingrespAfterDisconnect:   {spec.V5_3_14_4_1},
	KeepOpenAfterDisconnect:   {spec.V5_3_14_4_2, spec.V5_4_13_2_1},
	InvalidReasonCodes:        {spec.V5_3_2_2_8, spec.V5_3_4_2_1, spec.V5_3_5_2_1, spec.V5_3_6_2_1, spec.V5_3_7_2_1, spec.V5_3_11_3_2, spec.V5_3_14_2_1},
	AddAuthenticationMethod:   {spec.V5_4_12_0_6},
	StripAuthenticationMethod: {spec.V5_3_1_4_2, spec.V5_4_12_0_1, spec.V5_4_12_0_4, spec.V5_3_1_4_6, spec.V5_3_2_2_6},
	LongRemainingLength:       {spec.V5_1_5_5_1},
	OmitPropertyLength:        {spec.V5_2_2_2_1},
	DisconnectBeforeConnack:   {spec.V5_3_14_0_1},
	ExpireSentMessages:        {spec.V5_4_3_3_7},
	ZeroSessionExpiry:         {spec.V5_3_1_2_23},
	KeepSessions:              {spec.V5_4_1_0_2},
	IgnoreWillDelay:           {spec.V5_3_1_2_8},
	IgnoreKeepAlive:           {spec.V5_3_1_2_22, spec.V5_3_2_2_22},
	AnnounceMaximumQoS1:       {spec.V5_3_2_2_10, spec.V5_3_2_2_12},
	AnnounceNoRetain:          {spec.V5_3_2_2_13},
	RefuseLongClientIDsOpen:   {spec.V5_3_1_3_8},
	RefuseQoS2:                {spec.V5_3_2_2_9},
	DoubleConnack:             {spec.V5_3_2_0_2},
	PingrespBeforeConnackV5:   {spec.V5_3_2_0_1},
	DropLatePubcomp:           {spec.V5_4_3_3_13},
	ReservedFlagsV5:           {spec.V5_2_1_3_1},
	QoS0PacketIDV5:            {spec.V5_2_2_1_2},
	StripWill:                 {spec.V5_3_1_2_7},
	SameAssignedClientID:      {spec.V5_3_1_3_6, spec.V5_3_2_2_16},
	AcceptWithErrorCodeV5:     {spec.V5_3_1_4_5},
	WildcardResponseTopics:    {spec.V5_3_3_2_14},
	SplitSubscriptionIDs:      {spec.V5_3_3_4_5},
	HoldAtReceiveMaximum:      {spec.V5_3_3_4_10, spec.V5_4_9_0_3},
	RetainHandlingOne:         {spec.V5_3_8_4_4},
	UnsubscribeFirstOnly:      {spec.V5_3_10_4_6},
	DropAfterSessionExpiry:    {spec.V5_4_1_0_1},
	DedupeQoS1IDs:             {spec.V5_4_3_2_5},
	ResendAfterPubrel:         {spec.V5_4_3_3_6},
	RememberRefusedIDs:        {spec.V5_4_3_3_9},
	RememberCompletedIDs:      {spec.V5_4_3_3_12},
	RetryRefused:              {spec.V5_4_4_0_2, spec.V5_4_8_2_6},
	DropRedeliveries:          {spec.V5_4_8_2_4},
	ShareOnSessionEnd:         {spec.V5_4_8_2_5},

	// MQTT 3.1.1 mutations that break the same rules in 5.0.
	SessionPresentFlip:   {spec.V5_3_2_2_2, spec.V5_3_2_2_3, spec.V5_3_2_2_6},
	DupAlways:            {spec.V5_3_3_1_2, spec.V5_3_3_1_3, spec.V5_4_3_1_1, spec.V5_4_3_2_2, spec.V5_4_3_3_2},
	RetainFlip:           {spec.V5_3_3_1_12, spec.V5_3_3_1_13, spec.V5_3_1_2_15},
	AckIDOffByOne:        {spec.V5_2_2_1_5, spec.V5_2_2_1_6, spec.V5_3_8_4_2, spec.V5_3_10_4_5, spec.V5_4_3_3_4},
	DropPingresp:         {spec.V5_3_12_4_1, spec.V5_4_2_0_1},
	NormalizeTopics:      {spec.V5_4_7_3_4, spec.V5_1_5_4_3},
	SubackReversed:       {spec.V5_3_9_3_1},
	SubackOneCode:        {spec.V5_3_8_4_5, spec.V5_3_8_4_6},
	UnsubscribeIgnored:   {spec.V5_3_10_4_1, spec.V5_3_10_4_2, spec.V5_3_11_3_1},
	DropUnsuback:         {spec.V5_3_10_4_4, spec.V5_3_10_4_5},
	CleanToPersistent:    {spec.V5_3_1_2_4, spec.V5_3_1_4_4},
	PersistentToClean:    {spec.V5_3_1_2_5, spec.V5_3_1_2_6, spec.V5_4_4_0_1, spec.V5_4_3_2_3, spec.V5_4_3_3_3, spec.V5_4_3_3_5},
	MergeClientIDs:       {spec.V5_3_1_3_2},
	UniqueClientIDs:      {spec.V5_3_1_4_3, spec.V5_3_1_3_9},
	FixedEmptyClientID:   {spec.V5_3_2_2_16},
	RefuseShortClientIDs: {spec.V5_3_1_3_5},
	DuplicateDeliveries:  {spec.V5_3_8_4_3, spec.V5_4_3_3_10},
	DeliverOnce:          {spec.V5_4_5_0_1},
	DropPubrel:           {spec.V5_3_10_4_3, spec.V5_4_3_3_4},
	SamePacketID:         {spec.V5_2_2_1_4, spec.V5_4_3_2_1, spec.V5_4_3_3_1},
	IgnoreWildcards:      {spec.V5_4_7_1_1, spec.V5_4_7_1_2, spec.V5_3_10_4_1},
	TopicSuffix:          {spec.V5_3_3_2_3},
	FillEmptyRetained:    {spec.V5_3_3_1_6, spec.V5_3_3_1_7},
	RetainAll:            {spec.V5_3_3_1_8},
	WillRetainFlip:       {spec.V5_3_1_2_14, spec.V5_3_1_2_15},
	WillOnDisconnect:     {spec.V5_3_14_4_3, spec.V5_3_1_2_10},
	ReplayWill:           {spec.V5_3_1_2_10},
	DollarAsPlain:        {spec.V5_4_7_2_1},
	WSNoSubprotocol:      {spec.V5_6_0_0_4},
	WSTextFrames:         {spec.V5_6_0_0_1},
	WSFramePerPacket:     {spec.V5_6_0_0_2},
	SwallowSecondConnect: {spec.V5_3_1_0_2},
	KeepRefusedOpen:      {spec.V5_3_2_2_7},
	DropSuback:           {spec.V5_3_8_4_1},
	SubackReservedCode:   {spec.V5_3_9_3_2},
}

func init() {
	// The 5.0 mutations break no MQTT 3.1.1 statement; they are mutations all the same.
	for m := range MutationsV5 {
		if _, ok := Mutations[m]; !ok {
			Mutations[m] = nil
		}
	}
}

// v5state is what the 5.0 mutations remember about one connection.
type v5state struct {
	aliasMax   uint16               // the client's Topic Alias Maximum
	recvMax    bool                 // the client announced a Receive Maximum
	first      bool                 // the first packet from the client has been seen
	aliases    map[uint16]string    // Topic Alias mappings the client set on this connection
	pubrecs    map[uint16]time.Time // when the broker sent PUBREC, by Packet Identifier
	probe      bool                 // the connection is the suite's capability probe
	disconnect bool                 // a DISCONNECT went to the client
	recvMaxVal uint16               // the client's Receive Maximum, when announced
	inflight   map[uint16]bool      // QoS 1 and 2 PUBLISH packets to the client not yet acknowledged
	connectAt  time.Time            // when the client's CONNECT went through
	expiry     uint32               // the client's Session Expiry Interval
	seenQoS1   map[uint16]bool      // Packet Identifiers of QoS 1 PUBLISH packets from the client
	refused    map[uint16]bool      // Packet Identifiers the broker answered with a PUBREC error
	completed  map[uint16]bool      // Packet Identifiers of QoS 2 exchanges the broker completed
	sent       map[uint16][]byte    // QoS 1 and 2 PUBLISH packets to the client, by Packet Identifier
	unsubs     map[uint16]int       // the filter count of UNSUBSCRIBE packets shortened by unsubscribe-first-only
	shares     []string             // the shared subscription filters the client subscribed to
}

// v5mem holds the 5.0 mutations' state: per connection, and Topic Alias mappings per Client
// Identifier across connections (remember-topic-aliases).
var v5mem struct {
	// mu protects sessions and aliases.
	mu       sync.Mutex
	sessions map[*session]*v5state
	aliases  map[string]map[uint16]string
	// pubrels counts the PUBRELs sent to each Client Identifier and Packet Identifier, and
	// qos2 keeps the PUBLISH they release (resend-after-pubrel).
	pubrels map[string]int
	qos2    map[string][]byte
}

func (s *session) v5() *v5state {
	v5mem.mu.Lock()
	defer v5mem.mu.Unlock()
	if v5mem.sessions == nil {
		v5mem.sessions = map[*session]*v5state{}
	}
	st := v5mem.sessions[s]
	if st == nil {
		st = &v5state{aliases: map[uint16]string{}, pubrecs: map[uint16]time.Time{}, inflight: map[uint16]bool{},
			seenQoS1: map[uint16]bool{}, refused: map[uint16]bool{}, completed: map[uint16]bool{}, sent: map[uint16][]byte{},
			unsubs: map[uint16]int{}}
		v5mem.sessions[s] = st
	}
	return st
}

// explanation is the Reason String explain-acks adds: longer than any small Maximum Packet Size
// the suite announces.
const explanation = "the mutant proxy explains this packet at a length no small packet limit allows"

// clientV5 applies a 5.0 mutation to a packet from the client. done is false when the mutation
// is not one of this file's, and the 3.1.1 mutations apply.
func (p *Proxy) clientV5(s *session, raw []byte, pk packet.Packet, decodeErr, invalid error) (out [][]byte, keep, done bool) {
	if _, ok := MutationsV5[p.m]; !ok || Mutations[p.m] != nil {
		return nil, true, false
	}
	st := s.v5()
	first := !st.first
	st.first = true
	v, _ := s.state()
	pass := [][]byte{raw}
	if first && p.m == DisconnectBeforeConnack {
		if _, ok := pk.(*packet.Connect); !ok {
			s.toClient(enc(&packet.Disconnect{Code: packet.ProtocolError}, packet.V5))
		}
	}
	if p.m == RepairConnectV5 && len(raw) > 0 && raw[0]>>4 == byte(packet.TypeConnect) {
		if c, _, err := packet.Decode(repairConnect(raw, 5, 5), 0, 0); err == nil {
			pk, decodeErr, invalid = c, nil, nil
			raw = repairConnect(raw, 5, 5)
			pass = [][]byte{raw}
			s.mu.Lock()
			s.clientID, s.version = c.(*packet.Connect).ClientID, c.(*packet.Connect).Version
			s.mu.Unlock()
		}
	}
	if c, ok := pk.(*packet.Connect); ok && decodeErr == nil {
		return p.connectV5(s, st, raw, c)
	}
	if v != packet.V5 {
		return pass, true, true
	}
	if p.m == SwallowInvalidV5 && (decodeErr != nil || invalid != nil) {
		return nil, true, true
	}
	if decodeErr != nil {
		return pass, true, true
	}
	switch pk := pk.(type) {
	case *packet.Publish:
		changed := true
		switch {
		case p.m == StripMessageExpiry && pk.Props.Present.Has(packet.PropMessageExpiry):
			pk.Props.MessageExpiry = 0
			pk.Props.Present &^= 1 << packet.PropMessageExpiry
		case p.m == ShiftTopicAliases && pk.Props.Present.Has(packet.PropTopicAlias):
			pk.Props.TopicAlias++
		case p.m == RememberTopicAliases && pk.Props.Present.Has(packet.PropTopicAlias):
			s.mu.Lock()
			id := s.clientID
			s.mu.Unlock()
			v5mem.mu.Lock()
			if v5mem.aliases == nil {
				v5mem.aliases = map[string]map[uint16]string{}
			}
			known := v5mem.aliases[id]
			if known == nil {
				known = map[uint16]string{}
				v5mem.aliases[id] = known
			}
			if pk.Topic != "" {
				known[pk.Props.TopicAlias] = pk.Topic
				st.aliases[pk.Props.TopicAlias] = pk.Topic
				changed = false
			} else if _, here := st.aliases[pk.Props.TopicAlias]; !here && known[pk.Props.TopicAlias] != "" {
				// The mapping of an earlier connection, carried over: the defect.
				pk.Topic = known[pk.Props.TopicAlias]
				pk.Props.TopicAlias = 0
				pk.Props.Present &^= 1 << packet.PropTopicAlias
			} else {
				changed = false
			}
			v5mem.mu.Unlock()
		case p.m == RefuseQoS2 && pk.QoS == 2:
			s.toClient(enc(&packet.Pubrec{PacketID: pk.PacketID, Code: packet.QoSNotSupported}, v))
			return nil, true, true
		case p.m == WildcardResponseTopics && strings.ContainsAny(pk.Props.ResponseTopic, "+#"):
			pk.Props.ResponseTopic = strings.NewReplacer("+", "_plus_", "#", "_hash_").Replace(pk.Props.ResponseTopic)
		case p.m == DedupeQoS1IDs && pk.QoS == 1:
			v5mem.mu.Lock()
			seen := st.seenQoS1[pk.PacketID]
			st.seenQoS1[pk.PacketID] = true
			v5mem.mu.Unlock()
			if seen {
				s.toClient(enc(&packet.Puback{PacketID: pk.PacketID}, v))
				return nil, true, true
			}
			changed = false
		case p.m == RememberRefusedIDs && pk.QoS == 2:
			v5mem.mu.Lock()
			refused := st.refused[pk.PacketID]
			v5mem.mu.Unlock()
			if refused {
				s.toClient(enc(&packet.Pubrec{PacketID: pk.PacketID, Code: packet.PacketIdentifierInUse}, v))
				return nil, true, true
			}
			changed = false
		case p.m == RememberCompletedIDs && pk.QoS == 2:
			v5mem.mu.Lock()
			done := st.completed[pk.PacketID]
			v5mem.mu.Unlock()
			if done {
				s.toClient(enc(&packet.Pubrec{PacketID: pk.PacketID}, v))
				return nil, true, true
			}
			changed = false
		default:
			changed = false
		}
		if changed {
			return [][]byte{enc(pk, v)}, true, true
		}
	case *packet.Puback:
		p.clientAck(s, st, pk.PacketID, pk.Code)
	case *packet.Pubcomp:
		p.clientAck(s, st, pk.PacketID, 0)
	case *packet.Pubrec:
		if pk.Code.IsError() {
			p.clientAck(s, st, pk.PacketID, pk.Code)
		}
	case *packet.Unsubscribe:
		if p.m == UnsubscribeFirstOnly && len(pk.Filters) > 1 {
			v5mem.mu.Lock()
			st.unsubs[pk.PacketID] = len(pk.Filters)
			v5mem.mu.Unlock()
			pk.Filters = pk.Filters[:1]
			return [][]byte{enc(pk, v)}, true, true
		}
	case *packet.Pubrel:
		if p.m == RememberCompletedIDs {
			v5mem.mu.Lock()
			done := st.completed[pk.PacketID]
			v5mem.mu.Unlock()
			if done {
				s.toClient(enc(&packet.Pubcomp{PacketID: pk.PacketID}, v))
				return nil, true, true
			}
		}
		if p.m == DropLatePubcomp {
			v5mem.mu.Lock()
			at, ok := st.pubrecs[pk.PacketID]
			v5mem.mu.Unlock()
			if ok && time.Since(at) > time.Second {
				s.toClient(enc(&packet.Pubcomp{PacketID: pk.PacketID, Code: packet.PacketIdentifierNotFound}, v))
				return nil, true, true
			}
		}
	case *packet.Subscribe:
		for i := range pk.Subscriptions {
			switch p.m {
			case IgnoreNoLocal:
				pk.Subscriptions[i].NoLocal = false
			case IgnoreRetainHandling:
				pk.Subscriptions[i].RetainHandling = 0
			case RetainHandlingOne:
				pk.Subscriptions[i].RetainHandling = 1
			}
			if f := pk.Subscriptions[i].Filter; packet.IsSharedFilter(f) {
				v5mem.mu.Lock()
				st.shares = append(st.shares, f)
				v5mem.mu.Unlock()
			}
		}
		return [][]byte{enc(pk, v)}, true, true
	}
	return pass, true, true
}

// connectV5 applies a 5.0 mutation to a CONNECT.
func (p *Proxy) connectV5(s *session, st *v5state, raw []byte, c *packet.Connect) ([][]byte, bool, bool) {
	st.aliasMax = c.Props.TopicAliasMaximum
	st.recvMax = c.Props.Present.Has(packet.PropReceiveMaximum)
	st.probe = strings.HasPrefix(c.ClientID, "ghprobe")
	st.recvMaxVal = c.Props.ReceiveMaximum
	st.connectAt = time.Now()
	st.expiry = c.Props.SessionExpiry
	if c.Version != packet.V5 {
		return [][]byte{raw}, true, true
	}
	pr := &c.Props
	switch p.m {
	case IgnoreReceiveMaximum:
		pr.ReceiveMaximum = 0
		pr.Present &^= 1 << packet.PropReceiveMaximum
	case IgnoreMaxPacketSize:
		pr.MaximumPacketSize = 0
		pr.Present &^= 1 << packet.PropMaximumPacketSize
	case StripAuthenticationMethod:
		pr.AuthMethod = ""
		pr.Present &^= 1 << packet.PropAuthMethod
	case ZeroSessionExpiry:
		pr.SessionExpiry = 0
		pr.Present &^= 1 << packet.PropSessionExpiry
	case KeepSessions:
		if pr.SessionExpiry > 0 && pr.SessionExpiry < 60 {
			pr.SessionExpiry = 3600
		}
	case IgnoreWillDelay:
		if c.Will != nil {
			c.Will.Props.WillDelay = 0
			c.Will.Props.Present &^= 1 << packet.PropWillDelay
		}
	case IgnoreKeepAlive:
		c.KeepAlive = 0
	case StripWill:
		if c.Will == nil {
			return [][]byte{raw}, true, true
		}
		c.Will = nil
	case RefuseLongClientIDsOpen:
		if len(c.ClientID) > 23 {
			s.toClient(enc(&packet.Connack{Code: packet.ClientIdentifierNotValid}, packet.V5))
			return nil, true, true
		}
		return [][]byte{raw}, true, true
	default:
		return [][]byte{raw}, true, true
	}
	return [][]byte{enc(c, packet.V5)}, true, true
}

// brokerV5 applies a 5.0 mutation to a packet from the broker. done is false when the mutation
// is not one of this file's.
func (p *Proxy) brokerV5(s *session, raw []byte, pk packet.Packet) (out [][]byte, done bool) {
	if _, ok := MutationsV5[p.m]; !ok || Mutations[p.m] != nil {
		return nil, false
	}
	v, _ := s.state()
	if v != packet.V5 {
		return [][]byte{raw}, true
	}
	st := s.v5()
	// Mutations of the CONNACK's framing spare the suite's capability probe, which would
	// otherwise take the broker for one that does not speak MQTT 5.0 at all.
	if p.m == LongRemainingLength && !st.probe && len(raw) > 1 && raw[1] < 0x80 {
		return [][]byte{append([]byte{raw[0], raw[1] | 0x80, 0x00}, raw[2:]...)}, true
	}
	if p.m == PingrespAfterDisconnect && st.disconnect {
		return nil, true
	}
	if p.m == ReservedFlagsV5 && len(raw) > 0 {
		switch pk.Type() {
		case packet.TypePuback, packet.TypeSuback, packet.TypeUnsuback, packet.TypePingresp:
			out := append([]byte(nil), raw...)
			out[0] |= 0x01
			return [][]byte{out}, true
		}
	}
	if p.m == HoldAtReceiveMaximum && st.recvMaxVal > 0 {
		switch pk.Type() {
		case packet.TypePingresp, packet.TypeSuback, packet.TypeUnsuback:
			v5mem.mu.Lock()
			full := len(st.inflight) >= int(st.recvMaxVal)
			v5mem.mu.Unlock()
			if full {
				return nil, true
			}
		}
	}
	var pr *packet.Properties
	switch pk := pk.(type) {
	case *packet.Connack:
		pr = &pk.Props
		switch p.m {
		case SameAssignedClientID:
			if pr.AssignedClientID == "" {
				return [][]byte{raw}, true
			}
			pr.AssignedClientID = "mutantassigned"
		case AcceptWithErrorCodeV5:
			if pk.Code != packet.Success || st.probe {
				return [][]byte{raw}, true
			}
			pk.Code = packet.UnspecifiedError
		case ConnackReservedBit:
			if st.probe {
				return [][]byte{raw}, true
			}
			out := append([]byte(nil), raw...)
			out[2] |= 0x02
			return [][]byte{out}, true
		case DropAssignedClientID:
			pr.AssignedClientID = ""
			pr.Present &^= 1 << packet.PropAssignedClientID
		case AddResponseInformation:
			if pk.Code == packet.Success {
				pr.ResponseInfo = "mutant/response/"
			}
		case AddAuthenticationMethod:
			if pk.Code == packet.Success {
				pr.AuthMethod = "mutant-method"
			}
		case AnnounceMaximumQoS1:
			pr.MaximumQoS = 1
			pr.Present.Add(packet.PropMaximumQoS)
		case AnnounceNoRetain:
			pr.RetainAvailable = 0
			pr.Present.Add(packet.PropRetainAvailable)
		case InvalidReasonCodes:
			if pk.Code != packet.Success {
				pk.Code = 0x01
			}
		case DoubleConnack:
			return [][]byte{raw, raw}, true
		case PingrespBeforeConnackV5:
			if !st.probe {
				return [][]byte{enc(&packet.Pingresp{}, v), raw}, true
			}
			return [][]byte{raw}, true
		case ExplainAcks, TagAcks:
		default:
			return [][]byte{raw}, true
		}
	case *packet.Publish:
		pr = &pk.Props
		if pk.QoS > 0 {
			v5mem.mu.Lock()
			st.inflight[pk.PacketID] = true
			st.sent[pk.PacketID] = append([]byte(nil), raw...)
			v5mem.mu.Unlock()
		}
		if pk.QoS == 2 && p.m == ResendAfterPubrel {
			v5mem.mu.Lock()
			if v5mem.qos2 == nil {
				v5mem.qos2 = map[string][]byte{}
			}
			v5mem.qos2[s.id()+"/"+itoa36(uint64(pk.PacketID))] = append([]byte(nil), raw...)
			v5mem.mu.Unlock()
		}
		switch p.m {
		case QoS0PacketIDV5:
			if pk.QoS != 0 {
				return [][]byte{raw}, true
			}
			body := append([]byte{byte(len(pk.Topic) >> 8), byte(len(pk.Topic))}, pk.Topic...)
			body = append(body, 0x00, 0x07, 0x00)
			body = append(body, pk.Payload...)
			return [][]byte{append(append([]byte{0x30 | pk.Flags()}, packet.AppendVarint(nil, len(body))...), body...)}, true
		case WildcardResponseTopics:
			if !strings.Contains(pr.ResponseTopic, "_plus_") && !strings.Contains(pr.ResponseTopic, "_hash_") {
				return [][]byte{raw}, true
			}
			pr.ResponseTopic = strings.NewReplacer("_plus_", "+", "_hash_", "#").Replace(pr.ResponseTopic)
		case SplitSubscriptionIDs:
			if len(pr.SubscriptionIDs) < 2 {
				return [][]byte{raw}, true
			}
			out := make([][]byte, len(pr.SubscriptionIDs))
			for i := range out {
				out[i] = raw
			}
			return out, true
		case DropAfterSessionExpiry:
			if st.expiry > 0 && time.Since(st.connectAt) > time.Duration(st.expiry)*time.Second {
				return nil, true
			}
			return [][]byte{raw}, true
		case DropRedeliveries:
			if pk.Dup {
				return nil, true
			}
			return [][]byte{raw}, true
		case ShareOnSessionEnd:
			if pk.QoS == 2 && st.expiry == 0 && len(st.shares) > 0 {
				msg := append([]byte(nil), raw...)
				p.goFunc(func() { p.shareOnEnd(s, st, pk.PacketID, msg) })
			}
			return [][]byte{raw}, true
		case StripUserProperties:
			pr.User = nil
		case ReverseUserProperties:
			for i, j := 0, len(pr.User)-1; i < j; i, j = i+1, j-1 {
				pr.User[i], pr.User[j] = pr.User[j], pr.User[i]
			}
		case StripResponseTopic:
			pr.ResponseTopic, pr.CorrelationData = "", nil
			pr.Present &^= 1<<packet.PropResponseTopic | 1<<packet.PropCorrelationData
		case StripContentType:
			pr.ContentType, pr.PayloadFormat = "", 0
			pr.Present &^= 1<<packet.PropContentType | 1<<packet.PropPayloadFormat
		case ExpiryPlusMinute:
			if !pr.Present.Has(packet.PropMessageExpiry) {
				return [][]byte{raw}, true
			}
			pr.MessageExpiry += 60
		case DropSubscriptionIDs:
			pr.SubscriptionIDs = nil
		case TopicAliasZero:
			pr.TopicAlias = 0
			pr.Present.Add(packet.PropTopicAlias)
		case TopicAliasOverMax:
			pr.TopicAlias = st.aliasMax + 1
		case DropWhenReceiveMaximum:
			if st.recvMax && pk.QoS > 0 {
				return nil, true
			}
			return [][]byte{raw}, true
		case ExpireSentMessages:
			if pk.Dup && pr.Present.Has(packet.PropMessageExpiry) {
				return nil, true
			}
			return [][]byte{raw}, true
		default:
			return [][]byte{raw}, true
		}
		return [][]byte{enc(pk, v)}, true
	case *packet.Puback:
		pr = &pk.Props
		if p.m == InvalidReasonCodes && pk.Code == packet.Success {
			pk.Code = 0x01
		}
	case *packet.Pubrec:
		pr = &pk.Props
		if p.m == RememberRefusedIDs && pk.Code.IsError() {
			v5mem.mu.Lock()
			st.refused[pk.PacketID] = true
			v5mem.mu.Unlock()
		}
		if p.m == DropLatePubcomp {
			v5mem.mu.Lock()
			st.pubrecs[pk.PacketID] = time.Now()
			v5mem.mu.Unlock()
			return [][]byte{raw}, true
		}
		if p.m == InvalidReasonCodes && pk.Code == packet.Success {
			pk.Code = 0x01
		}
	case *packet.Pubrel:
		pr = &pk.Props
		if p.m == ResendAfterPubrel {
			key := s.id() + "/" + itoa36(uint64(pk.PacketID))
			v5mem.mu.Lock()
			if v5mem.pubrels == nil {
				v5mem.pubrels = map[string]int{}
			}
			v5mem.pubrels[key]++
			again, stored := v5mem.pubrels[key] > 1, v5mem.qos2[key]
			v5mem.mu.Unlock()
			if again && stored != nil {
				// The PUBREL is re-sent after a reconnect: so, wrongly, is the PUBLISH.
				dup := append([]byte(nil), stored...)
				_ = packet.SetDup(dup, true)
				return [][]byte{raw, dup}, true
			}
			return [][]byte{raw}, true
		}
		if p.m == InvalidReasonCodes && pk.Code == packet.Success {
			pk.Code = 0x10
		}
	case *packet.Pubcomp:
		pr = &pk.Props
		if p.m == RememberCompletedIDs {
			v5mem.mu.Lock()
			st.completed[pk.PacketID] = true
			v5mem.mu.Unlock()
			return [][]byte{raw}, true
		}
		if p.m == InvalidReasonCodes && pk.Code == packet.Success {
			pk.Code = 0x10
		}
	case *packet.Suback:
		pr = &pk.Props
		if p.m == OmitPropertyLength && len(raw) > 4 && raw[1] < 0x80 && raw[4] == 0 {
			return [][]byte{append([]byte{raw[0], raw[1] - 1, raw[2], raw[3]}, raw[5:]...)}, true
		}
	case *packet.Unsuback:
		pr = &pk.Props
		if p.m == UnsubscribeFirstOnly {
			v5mem.mu.Lock()
			n := st.unsubs[pk.PacketID]
			delete(st.unsubs, pk.PacketID)
			v5mem.mu.Unlock()
			for len(pk.Codes) < n {
				pk.Codes = append(pk.Codes, packet.Success)
			}
		}
		if p.m == InvalidReasonCodes {
			for i, c := range pk.Codes {
				if c == packet.Success {
					pk.Codes[i] = 0x01
				}
			}
		}
	case *packet.Disconnect:
		pr = &pk.Props
		switch p.m {
		case DisconnectSessionExpiry:
			pr.SessionExpiry = 60
		case DropDisconnect:
			return nil, true
		case PingrespAfterDisconnect:
			st.disconnect = true
			return [][]byte{raw, enc(&packet.Pingresp{}, v)}, true
		case KeepOpenAfterDisconnect:
			s.holdOpen.Store(true)
			return [][]byte{raw}, true
		case InvalidReasonCodes:
			pk.Code = packet.DisconnectWithWill
		}
	default:
		return [][]byte{raw}, true
	}
	switch p.m {
	case ExplainAcks:
		pr.ReasonString = explanation
	case TagAcks:
		pr.User = append(pr.User, packet.UserProperty{Key: "mutant", Value: explanation})
	}
	return [][]byte{enc(pk, v)}, true
}

// clientAck records an acknowledgement from the client of a PUBLISH the broker sent: it leaves
// the in-flight count, and retry-refused sends a refused message again.
func (p *Proxy) clientAck(s *session, st *v5state, id uint16, code packet.ReasonCode) {
	v5mem.mu.Lock()
	delete(st.inflight, id)
	raw := st.sent[id]
	delete(st.sent, id)
	v5mem.mu.Unlock()
	if p.m == RetryRefused && code.IsError() && raw != nil {
		dup := append([]byte(nil), raw...)
		_ = packet.SetDup(dup, true)
		s.toClient(dup)
	}
}

// id returns the connection's Client Identifier.
func (s *session) id() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientID
}

// shareOnEnd is share-on-session-end: it watches, for a bounded half second, whether the
// connection that got a shared QoS 2 message closes before acknowledging it, and if so sends the
// message to another connection subscribed to the same shared filter.
func (p *Proxy) shareOnEnd(s *session, st *v5state, id uint16, msg []byte) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for range 20 {
		<-tick.C
		v5mem.mu.Lock()
		acked := !st.inflight[id]
		v5mem.mu.Unlock()
		p.mu.Lock()
		_, open := p.conns[s]
		var others []*session
		for o := range p.conns {
			others = append(others, o)
		}
		p.mu.Unlock()
		switch {
		case acked:
			return
		case open:
			continue
		}
		for _, o := range others {
			ost := o.v5()
			v5mem.mu.Lock()
			shared := false
			for _, f := range ost.shares {
				shared = shared || slices.Contains(st.shares, f)
			}
			v5mem.mu.Unlock()
			if shared {
				o.toClient(msg)
				return
			}
		}
		return
	}
}
