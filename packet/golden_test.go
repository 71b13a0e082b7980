package packet_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/packet/packettest"
)

// golden holds the packet each vector in testdata/golden decodes to, keyed by file name. The
// vectors were written field by field from the specification; the structs here are written by
// hand too, so that the decoder and the encoder are both checked against something they did not
// produce. Property Present bits of non-zero fields are filled in by withPresent.
var golden = map[string]packet.Packet{
	"31-connect": &packet.Connect{ProtocolName: "MQIsdp", Version: packet.V31, CleanStart: true, KeepAlive: 60, ClientID: "gate-01"},
	"31-connect-will-auth": &packet.Connect{ProtocolName: "MQIsdp", Version: packet.V31, CleanStart: true, KeepAlive: 10,
		ClientID: "cam-3", Will: &packet.Will{Topic: "s/cam-3", Payload: []byte("off"), QoS: 1, Retain: true},
		Username: "u", UsernameFlag: true, Password: []byte("p"), PasswordFlag: true},
	"31-connack":         &packet.Connack{},
	"31-connack-refused": &packet.Connack{Code: packet.ConnRefusedIdentifierRejected},

	"311-connect": &packet.Connect{ProtocolName: "MQTT", Version: packet.V311, CleanStart: true, KeepAlive: 30,
		ClientID: "gate-01", Will: &packet.Will{Topic: "acs/s1/gate/gate-01/status", Payload: []byte(`{"online":false}`), QoS: 1, Retain: true},
		Username: "gate", UsernameFlag: true, Password: []byte("secret"), PasswordFlag: true},
	"311-connect-minimal":    &packet.Connect{ProtocolName: "MQTT", Version: packet.V311, CleanStart: true},
	"311-connack":            &packet.Connack{SessionPresent: true},
	"311-connack-refused":    &packet.Connack{Code: packet.ConnRefusedBadUsernameOrPassword},
	"311-publish-qos0":       &packet.Publish{Retain: true, Topic: "acs/s1/gate/g1/state", Payload: []byte(`{"position":"closed"}`)},
	"311-publish-qos1":       &packet.Publish{Dup: true, QoS: 1, Topic: "a/b", PacketID: 10, Payload: []byte("hi")},
	"311-publish-qos2-empty": &packet.Publish{QoS: 2, Topic: "x", PacketID: 65535},
	"311-puback":             &packet.Puback{PacketID: 10},
	"311-pubrec":             &packet.Pubrec{PacketID: 258},
	"311-pubrel":             &packet.Pubrel{PacketID: 258},
	"311-pubcomp":            &packet.Pubcomp{PacketID: 258},
	"311-subscribe": &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{
		{Filter: "acs/+/gate/+/cmd/#", QoS: 1}, {Filter: "$SYS/broker/uptime", QoS: 0}}},
	"311-suback":      &packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{packet.GrantedQoS1, packet.SubackFailure}},
	"311-unsubscribe": &packet.Unsubscribe{PacketID: 2, Filters: []string{"acs/+/gate/+/cmd/#", "a/b"}},
	"311-unsuback":    &packet.Unsuback{PacketID: 2},
	"311-pingreq":     &packet.Pingreq{},
	"311-pingresp":    &packet.Pingresp{},
	"311-disconnect":  &packet.Disconnect{},

	"5-connect": &packet.Connect{ProtocolName: "MQTT", Version: packet.V5, KeepAlive: 30, ClientID: "turnstile-07",
		Props: packet.Properties{SessionExpiry: 3600, ReceiveMaximum: 20, TopicAliasMaximum: 10,
			User: []packet.UserProperty{{Key: "site", Value: "s1"}}, MaximumPacketSize: 65536},
		Will: &packet.Will{Topic: "acs/s1/turnstile/turnstile-07/status", Payload: []byte(`{"online":false}`), QoS: 1,
			Props: packet.Properties{PayloadFormat: 1, MessageExpiry: 120, ContentType: "application/json", WillDelay: 5}},
		Username: "ts7", UsernameFlag: true, Password: []byte{0, 1, 2}, PasswordFlag: true},
	"5-connect-zero-props": &packet.Connect{ProtocolName: "MQTT", Version: packet.V5, CleanStart: true, ClientID: "c", UsernameFlag: true},
	"5-connack": &packet.Connack{Props: packet.Properties{Present: present(packet.PropRetainAvailable, packet.PropSharedSubAvailable),
		AssignedClientID: "auto-1", ServerKeepAlive: 60, ReceiveMaximum: 100, TopicAliasMaximum: 16, MaximumQoS: 1,
		WildcardSubAvailable: 1, SubIDAvailable: 1}},
	"5-connack-refused": &packet.Connack{Code: packet.NotAuthorized, Props: packet.Properties{ReasonString: "acl"}},
	"5-publish-qos1":    &packet.Publish{QoS: 1, Topic: "a/b", PacketID: 10, Props: packet.Properties{MessageExpiry: 60}, Payload: []byte("on")},
	"5-publish-props": &packet.Publish{QoS: 2, Retain: true, Topic: "acs/s1/gate/g1/cmd/open", PacketID: 7,
		Props: packet.Properties{Present: present(packet.PropPayloadFormat), ContentType: "text/plain",
			ResponseTopic: "acs/s1/gate/g1/cmd/open/ack", CorrelationData: []byte{0xCA, 0xFE}, SubscriptionIDs: []uint32{1, 200},
			TopicAlias: 3, User: []packet.UserProperty{{Key: "corr", Value: "42"}, {Key: "corr", Value: "43"}}},
		Payload: []byte("open")},
	"5-publish-alias": &packet.Publish{Props: packet.Properties{TopicAlias: 3}, Payload: []byte("x")},
	"5-puback":        &packet.Puback{PacketID: 10},
	"5-puback-code":   &packet.Puback{PacketID: 10, Code: packet.NoMatchingSubscribers},
	"5-pubrec":        &packet.Pubrec{PacketID: 7, Code: packet.QuotaExceeded, Props: packet.Properties{ReasonString: "full"}},
	"5-pubrel":        &packet.Pubrel{PacketID: 7, Props: packet.Properties{User: []packet.UserProperty{{Key: "k", Value: "v"}}}},
	"5-pubcomp":       &packet.Pubcomp{PacketID: 7, Code: packet.PacketIdentifierNotFound},
	"5-subscribe": &packet.Subscribe{PacketID: 3, Props: packet.Properties{SubscriptionIDs: []uint32{5},
		User: []packet.UserProperty{{Key: "app", Value: "hil"}}}, Subscriptions: []packet.Subscription{
		{Filter: "acs/+/gate/+/evt/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		{Filter: "$share/billing/acs/+/gate/+/evt/charge", QoS: 1, RetainHandling: 1}}},
	"5-suback":      &packet.Suback{PacketID: 3, Codes: []packet.ReasonCode{packet.GrantedQoS2, packet.SharedSubscriptionsNotSupported}},
	"5-unsubscribe": &packet.Unsubscribe{PacketID: 4, Props: packet.Properties{User: []packet.UserProperty{{Key: "why", Value: "rotate"}}}, Filters: []string{"acs/+/gate/+/evt/#"}},
	"5-unsuback":    &packet.Unsuback{PacketID: 4, Props: packet.Properties{ReasonString: "ok"}, Codes: []packet.ReasonCode{packet.Success, packet.NoSubscriptionExisted}},
	"5-pingreq":     &packet.Pingreq{},
	"5-pingresp":    &packet.Pingresp{},
	"5-disconnect":  &packet.Disconnect{},
	"5-disconnect-props": &packet.Disconnect{Code: packet.ServerMoved, Props: packet.Properties{
		ServerReference: "mqtt://b2:1883", ReasonString: "maintenance"}},
	"5-disconnect-will": &packet.Disconnect{Code: packet.DisconnectWithWill},
	"5-auth": &packet.Auth{Code: packet.ContinueAuthentication, Props: packet.Properties{AuthMethod: "SCRAM-SHA-1",
		AuthData: []byte("n,,n=user,r=abc")}},
	"5-auth-success": &packet.Auth{},
}

// goldenSide says who sends each vector, for Validate.
func goldenSide(p packet.Packet, name string) packet.Side {
	switch p.Type() {
	case packet.TypeConnack, packet.TypeSuback, packet.TypeUnsuback, packet.TypePingresp:
		return packet.Server
	case packet.TypePublish:
		if strings.Contains(name, "props") { // carries subscription identifiers: server to client
			return packet.Server
		}
	case packet.TypeDisconnect:
		if strings.Contains(name, "props") {
			return packet.Server
		}
	}
	return packet.Client
}

func present(ids ...packet.PropID) packet.PropSet {
	var s packet.PropSet
	s.Add(ids...)
	return s
}

// withPresent sets the Present bit of every property that has a non-zero value, as the decoder
// does for every property it reads.
func withPresent(p packet.Packet) packet.Packet {
	fill := func(pr *packet.Properties) {
		v := reflect.ValueOf(pr).Elem()
		ids := map[string]packet.PropID{
			"PayloadFormat": packet.PropPayloadFormat, "MessageExpiry": packet.PropMessageExpiry,
			"ContentType": packet.PropContentType, "ResponseTopic": packet.PropResponseTopic,
			"CorrelationData": packet.PropCorrelationData, "SubscriptionIDs": packet.PropSubscriptionID,
			"SessionExpiry": packet.PropSessionExpiry, "AssignedClientID": packet.PropAssignedClientID,
			"ServerKeepAlive": packet.PropServerKeepAlive, "AuthMethod": packet.PropAuthMethod,
			"AuthData": packet.PropAuthData, "RequestProblemInfo": packet.PropRequestProblemInfo,
			"WillDelay": packet.PropWillDelay, "RequestResponseInfo": packet.PropRequestResponseInfo,
			"ResponseInfo": packet.PropResponseInfo, "ServerReference": packet.PropServerReference,
			"ReasonString": packet.PropReasonString, "ReceiveMaximum": packet.PropReceiveMaximum,
			"TopicAliasMaximum": packet.PropTopicAliasMaximum, "TopicAlias": packet.PropTopicAlias,
			"MaximumQoS": packet.PropMaximumQoS, "RetainAvailable": packet.PropRetainAvailable,
			"User": packet.PropUserProperty, "MaximumPacketSize": packet.PropMaximumPacketSize,
			"WildcardSubAvailable": packet.PropWildcardSubAvailable, "SubIDAvailable": packet.PropSubIDAvailable,
			"SharedSubAvailable": packet.PropSharedSubAvailable,
		}
		for name, id := range ids {
			if !v.FieldByName(name).IsZero() {
				pr.Present.Add(id)
			}
		}
	}
	switch q := p.(type) {
	case *packet.Connect:
		fill(&q.Props)
		if q.Will != nil {
			fill(&q.Will.Props)
		}
	case *packet.Connack:
		fill(&q.Props)
	case *packet.Publish:
		fill(&q.Props)
	case *packet.Puback:
		fill(&q.Props)
	case *packet.Pubrec:
		fill(&q.Props)
	case *packet.Pubrel:
		fill(&q.Props)
	case *packet.Pubcomp:
		fill(&q.Props)
	case *packet.Subscribe:
		fill(&q.Props)
	case *packet.Suback:
		fill(&q.Props)
	case *packet.Unsubscribe:
		fill(&q.Props)
	case *packet.Unsuback:
		fill(&q.Props)
	case *packet.Disconnect:
		fill(&q.Props)
	case *packet.Auth:
		fill(&q.Props)
	}
	return p
}

// goldenFile is one parsed vector.
type goldenFile struct {
	name  string
	v     packet.Version
	title string
	b     []byte
}

func loadGolden(t testing.TB) []goldenFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden vectors in testdata/golden: %v", err)
	}
	var out []goldenFile
	for _, path := range paths {
		b, title, err := packettest.ReadHexFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".hex")
		var v packet.Version
		switch {
		case strings.HasPrefix(name, "31-"):
			v = packet.V31
		case strings.HasPrefix(name, "311-"):
			v = packet.V311
		case strings.HasPrefix(name, "5-"):
			v = packet.V5
		default:
			t.Fatalf("%s: file name must start with 31-, 311- or 5-", path)
		}
		out = append(out, goldenFile{name: name, v: v, title: title, b: b})
	}
	return out
}

// TestGolden decodes every vector, compares it with the hand-written struct, validates it and
// encodes the struct back to the very same bytes.
func TestGolden(t *testing.T) {
	files := loadGolden(t)
	seen := map[string]bool{}
	for _, g := range files {
		seen[g.name] = true
		t.Run(g.name, func(t *testing.T) {
			want, ok := golden[g.name]
			if !ok {
				t.Fatalf("no expected packet for %s in the golden table", g.name)
			}
			if g.title == "" {
				t.Errorf("%s has no title comment", g.name)
			}
			want = withPresent(want)
			got, n, err := packet.Decode(g.b, g.v, 0)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n != len(g.b) {
				t.Errorf("decode consumed %d of %d bytes", n, len(g.b))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n  %#v\nwant\n  %#v", got, want)
			}
			if err := packet.Validate(got, g.v, goldenSide(got, g.name)); err != nil {
				t.Errorf("golden vector does not validate: %v", err)
			}
			enc, err := packet.Encode(want, g.v)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, g.b) {
				t.Errorf("encoded\n  % x\nwant\n  % x", enc, g.b)
			}
			if s := want.Size(g.v); s != len(g.b) {
				t.Errorf("Size = %d, want %d", s, len(g.b))
			}
		})
	}
	var missing []string
	for name := range golden {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("golden table names vectors that have no file: %v", missing)
	}
}

// TestGoldenCoverage requires a vector for every packet type of every version: all 14 of 3.1.1,
// all 15 of 5.0, and CONNECT and CONNACK of 3.1.
func TestGoldenCoverage(t *testing.T) {
	have := map[packet.Version]map[packet.Type]bool{}
	for _, g := range loadGolden(t) {
		p, ok := golden[g.name]
		if !ok {
			continue
		}
		if have[g.v] == nil {
			have[g.v] = map[packet.Type]bool{}
		}
		have[g.v][p.Type()] = true
	}
	need := map[packet.Version][]packet.Type{packet.V31: {packet.TypeConnect, packet.TypeConnack}}
	for t := packet.TypeConnect; t <= packet.TypeAuth; t++ {
		if t != packet.TypeAuth {
			need[packet.V311] = append(need[packet.V311], t)
		}
		need[packet.V5] = append(need[packet.V5], t)
	}
	for v, types := range need {
		for _, typ := range types {
			if !have[v][typ] {
				t.Errorf("no golden vector for %s in MQTT %s", typ, v)
			}
		}
	}
}

// TestGoldenFilesAreAnnotated keeps the vectors readable: every line holding bytes says what they are.
func TestGoldenFilesAreAnnotated(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Continuation lines of a long field carry bytes only; the field's first line names it.
		prevBytes := false
		for i, line := range strings.Split(string(data), "\n") {
			code, _, hasComment := strings.Cut(line, "#")
			hasBytes := strings.TrimSpace(code) != ""
			if hasBytes && !hasComment && !prevBytes {
				t.Errorf("%s:%d: bytes without a comment", path, i+1)
			}
			prevBytes = hasBytes
		}
	}
}
