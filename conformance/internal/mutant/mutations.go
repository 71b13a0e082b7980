package mutant

import (
	"bytes"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/spec"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// The mutations. Each comment says what the proxy does; Mutations says which MQTT 3.1.1
// statements that breaks.
const (
	SwallowInvalid        Mutation = "swallow-invalid"          // drops packets from the client that do not decode or validate, keeps the connection
	NormalizeConnect      Mutation = "normalize-connect"        // repairs a CONNECT's protocol name, level and reserved flag before the broker sees it
	SessionPresentFlip    Mutation = "session-present-flip"     // inverts Session Present in every CONNACK
	DupAlways             Mutation = "dup-always"               // sets DUP on every PUBLISH to the client
	RetainFlip            Mutation = "retain-flip"              // inverts RETAIN on every PUBLISH to the client
	AckIDOffByOne         Mutation = "ack-id-off-by-one"        // adds one to the Packet Identifier of every acknowledgement to the client
	DropPingresp          Mutation = "drop-pingresp"            // drops PINGRESP
	PingrespBeforeConnack Mutation = "pingresp-before-connack"  // sends a PINGRESP before the CONNACK
	NormalizeTopics       Mutation = "normalize-topics"         // lower-cases topics and filters, strips U+FEFF, collapses empty levels
	SubackReversed        Mutation = "suback-reversed"          // reverses the return codes of SUBACK
	SubackOneCode         Mutation = "suback-one-code"          // keeps only the first return code of SUBACK
	UnsubscribeIgnored    Mutation = "unsubscribe-ignored"      // answers UNSUBSCRIBE itself without deleting anything
	DropUnsuback          Mutation = "drop-unsuback"            // drops UNSUBACK
	CleanToPersistent     Mutation = "clean-to-persistent"      // turns CleanSession 1 into 0
	PersistentToClean     Mutation = "persistent-to-clean"      // turns CleanSession 0 into 1
	MergeClientIDs        Mutation = "merge-client-ids"         // cuts ClientIds to their first ten characters, so the suite's roles share one
	UniqueClientIDs       Mutation = "unique-client-ids"        // makes every connection's ClientId unique, so nothing is taken over
	FixedEmptyClientID    Mutation = "fixed-empty-clientid"     // gives every zero-byte ClientId the same identifier
	RefuseShortClientIDs  Mutation = "refuse-short-clientids"   // refuses ClientIds of one character with return code 0x02
	DuplicateDeliveries   Mutation = "duplicate-deliveries"     // sends every PUBLISH to the client twice
	DeliverOnce           Mutation = "deliver-once"             // delivers a message to the first subscriber only
	DropPubrel            Mutation = "drop-pubrel"              // drops PUBREL to the client
	SamePacketID          Mutation = "same-packet-id"           // gives every QoS 1 and 2 PUBLISH to the client Packet Identifier 1
	IgnoreWildcards       Mutation = "ignore-wildcards"         // grants wildcard subscriptions but subscribes to the filter's literal text
	TopicSuffix           Mutation = "topic-suffix"             // appends /x to the topic of every PUBLISH to the client
	DropLongTopics        Mutation = "drop-long-topics"         // drops PUBLISH packets whose topic is longer than 1,024 bytes
	DropPublishAfterPing  Mutation = "drop-publish-after-ping"  // stops delivering to a client once it has sent PINGREQ
	DropQoS0Retained      Mutation = "drop-qos0-retained"       // drops retained PUBLISH packets of QoS 0
	FillEmptyRetained     Mutation = "fill-empty-retained"      // gives retained PUBLISH packets with an empty payload a payload
	RetainAll             Mutation = "retain-all"               // sets RETAIN on every PUBLISH from the client
	WillRetainFlip        Mutation = "will-retain-flip"         // inverts Will Retain in CONNECT
	AddWill               Mutation = "add-will"                 // gives a CONNECT without a will one on the check's topics
	WillOnDisconnect      Mutation = "will-on-disconnect"       // turns DISCONNECT into a lost connection
	ReplayWill            Mutation = "replay-will"              // gives a reconnecting client the will of its previous CONNECT
	SetReservedFlags      Mutation = "set-reserved-flags"       // sets a reserved fixed header bit in acknowledgements to the client
	DollarAsPlain         Mutation = "dollar-as-plain"          // stores $ topics under a plain name, so wildcards match them
	WSNoSubprotocol       Mutation = "ws-no-subprotocol"        // selects no WebSocket subprotocol
	WSTextFrames          Mutation = "ws-text-frames"           // sends MQTT to WebSocket clients in text frames
	WSFramePerPacket      Mutation = "ws-frame-per-packet"      // takes every WebSocket frame from a client to be exactly one packet
	WSAcceptText          Mutation = "ws-accept-text"           // reads text frames from clients as if they were binary
	QoS0PacketID          Mutation = "qos0-packet-id"           // puts a Packet Identifier into QoS 0 PUBLISH packets to the client
	SwallowSecondConnect  Mutation = "swallow-second-connect"   // ignores a second CONNECT on a connection
	ClearRetainedAtEnd    Mutation = "clear-retained-at-end"    // deletes a client's retained messages when its connection ends
	AcceptWithNonzeroCode Mutation = "accept-with-nonzero-code" // accepts a connection but says 0x03 (server unavailable) in CONNACK
	KeepRefusedOpen       Mutation = "keep-refused-open"        // keeps the connection open after a CONNACK that refuses it
	TopicLatin1           Mutation = "topic-latin1"             // sends topic names to the client in ISO 8859-1 instead of UTF-8
	DropSuback            Mutation = "drop-suback"              // drops SUBACK
	SubackReservedCode    Mutation = "suback-reserved-code"     // grants QoS 1 with the reserved return code 0x03
)

// Mutations maps every mutation to the MQTT 3.1.1 statements it breaks: the suite's own tests run
// the checks of those statements against the reference broker behind the mutation and require
// each statement to be caught by a check that fails on it.
var Mutations = map[Mutation][]spec.ID{
	SwallowInvalid: {spec.V311_1_5_3_1, spec.V311_1_5_3_2, spec.V311_2_2_2_2, spec.V311_2_3_1_1, spec.V311_3_1_2_3,
		spec.V311_3_1_4_1, spec.V311_3_3_1_4, spec.V311_3_6_1_1, spec.V311_3_8_1_1, spec.V311_3_8_3_3, spec.V311_3_8_3_4,
		spec.V311_3_10_1_1, spec.V311_3_10_3_2, spec.V311_3_14_1_1, spec.V311_4_7_1_2, spec.V311_4_7_1_3, spec.V311_4_7_3_1,
		spec.V311_4_7_3_2, spec.V311_4_8_0_1, spec.V311_3_3_2_2, spec.V311_4_7_1_1},
	NormalizeConnect:      {spec.V311_3_1_2_1, spec.V311_3_1_2_2, spec.V311_3_1_2_3, spec.V311_3_1_4_5},
	SessionPresentFlip:    {spec.V311_3_2_2_1, spec.V311_3_2_2_2, spec.V311_3_2_2_3, spec.V311_3_2_2_4},
	DupAlways:             {spec.V311_3_3_1_2, spec.V311_3_3_1_3, spec.V311_4_3_1_1, spec.V311_4_3_2_1, spec.V311_4_3_3_1},
	RetainFlip:            {spec.V311_3_3_1_8, spec.V311_3_3_1_9},
	AckIDOffByOne:         {spec.V311_2_3_1_6, spec.V311_2_3_1_7, spec.V311_3_8_4_2, spec.V311_3_10_4_4},
	DropPingresp:          {spec.V311_3_12_4_1, spec.V311_7_1_1_1},
	PingrespBeforeConnack: {spec.V311_3_2_0_1},
	NormalizeTopics:       {spec.V311_4_7_3_4, spec.V311_1_5_3_3},
	SubackReversed:        {spec.V311_3_9_3_1},
	SubackOneCode:         {spec.V311_3_8_4_4, spec.V311_3_8_4_5},
	UnsubscribeIgnored:    {spec.V311_3_10_4_1, spec.V311_3_10_4_2, spec.V311_3_10_4_6},
	DropUnsuback:          {spec.V311_3_10_4_4, spec.V311_3_10_4_5},
	CleanToPersistent:     {spec.V311_3_1_2_6},
	PersistentToClean:     {spec.V311_3_1_2_4, spec.V311_3_1_2_5, spec.V311_4_4_0_1, spec.V311_4_1_0_1, spec.V311_3_1_4_3},
	MergeClientIDs:        {spec.V311_3_1_3_2},
	UniqueClientIDs:       {spec.V311_3_1_4_2},
	FixedEmptyClientID:    {spec.V311_3_1_3_6, spec.V311_3_1_3_8, spec.V311_3_1_3_9},
	RefuseShortClientIDs:  {spec.V311_3_1_3_5},
	DuplicateDeliveries:   {spec.V311_3_8_4_3, spec.V311_4_3_3_1},
	DeliverOnce:           {spec.V311_4_5_0_1},
	DropPubrel:            {spec.V311_3_10_4_3, spec.V311_4_3_3_1},
	SamePacketID:          {spec.V311_2_3_1_4},
	IgnoreWildcards:       {spec.V311_3_8_3_2, spec.V311_4_7_1_2, spec.V311_4_7_1_3},
	TopicSuffix:           {spec.V311_3_3_2_3},
	DropLongTopics:        {spec.V311_4_7_3_3},
	DropPublishAfterPing:  {spec.V311_4_1_0_2},
	DropQoS0Retained:      {spec.V311_3_3_1_7},
	FillEmptyRetained:     {spec.V311_3_3_1_10, spec.V311_3_3_1_11},
	RetainAll:             {spec.V311_3_3_1_12},
	WillRetainFlip:        {spec.V311_3_1_2_16, spec.V311_3_1_2_17},
	AddWill:               {spec.V311_3_1_2_12},
	WillOnDisconnect:      {spec.V311_3_14_4_3},
	ReplayWill:            {spec.V311_3_1_2_10},
	SetReservedFlags:      {spec.V311_2_2_2_1},
	DollarAsPlain:         {spec.V311_4_7_2_1},
	WSNoSubprotocol:       {spec.V311_6_0_0_4},
	WSTextFrames:          {spec.V311_6_0_0_1},
	WSFramePerPacket:      {spec.V311_6_0_0_2},
	WSAcceptText:          {spec.V311_6_0_0_1},
	QoS0PacketID:          {spec.V311_2_3_1_5},
	SwallowSecondConnect:  {spec.V311_3_1_0_2},
	ClearRetainedAtEnd:    {spec.V311_3_1_2_7},
	AcceptWithNonzeroCode: {spec.V311_3_1_4_4},
	KeepRefusedOpen:       {spec.V311_3_2_2_5},
	TopicLatin1:           {spec.V311_3_3_2_1},
	DropSuback:            {spec.V311_3_8_4_1},
	SubackReservedCode:    {spec.V311_3_9_3_2},
}

// client applies the mutation to a packet from the client (pk nil or bad non-nil when it does not
// decode or validate) and returns what goes to the broker; false ends the connection.
func (p *Proxy) client(s *session, raw []byte, pk packet.Packet, decodeErr, invalid error) ([][]byte, bool) {
	if out, keep, done := p.clientV5(s, raw, pk, decodeErr, invalid); done {
		return out, keep
	}
	v, _ := s.state()
	switch {
	case (decodeErr != nil || invalid != nil) && p.m == SwallowInvalid:
		return nil, true
	case decodeErr != nil:
		return [][]byte{raw}, true
	}
	if c, ok := pk.(*packet.Connect); ok {
		// Connect mutations apply to CONNECTs that decode, valid or not (a zero-byte ClientId
		// with CleanSession 0 is the client's violation, and the broker's to refuse).
		if s.connects++; s.connects > 1 && p.m == SwallowSecondConnect {
			return nil, true
		}
		return p.connect(s, raw, c)
	}
	if invalid != nil {
		return [][]byte{raw}, true
	}
	switch pk := pk.(type) {
	case *packet.Publish:
		switch p.m {
		case NormalizeTopics:
			pk.Topic = normalize(pk.Topic)
		case IgnoreWildcards:
		case DropLongTopics:
			if len(pk.Topic) > 1024 {
				return nil, true
			}
		case DropQoS0Retained:
			if pk.Retain && pk.QoS == 0 {
				return nil, true
			}
		case FillEmptyRetained:
			if pk.Retain && len(pk.Payload) == 0 {
				pk.Payload = []byte("not deleted")
			}
		case RetainAll:
			pk.Retain = true
		case ClearRetainedAtEnd:
			if pk.Retain && len(pk.Payload) > 0 {
				s.retained = append(s.retained, pk.Topic)
			}
			return [][]byte{raw}, true
		case DollarAsPlain:
			pk.Topic = undollar(pk.Topic)
		default:
			return [][]byte{raw}, true
		}
		return [][]byte{enc(pk, v)}, true
	case *packet.Subscribe:
		for i := range pk.Subscriptions {
			f := &pk.Subscriptions[i].Filter
			switch p.m {
			case NormalizeTopics:
				*f = normalize(*f)
			case IgnoreWildcards:
				*f = strings.NewReplacer("+", "_plus_", "#", "_hash_").Replace(*f)
			case DollarAsPlain:
				*f = undollar(*f)
			}
		}
		return [][]byte{enc(pk, v)}, true
	case *packet.Unsubscribe:
		switch p.m {
		case UnsubscribeIgnored:
			s.toClient(enc(&packet.Unsuback{PacketID: pk.PacketID}, v))
			return nil, true
		case NormalizeTopics, DollarAsPlain:
			for i, f := range pk.Filters {
				if p.m == NormalizeTopics {
					pk.Filters[i] = normalize(f)
				} else {
					pk.Filters[i] = undollar(f)
				}
			}
			return [][]byte{enc(pk, v)}, true
		}
	case *packet.Disconnect:
		switch p.m {
		case WillOnDisconnect:
			return nil, false
		case ClearRetainedAtEnd:
			return append(s.clearRetained(), raw), true
		}
	}
	return [][]byte{raw}, true
}

// clearRetained returns the packets that delete the retained messages the client published, for
// clear-retained-at-end; they go to the broker before the connection ends.
func (s *session) clearRetained() [][]byte {
	v, _ := s.state()
	out := make([][]byte, 0, len(s.retained))
	for _, t := range s.retained {
		out = append(out, enc(&packet.Publish{Topic: t, Retain: true}, v))
	}
	s.retained = nil
	return out
}

func (p *Proxy) connect(s *session, raw []byte, c *packet.Connect) ([][]byte, bool) {
	v, _ := s.state()
	switch p.m {
	case CleanToPersistent:
		c.CleanStart = c.CleanStart && c.ClientID == ""
	case PersistentToClean:
		c.CleanStart = true
	case MergeClientIDs:
		if len(c.ClientID) > 10 {
			c.ClientID = c.ClientID[:10]
		}
	case UniqueClientIDs:
		c.ClientID = uniqueSuffix(c.ClientID)
	case FixedEmptyClientID:
		if c.ClientID == "" {
			c.ClientID = "anonymous"
		}
	case RefuseShortClientIDs:
		if len(c.ClientID) == 1 {
			s.toClient(enc(&packet.Connack{Code: packet.ConnRefusedIdentifierRejected}, v))
			return nil, false
		}
	case WillRetainFlip:
		if c.Will != nil {
			c.Will.Retain = !c.Will.Retain
		}
	case AddWill:
		if c.Will == nil {
			if u := uniqOf(c.ClientID); u != "" {
				c.Will = &packet.Will{Topic: "gatehouse/" + u + "/added-will", Payload: []byte("unasked")}
			}
		}
	case ReplayWill:
		p.mu.Lock()
		if c.Will != nil {
			p.wills[c.ClientID] = c.Will
		} else if w := p.wills[c.ClientID]; w != nil {
			c.Will = w
		}
		p.mu.Unlock()
	default:
		return [][]byte{raw}, true
	}
	if c.Version == 0 {
		c.Version = v
	}
	return [][]byte{enc(c, c.Version)}, true
}

// broker applies the mutation to a packet from the broker and returns what goes to the client.
func (p *Proxy) broker(s *session, raw []byte, pk packet.Packet) [][]byte {
	if out, done := p.brokerV5(s, raw, pk); done {
		return out
	}
	v, pinged := s.state()
	switch pk := pk.(type) {
	case *packet.Connack:
		switch p.m {
		case AcceptWithNonzeroCode:
			if pk.Code == packet.ConnAccepted {
				pk.Code = packet.ConnRefusedServerUnavailable
				return [][]byte{enc(pk, v)}
			}
		case KeepRefusedOpen:
			if pk.Code != packet.ConnAccepted {
				s.holdOpen.Store(true)
			}
		case SessionPresentFlip:
			pk.SessionPresent = !pk.SessionPresent
			return [][]byte{enc(pk, v)}
		case PingrespBeforeConnack:
			return [][]byte{enc(&packet.Pingresp{}, v), raw}
		case SetReservedFlags:
			return [][]byte{setFlag(raw)}
		}
	case *packet.Publish:
		switch p.m {
		case DupAlways:
			pk.Dup = true
		case RetainFlip:
			pk.Retain = !pk.Retain
		case DuplicateDeliveries:
			return [][]byte{raw, raw}
		case DeliverOnce:
			key := pk.Topic + "\x00" + string(pk.Payload)
			p.mu.Lock()
			first, seen := p.delivered[key]
			if !seen {
				p.delivered[key] = time.Now()
			}
			p.mu.Unlock()
			if seen && time.Since(first) < 2*time.Second {
				return nil
			}
			return [][]byte{raw}
		case SamePacketID:
			if pk.QoS > 0 {
				pk.PacketID = 1
			}
		case TopicSuffix:
			pk.Topic += "/x"
		case DropPublishAfterPing:
			if pinged {
				return nil
			}
			return [][]byte{raw}
		case DollarAsPlain:
			pk.Topic = redollar(pk.Topic)
		case TopicLatin1:
			pk.Topic = latin1(pk.Topic)
		case QoS0PacketID:
			if pk.QoS == 0 {
				// The encoder writes no identifier at QoS 0: put one in by hand, after the topic.
				return [][]byte{withQoS0ID(pk)}
			}
			return [][]byte{raw}
		default:
			return [][]byte{raw}
		}
		return [][]byte{enc(pk, v)}
	case *packet.Puback:
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Pubrec:
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Pubcomp:
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Pubrel:
		if p.m == DropPubrel {
			return nil
		}
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Suback:
		switch p.m {
		case DropSuback:
			return nil
		case SubackReservedCode:
			for i, c := range pk.Codes {
				if c == packet.GrantedQoS1 {
					pk.Codes[i] = 0x03
				}
			}
			return [][]byte{enc(pk, v)}
		case SubackReversed:
			for i, j := 0, len(pk.Codes)-1; i < j; i, j = i+1, j-1 {
				pk.Codes[i], pk.Codes[j] = pk.Codes[j], pk.Codes[i]
			}
			return [][]byte{enc(pk, v)}
		case SubackOneCode:
			pk.Codes = pk.Codes[:1]
			return [][]byte{enc(pk, v)}
		}
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Unsuback:
		if p.m == DropUnsuback {
			return nil
		}
		return p.ack(raw, &pk.PacketID, pk, v)
	case *packet.Pingresp:
		switch p.m {
		case DropPingresp:
			return nil
		case SetReservedFlags:
			return [][]byte{setFlag(raw)}
		}
	}
	return [][]byte{raw}
}

// ack applies the identifier and flag mutations to an acknowledgement.
func (p *Proxy) ack(raw []byte, id *uint16, pk packet.Packet, v packet.Version) [][]byte {
	switch p.m {
	case AckIDOffByOne:
		*id++
		return [][]byte{enc(pk, v)}
	case SetReservedFlags:
		return [][]byte{setFlag(raw)}
	}
	return [][]byte{raw}
}

// setFlag sets bit 0 of the fixed header flags (bit 1 for PUBREL, whose flags are 0010 already).
func setFlag(raw []byte) []byte {
	out := bytes.Clone(raw)
	out[0] ^= 0x01
	return out
}

// withQoS0ID encodes a QoS 0 PUBLISH with a Packet Identifier between topic and payload, as a
// broker that always writes one would.
func withQoS0ID(p *packet.Publish) []byte {
	body := append([]byte{byte(len(p.Topic) >> 8), byte(len(p.Topic))}, p.Topic...)
	body = append(body, 0x00, 0x07)
	body = append(body, p.Payload...)
	out := append([]byte{0x30 | p.Flags()}, packet.AppendVarint(nil, len(body))...)
	return append(out, body...)
}

// latin1 re-encodes a string's characters below U+0100 as single ISO 8859-1 bytes, which is not
// UTF-8 for any character above U+007F.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x100 {
			b = append(b, byte(r))
		} else {
			b = append(b, '?')
		}
	}
	return string(b)
}

// normalize is what a broker that "tidies" topics does: lower case, no U+FEFF, no empty levels.
func normalize(t string) string {
	t = strings.ToLower(strings.ReplaceAll(t, "\uFEFF", ""))
	for strings.Contains(t, "//") {
		t = strings.ReplaceAll(t, "//", "/")
	}
	return strings.TrimSuffix(t, "/")
}

func undollar(t string) string {
	if strings.HasPrefix(t, "$") {
		return "dollar-" + t[1:]
	}
	return t
}

func redollar(t string) string {
	if strings.HasPrefix(t, "dollar-") {
		return "$" + t[len("dollar-"):]
	}
	return t
}

// uniqueSuffix makes a ClientId unique per connection while keeping it valid: at most 23
// characters from [0-9a-zA-Z].
func uniqueSuffix(id string) string {
	n := nextSerial()
	s := id
	if len(s) > 17 {
		s = s[:17]
	}
	return s + "u" + itoa36(n)
}
