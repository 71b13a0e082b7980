package device

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/device/stage"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// The passive judgements: rules that hold for every packet of the run, read from the whole trace
// once the phases are over.

// connInfo is what the judgements need to know about one connection.
type connInfo struct {
	device   bool // the connection belongs to the device under test
	refused  bool // the server refused its CONNECT
	connect  *packet.Connect
	connack  *packet.Connack
	silenced int // trace index from which the server answers nothing (refusal, DISCONNECT), -1 if never
}

func (r *run) connections(evs []stage.Event) map[int]*connInfo {
	out := map[int]*connInfo{}
	get := func(n int) *connInfo {
		c, ok := out[n]
		if !ok {
			c = &connInfo{device: r.s.IsDevice(n), silenced: -1}
			out[n] = c
		}
		return c
	}
	for _, e := range evs {
		if e.Conn == 0 {
			continue
		}
		c := get(e.Conn)
		switch p := e.Packet.(type) {
		case *packet.Connect:
			if e.Kind == stage.FromDevice && c.connect == nil {
				c.connect = p
			}
		case *packet.Connack:
			if e.Kind == stage.ToDevice {
				c.connack = p
				if p.Code != 0 {
					c.refused = true
					c.silenced = e.Index
				}
			}
		case *packet.Disconnect:
			if e.Kind == stage.ToDevice && c.silenced < 0 {
				c.silenced = e.Index
			}
		}
	}
	return out
}

func (r *run) judge() {
	evs := r.tr.Events(0, -1)
	conns := r.connections(evs)
	r.judgeConnects(evs, conns)
	r.judgePackets(evs, conns)
	r.judgePacketIDs(evs, conns)
	r.judgeAcks(evs, conns)
	if r.pv == packet.V5 {
		r.judgeTopicAliases(evs, conns)
	}
	if r.prof.Contract && r.base != "" {
		r.judgeContract(evs, conns)
	}
}

func (r *run) judgeConnects(evs []stage.Event, conns map[int]*connInfo) {
	first := map[int]bool{}
	count, bad := 0, 0
	for _, e := range evs {
		if e.Kind != stage.FromDevice || first[e.Conn] {
			continue
		}
		first[e.Conn] = true
		c := conns[e.Conn]
		if _, isConnect := e.Packet.(*packet.Connect); !isConnect {
			bad++
			what := "bytes that are not MQTT"
			if e.Packet != nil {
				what = e.Packet.Type().String()
			}
			r.fail(ReqConnect, fmt.Sprintf("connection %d began with %s instead of CONNECT", e.Conn, what), e.Index)
			continue
		}
		if !c.device {
			continue
		}
		count++
		if e.Err != nil {
			bad++
			r.fail(ReqConnect, fmt.Sprintf("the CONNECT of connection %d: %v", e.Conn, e.Err), e.Index)
		}
	}
	if count > 0 && bad == 0 {
		r.pass(ReqConnect, fmt.Sprintf("%d CONNECT packets, each well-formed and consistent", count))
	}
}

func (r *run) judgePackets(evs []stage.Event, conns map[int]*connInfo) {
	n, bad := 0, 0
	said := map[int]int{} // connection → index of the device's DISCONNECT
	for _, e := range evs {
		if e.Kind != stage.FromDevice {
			continue
		}
		c := conns[e.Conn]
		if c == nil || !c.device || e.Packet == nil && e.Err == nil {
			continue
		}
		if _, isConnect := e.Packet.(*packet.Connect); isConnect {
			continue
		}
		n++
		if at, ok := said[e.Conn]; ok {
			bad++
			r.fail(ReqPackets, fmt.Sprintf("the device sent %s after its own DISCONNECT on connection %d", e.Packet.Type(), e.Conn), at, e.Index)
			continue
		}
		if e.Is(stage.FromDevice, packet.TypeDisconnect) {
			said[e.Conn] = e.Index
		}
		if e.Err != nil {
			bad++
			kind := "an invalid"
			if e.Malformed {
				kind = "a malformed"
			}
			r.fail(ReqPackets, fmt.Sprintf("%s packet on connection %d: %v", kind, e.Conn, e.Err), e.Index)
		}
	}
	if n > 0 && bad == 0 {
		r.pass(ReqPackets, fmt.Sprintf("%d packets from the device, all well-formed and valid", n))
	}
}

// judgePacketIDs follows the identifiers the device has in use — from a QoS 1/2 PUBLISH,
// SUBSCRIBE or UNSUBSCRIBE until the server's PUBACK, PUBCOMP, SUBACK, UNSUBACK (or PUBREC with a
// failure code) — and fails a new packet that takes one still in use. A PUBLISH that carries the
// same message as the one holding its identifier is a resend (judged under ReqDup), not a reuse.
func (r *run) judgePacketIDs(evs []stage.Event, conns map[int]*connInfo) {
	type use struct {
		idx int
		pub *packet.Publish
	}
	inUse := map[uint16]use{}
	bad, checked := 0, 0
	for _, e := range evs {
		c := conns[e.Conn]
		if c == nil || !c.device {
			continue
		}
		switch p := e.Packet.(type) {
		case *packet.Connack:
			if e.Kind == stage.ToDevice && p.Code == 0 && !p.SessionPresent {
				inUse = map[uint16]use{} // the session (and its identifiers) is gone
			}
		case *packet.Publish:
			if e.Kind != stage.FromDevice || p.QoS == 0 || p.PacketID == 0 {
				continue
			}
			checked++
			if u, ok := inUse[p.PacketID]; ok && u.pub != nil && !sameMessage(u.pub, p) {
				bad++
				r.fail(ReqPacketIDs, fmt.Sprintf("packet identifier %d was given to a new message while message %q was still unacknowledged", p.PacketID, u.pub.Topic), u.idx, e.Index)
			}
			if _, ok := inUse[p.PacketID]; !ok || !sameMessageUse(inUse[p.PacketID].pub, p) {
				inUse[p.PacketID] = use{e.Index, p}
			}
		case *packet.Subscribe, *packet.Unsubscribe:
			if e.Kind != stage.FromDevice {
				continue
			}
			id := packetID(p)
			checked++
			if u, ok := inUse[id]; ok {
				bad++
				r.fail(ReqPacketIDs, fmt.Sprintf("%s took packet identifier %d, still in use", p.Type(), id), u.idx, e.Index)
			}
			inUse[id] = use{idx: e.Index}
		case *packet.Puback, *packet.Pubcomp, *packet.Suback, *packet.Unsuback:
			if e.Kind == stage.ToDevice {
				delete(inUse, packetID(p))
			}
		case *packet.Pubrec:
			if e.Kind == stage.ToDevice && p.Code >= 0x80 {
				delete(inUse, p.PacketID)
			}
		}
	}
	if checked > 0 && bad == 0 {
		r.pass(ReqPacketIDs, fmt.Sprintf("%d packets with identifiers, none reusing one still in use", checked))
	}
}

func sameMessageUse(a, b *packet.Publish) bool { return a != nil && sameMessage(a, b) }

// judgeAcks checks that every QoS 1 and 2 message the server sent was acknowledged on its
// connection (unless the connection ended first: the message is then redelivered), with its
// packet identifier, in order, and that the device acknowledges nothing it was not sent.
func (r *run) judgeAcks(evs []stage.Event, conns map[int]*connInfo) {
	type sent struct {
		idx  int
		qos  packet.QoS
		done bool
	}
	perConn := map[int][]*sent{}       // QoS 1/2 PUBLISHes to the device, in order, per connection
	byID := map[int]map[uint16]*sent{} // the same by identifier
	closedAt := map[int]time.Time{}
	lastAt := time.Time{}
	var pubackOrder, pubrecOrder = map[int][]int{}, map[int][]int{}
	bad, judged := 0, 0
	for _, e := range evs {
		lastAt = e.At
		c := conns[e.Conn]
		if c == nil || !c.device {
			continue
		}
		if e.Kind == stage.Closed {
			closedAt[e.Conn] = e.At
			continue
		}
		switch p := e.Packet.(type) {
		case *packet.Publish:
			if e.Kind == stage.ToDevice && p.QoS > 0 {
				s := &sent{idx: e.Index, qos: p.QoS}
				if byID[e.Conn] == nil {
					byID[e.Conn] = map[uint16]*sent{}
				}
				if old, ok := byID[e.Conn][p.PacketID]; ok && !old.done {
					continue // a repeat (DUP) of one not yet answered
				}
				byID[e.Conn][p.PacketID] = s
				perConn[e.Conn] = append(perConn[e.Conn], s)
			}
		case *packet.Puback, *packet.Pubrec:
			if e.Kind != stage.FromDevice {
				continue
			}
			id := packetID(p)
			s, ok := byID[e.Conn][id]
			want := packet.QoS(1)
			if _, isRec := p.(*packet.Pubrec); isRec {
				want = 2
			}
			switch {
			case !ok:
				bad++
				r.fail(ReqAcknowledges, fmt.Sprintf("%s %d answers no message the server sent on connection %d", p.Type(), id, e.Conn), e.Index)
			case s.qos != want:
				bad++
				r.fail(ReqAcknowledges, fmt.Sprintf("%s %d answers a QoS %d message", p.Type(), id, s.qos), s.idx, e.Index)
			case !s.done:
				s.done = true
				judged++
				if want == 1 {
					pubackOrder[e.Conn] = append(pubackOrder[e.Conn], s.idx)
				} else {
					pubrecOrder[e.Conn] = append(pubrecOrder[e.Conn], s.idx)
				}
			}
		}
	}
	for n, list := range perConn {
		end, closed := closedAt[n]
		if !closed {
			end = lastAt
		}
		for _, s := range list {
			if s.done {
				continue
			}
			sentAt := evs[s.idx].At
			if end.Sub(sentAt) < r.cfg.AckLimit {
				continue // the connection ended before an answer was due: redelivered later
			}
			bad++
			ack := "PUBACK"
			if s.qos == 2 {
				ack = "PUBREC"
			}
			r.fail(ReqAcknowledges, fmt.Sprintf("no %s for the QoS %d message %d sent on connection %d (the connection stayed open %s more)", ack, s.qos, packetID(evs[s.idx].Packet), n, ms(end.Sub(sentAt))), s.idx)
		}
	}
	for _, orders := range []map[int][]int{pubackOrder, pubrecOrder} {
		for n, order := range orders {
			for i := 1; i < len(order); i++ {
				if order[i] < order[i-1] {
					bad++
					r.fail(ReqAcknowledges, fmt.Sprintf("on connection %d the device acknowledged messages out of the order they arrived", n), order[i-1], order[i])
					break
				}
			}
		}
	}
	if judged > 0 && bad == 0 {
		r.pass(ReqAcknowledges, fmt.Sprintf("%d QoS 1/2 messages to the device, each acknowledged with its identifier, in order", judged))
	}
}

// judgeTopicAliases checks every PUBLISH's Topic Alias against the maximum the server announced
// on its connection (none when absent).
func (r *run) judgeTopicAliases(evs []stage.Event, conns map[int]*connInfo) {
	used, bad := 0, 0
	for _, e := range evs {
		p := e.Publish()
		c := conns[e.Conn]
		if e.Kind != stage.FromDevice || p == nil || c == nil || !c.device || c.connack == nil {
			continue
		}
		a := p.Props.TopicAlias
		if a == 0 && !p.Props.Present.Has(packet.PropTopicAlias) {
			continue
		}
		used++
		limit := c.connack.Props.TopicAliasMaximum
		switch {
		case a == 0:
			bad++
			r.fail(ReqTopicAlias, "PUBLISH with Topic Alias 0", e.Index)
		case a > limit:
			bad++
			r.fail(ReqTopicAlias, fmt.Sprintf("Topic Alias %d above the server's Topic Alias Maximum %d on connection %d", a, limit, e.Conn), e.Index)
		}
	}
	if bad == 0 {
		if used == 0 {
			r.pass(ReqTopicAlias, "the device used no Topic Alias")
		} else {
			r.pass(ReqTopicAlias, fmt.Sprintf("%d PUBLISH packets with a Topic Alias, all within the server's maximum", used))
		}
	}
}

// contract message kinds, from the topic below the device's base.
const (
	kindStatus    = "status"
	kindState     = "state"
	kindTelemetry = "telemetry"
	kindEvent     = "event"
	kindCharge    = "charge"
	kindAck       = "ack"
	kindOther     = "other"
)

func (r *run) classify(topic string) (kind, sub string) {
	rest, ok := strings.CutPrefix(topic, r.base+"/")
	if !ok {
		return kindOther, ""
	}
	switch {
	case rest == "status":
		return kindStatus, ""
	case rest == "state":
		return kindState, ""
	case rest == "telemetry":
		return kindTelemetry, ""
	case rest == "evt/charge":
		return kindCharge, "charge"
	case strings.HasPrefix(rest, "evt/") && !strings.Contains(rest[4:], "/"):
		return kindEvent, rest[4:]
	case strings.HasPrefix(rest, "cmd/") && strings.HasSuffix(rest, "/ack"):
		return kindAck, strings.TrimSuffix(rest[4:], "/ack")
	}
	return kindOther, rest
}

// judgeContract reads every message the device published against the device contract.
func (r *run) judgeContract(evs []stage.Event, conns map[int]*connInfo) {
	r.judgeWill(evs, conns)
	want := map[string]packet.QoS{kindTelemetry: 0, kindEvent: 1, kindCharge: 2, kindAck: 1}
	qosBad, qosSeen := 0, map[string]int{}
	statusOK, stateOK := 0, 0
	var lastSeq float64
	seqSeen := false
	eventsOK, eventsBad := 0, 0
	seenEvent := map[string]bool{}
	for _, e := range evs {
		p := e.Publish()
		c := conns[e.Conn]
		if e.Kind != stage.FromDevice || p == nil || c == nil || !c.device {
			continue
		}
		kind, sub := r.classify(p.Topic)
		if q, ok := want[kind]; ok {
			qosSeen[kind]++
			if p.QoS != q {
				qosBad++
				r.fail(ReqMessageQoS, fmt.Sprintf("%s published at QoS %d; the contract says QoS %d", p.Topic, p.QoS, q), e.Index)
			}
		}
		switch kind {
		case kindStatus:
			if msg := statusProblem(p); msg != "" {
				r.fail(ReqStatus, msg, e.Index)
			} else {
				statusOK++
				r.identify(p.Payload)
			}
		case kindState:
			var m map[string]any
			switch {
			case p.QoS != 1 || !p.Retain:
				r.fail(ReqState, fmt.Sprintf("state published at QoS %d, retain %v; the contract says QoS 1, retained", p.QoS, p.Retain), e.Index)
			case json.Unmarshal(p.Payload, &m) != nil:
				r.fail(ReqState, "state is not a JSON object: "+payloadText(p.Payload), e.Index)
			default:
				stateOK++
			}
		case kindEvent, kindCharge:
			key := string(p.Payload)
			if seenEvent[key] {
				continue // a resend of an event already judged
			}
			seenEvent[key] = true
			if msg := r.eventProblem(sub, p.Payload); msg != "" {
				eventsBad++
				r.fail(ReqEvents, fmt.Sprintf("event %s: %s", sub, msg), e.Index)
				continue
			}
			var ev struct {
				Seq float64 `json:"seq"`
			}
			_ = json.Unmarshal(p.Payload, &ev)
			if seqSeen && ev.Seq <= lastSeq {
				eventsBad++
				r.fail(ReqEvents, fmt.Sprintf("event %s has seq %v after seq %v: seq must increase", sub, ev.Seq, lastSeq), e.Index)
				continue
			}
			lastSeq, seqSeen = ev.Seq, true
			eventsOK++
		}
	}
	if qosBad == 0 {
		if len(qosSeen) == 0 {
			r.skip(ReqMessageQoS, "the device published no telemetry, event or ack")
		} else {
			var parts []string
			for _, k := range []string{kindTelemetry, kindEvent, kindCharge, kindAck} {
				if qosSeen[k] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s at QoS %d", qosSeen[k], k, want[k]))
				}
			}
			r.pass(ReqMessageQoS, strings.Join(parts, ", "))
		}
	}
	if statusOK == 0 {
		r.fail(ReqStatus, "the device never published a valid online status on "+r.base+"/status")
	} else {
		r.judgeStatusPerConnection(evs, conns)
	}
	if stateOK == 0 {
		r.fail(ReqState, "the device never published its state on "+r.base+"/state")
	} else {
		r.pass(ReqState, fmt.Sprintf("%d state messages, retained at QoS 1", stateOK))
	}
	if eventsOK > 0 && eventsBad == 0 {
		r.pass(ReqEvents, fmt.Sprintf("%d events, each with id, increasing seq and ts", eventsOK))
	}
	r.judgeAnswers(evs)
}

// statusProblem says what is wrong with an online status message, "" when nothing is.
func statusProblem(p *packet.Publish) string {
	var st struct {
		Online *bool  `json:"online"`
		FW     string `json:"fw"`
		Model  string `json:"model"`
	}
	switch {
	case json.Unmarshal(p.Payload, &st) != nil:
		return "status is not a JSON object: " + payloadText(p.Payload)
	case st.Online == nil:
		return "status without an online field: " + payloadText(p.Payload)
	case !*st.Online:
		// The device's own goodbye before a clean stop: allowed, as long as it is retained QoS 1.
		if p.QoS != 1 || !p.Retain {
			return fmt.Sprintf("offline status published at QoS %d, retain %v; the contract says QoS 1, retained", p.QoS, p.Retain)
		}
		return ""
	case p.QoS != 1 || !p.Retain:
		return fmt.Sprintf("online status published at QoS %d, retain %v; the contract says QoS 1, retained (a platform subscribing later must see it)", p.QoS, p.Retain)
	case st.FW == "" || st.Model == "":
		return "online status without its fw and model: " + payloadText(p.Payload)
	}
	return ""
}

// identify takes the device's identity from an online status.
func (r *run) identify(payload []byte) {
	var st struct {
		Online bool   `json:"online"`
		FW     string `json:"fw"`
		Model  string `json:"model"`
	}
	if json.Unmarshal(payload, &st) == nil && st.Online && r.identity.Firmware == "" {
		r.identity.Firmware, r.identity.Model = st.FW, st.Model
	}
}

// judgeStatusPerConnection checks that every connection that stayed up long enough carried an
// online status.
func (r *run) judgeStatusPerConnection(evs []stage.Event, conns map[int]*connInfo) {
	limit := max(2*time.Second, r.cfg.AckLimit)
	type span struct {
		start, end time.Time
		online     bool
		idx        int
	}
	spans := map[int]*span{}
	for _, e := range evs {
		c := conns[e.Conn]
		if c == nil || !c.device || c.refused {
			continue
		}
		s := spans[e.Conn]
		if s == nil {
			s = &span{start: e.At, idx: e.Index}
			spans[e.Conn] = s
		}
		s.end = e.At
		if p := e.Publish(); p != nil && e.Kind == stage.FromDevice && p.Topic == r.base+"/status" && statusOnline(p.Payload) {
			s.online = true
		}
	}
	missing, judged := 0, 0
	for n, s := range spans {
		if s.online {
			judged++
			continue
		}
		if s.end.Sub(s.start) < limit {
			continue
		}
		judged++
		missing++
		r.fail(ReqStatus, fmt.Sprintf("connection %d stayed up %s without an online status", n, ms(s.end.Sub(s.start))), s.idx)
	}
	if missing == 0 {
		r.pass(ReqStatus, fmt.Sprintf("online status, retained at QoS 1 with fw and model, on each of %d connections", judged))
	}
}

// judgeWill checks the will of every CONNECT of the device; connections with the same problem
// make one finding.
func (r *run) judgeWill(evs []stage.Event, conns map[int]*connInfo) {
	n, bad := 0, 0
	want := r.base + "/status"
	type seen struct {
		conns []string
		idx   []int
	}
	problems := map[string]*seen{}
	var order []string
	for _, e := range evs {
		c, ok := e.Packet.(*packet.Connect)
		if !ok || e.Kind != stage.FromDevice || conns[e.Conn] == nil || !conns[e.Conn].device {
			continue
		}
		n++
		w := c.Will
		var payload struct {
			Online *bool `json:"online"`
		}
		problem := ""
		switch {
		case w == nil:
			problem = "no will: when the device vanishes nobody learns that it is offline"
		case w.Topic != want:
			problem = fmt.Sprintf("will on %q, not on the status topic %q", w.Topic, want)
		case json.Unmarshal(w.Payload, &payload) != nil || payload.Online == nil || *payload.Online:
			problem = fmt.Sprintf(`will payload %s, not {"online":false}`, payloadText(w.Payload))
		case w.QoS != 1 || !w.Retain:
			problem = fmt.Sprintf("will at QoS %d, retain %v; the contract says QoS 1, retained", w.QoS, w.Retain)
		}
		if problem != "" {
			bad++
			p, ok := problems[problem]
			if !ok {
				p = &seen{}
				problems[problem] = p
				order = append(order, problem)
			}
			p.conns = append(p.conns, fmt.Sprint(e.Conn))
			if len(p.idx) < 3 {
				p.idx = append(p.idx, e.Index)
			}
		}
	}
	for _, text := range order {
		p := problems[text]
		which := "connection " + p.conns[0]
		if len(p.conns) > 1 {
			which = "connections " + strings.Join(p.conns, ", ")
		}
		r.fail(ReqWill, which+": "+text, p.idx...)
	}
	if n > 0 && bad == 0 {
		r.pass(ReqWill, fmt.Sprintf(`%d CONNECT packets, each with the will {"online":false} on %s, QoS 1, retained`, n, want))
	}
}

// eventProblem says what is wrong with an event payload, "" when nothing is.
func (r *run) eventProblem(typ string, payload []byte) string {
	var ev map[string]any
	if err := json.Unmarshal(payload, &ev); err != nil {
		return "payload is not a JSON object: " + payloadText(payload)
	}
	id, _ := ev["id"].(string)
	if id != r.cfg.DeviceID {
		return fmt.Sprintf("id is %v, want %q", ev["id"], r.cfg.DeviceID)
	}
	if _, ok := ev["seq"].(float64); !ok {
		return "no numeric seq"
	}
	ts, _ := ev["ts"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return fmt.Sprintf("ts %v is not an RFC 3339 time", ev["ts"])
	}
	return ""
}

// judgeAnswers checks that the events answering the certifier's commands carry their corr.
func (r *run) judgeAnswers(evs []stage.Event) {
	for cmd, typ := range r.prof.Answers {
		sent := r.corrs[cmd]
		if len(sent) == 0 {
			continue
		}
		topic := r.base + "/evt/" + typ
		for _, corr := range sent {
			found := -1
			for _, e := range evs {
				p := e.Publish()
				if e.Kind != stage.FromDevice || p == nil || p.Topic != topic {
					continue
				}
				var ev struct {
					Corr string `json:"corr"`
				}
				if json.Unmarshal(p.Payload, &ev) == nil && ev.Corr == corr {
					found = e.Index
					break
				}
			}
			if found >= 0 {
				r.pass(ReqEvents, fmt.Sprintf("event %s answering command %s carried its corr %q", typ, cmd, corr), found)
				continue
			}
			for _, e := range evs {
				if p := e.Publish(); e.Kind == stage.FromDevice && p != nil && p.Topic == topic {
					r.fail(ReqEvents, fmt.Sprintf("event %s answering command %s does not carry its corr %q", typ, cmd, corr), e.Index)
					break
				}
			}
		}
	}
}
