package wire

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// maxShown bounds how much of a payload or string Describe prints.
const maxShown = 40

// Describe summarises a packet in one line for traces and failure messages, e.g.
// `PUBLISH qos=1 id=7 dup=0 retain=1 topic="a/b" payload="on"`.
func Describe(p packet.Packet) string {
	var b strings.Builder
	b.WriteString(p.Type().String())
	kv := func(k string, v any) { fmt.Fprintf(&b, " %s=%v", k, v) }
	switch p := p.(type) {
	case *packet.Connect:
		if p.Version != 0 {
			kv("level", int(p.Version))
		}
		if p.ProtocolName != "" {
			kv("name", strconv.Quote(p.ProtocolName))
		}
		kv("client", strconv.Quote(p.ClientID))
		kv("clean", bit(p.CleanStart))
		kv("keepalive", p.KeepAlive)
		if p.Will != nil {
			fmt.Fprintf(&b, " will={topic=%q qos=%d retain=%d payload=%s}", p.Will.Topic, p.Will.QoS, bit(p.Will.Retain), payload(p.Will.Payload))
		}
		if p.UsernameFlag || p.Username != "" {
			kv("user", strconv.Quote(p.Username))
		}
		if p.PasswordFlag || len(p.Password) > 0 {
			kv("password", fmt.Sprintf("%dB", len(p.Password)))
		}
		props(&b, &p.Props)
	case *packet.Connack:
		kv("session_present", bit(p.SessionPresent))
		kv("code", code(p.Code))
		props(&b, &p.Props)
	case *packet.Publish:
		kv("qos", int(p.QoS))
		if p.QoS > 0 {
			kv("id", p.PacketID)
		}
		kv("dup", bit(p.Dup))
		kv("retain", bit(p.Retain))
		kv("topic", strconv.Quote(clip(p.Topic)))
		kv("payload", payload(p.Payload))
		props(&b, &p.Props)
	case *packet.Puback:
		ack(&b, p.PacketID, p.Code, &p.Props)
	case *packet.Pubrec:
		ack(&b, p.PacketID, p.Code, &p.Props)
	case *packet.Pubrel:
		ack(&b, p.PacketID, p.Code, &p.Props)
	case *packet.Pubcomp:
		ack(&b, p.PacketID, p.Code, &p.Props)
	case *packet.Subscribe:
		kv("id", p.PacketID)
		for _, s := range p.Subscriptions {
			fmt.Fprintf(&b, " [%q qos=%d", clip(s.Filter), s.QoS)
			if s.NoLocal || s.RetainAsPublished || s.RetainHandling != 0 || s.ReservedBits != 0 {
				fmt.Fprintf(&b, " opts=0x%02x", s.Options())
			}
			b.WriteByte(']')
		}
		props(&b, &p.Props)
	case *packet.Suback:
		kv("id", p.PacketID)
		kv("codes", codes(p.Codes))
		props(&b, &p.Props)
	case *packet.Unsubscribe:
		kv("id", p.PacketID)
		for _, f := range p.Filters {
			fmt.Fprintf(&b, " %q", clip(f))
		}
		props(&b, &p.Props)
	case *packet.Unsuback:
		kv("id", p.PacketID)
		if len(p.Codes) > 0 {
			kv("codes", codes(p.Codes))
		}
		props(&b, &p.Props)
	case *packet.Disconnect:
		if p.Code != 0 {
			kv("code", code(p.Code))
		}
		props(&b, &p.Props)
	case *packet.Auth:
		kv("code", code(p.Code))
		props(&b, &p.Props)
	}
	return b.String()
}

func bit(v bool) int {
	if v {
		return 1
	}
	return 0
}

func code(c packet.ReasonCode) string { return fmt.Sprintf("0x%02X", byte(c)) }

func codes(cs []packet.ReasonCode) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = code(c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func ack(b *strings.Builder, id uint16, c packet.ReasonCode, p *packet.Properties) {
	fmt.Fprintf(b, " id=%d", id)
	if c != 0 {
		fmt.Fprintf(b, " code=%s", code(c))
	}
	props(b, p)
}

func clip(s string) string {
	if len(s) > maxShown {
		return s[:maxShown] + "…"
	}
	return s
}

func payload(p []byte) string {
	if len(p) == 0 {
		return `""`
	}
	printable := true
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable && len(p) <= maxShown {
		return strconv.Quote(string(p))
	}
	return fmt.Sprintf("%dB", len(p))
}

// props prints the 5.0 properties that are set, briefly.
func props(b *strings.Builder, p *packet.Properties) {
	var parts []string
	add := func(k string, v any) { parts = append(parts, fmt.Sprintf("%s=%v", k, v)) }
	has := func(id packet.PropID) bool { return p.Present.Has(id) }
	if has(packet.PropPayloadFormat) || p.PayloadFormat != 0 {
		add("format", p.PayloadFormat)
	}
	if has(packet.PropMessageExpiry) || p.MessageExpiry != 0 {
		add("expiry", p.MessageExpiry)
	}
	if p.ContentType != "" {
		add("content_type", strconv.Quote(clip(p.ContentType)))
	}
	if p.ResponseTopic != "" {
		add("response_topic", strconv.Quote(clip(p.ResponseTopic)))
	}
	if len(p.CorrelationData) > 0 {
		add("correlation", fmt.Sprintf("%dB", len(p.CorrelationData)))
	}
	if len(p.SubscriptionIDs) > 0 {
		add("sub_ids", p.SubscriptionIDs)
	}
	if has(packet.PropSessionExpiry) || p.SessionExpiry != 0 {
		add("session_expiry", p.SessionExpiry)
	}
	if p.AssignedClientID != "" {
		add("assigned_id", strconv.Quote(p.AssignedClientID))
	}
	if has(packet.PropServerKeepAlive) || p.ServerKeepAlive != 0 {
		add("server_keepalive", p.ServerKeepAlive)
	}
	if p.AuthMethod != "" {
		add("auth_method", strconv.Quote(p.AuthMethod))
	}
	if has(packet.PropWillDelay) || p.WillDelay != 0 {
		add("will_delay", p.WillDelay)
	}
	if p.ResponseInfo != "" {
		add("response_info", strconv.Quote(clip(p.ResponseInfo)))
	}
	if p.ReasonString != "" {
		add("reason", strconv.Quote(clip(p.ReasonString)))
	}
	if has(packet.PropReceiveMaximum) || p.ReceiveMaximum != 0 {
		add("receive_max", p.ReceiveMaximum)
	}
	if has(packet.PropTopicAliasMaximum) || p.TopicAliasMaximum != 0 {
		add("alias_max", p.TopicAliasMaximum)
	}
	if has(packet.PropTopicAlias) || p.TopicAlias != 0 {
		add("alias", p.TopicAlias)
	}
	if has(packet.PropMaximumQoS) {
		add("max_qos", p.MaximumQoS)
	}
	if has(packet.PropRetainAvailable) {
		add("retain_available", p.RetainAvailable)
	}
	if has(packet.PropMaximumPacketSize) || p.MaximumPacketSize != 0 {
		add("max_packet", p.MaximumPacketSize)
	}
	if has(packet.PropWildcardSubAvailable) {
		add("wildcard_available", p.WildcardSubAvailable)
	}
	if has(packet.PropSubIDAvailable) {
		add("sub_id_available", p.SubIDAvailable)
	}
	if has(packet.PropSharedSubAvailable) {
		add("shared_available", p.SharedSubAvailable)
	}
	for _, u := range p.User {
		add("user", strconv.Quote(clip(u.Key))+":"+strconv.Quote(clip(u.Value)))
	}
	for _, r := range p.Raw {
		add(fmt.Sprintf("raw_0x%02x", byte(r.ID)), fmt.Sprintf("%dB", len(r.Value)))
	}
	if len(parts) > 0 {
		b.WriteString(" {" + strings.Join(parts, " ") + "}")
	}
}
