package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-iot/gatehouse/conformance/device/stage"
	"github.com/gatehouse-iot/gatehouse/internal/report"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// The phases of a run. Each drives the device through one situation and records findings; the
// passive judgements over the whole trace (judge.go) come after all of them.

// phaseCommands sends the profile's command three times back to back (the device must answer
// each, in order, carrying each corr), the follow-up commands, an unknown command and a malformed
// one.
func (r *run) phaseCommands() {
	if !r.prof.Contract {
		return
	}
	if r.base == "" {
		r.fail(ReqCommands, "the device's topic base is unknown (it neither subscribed to {prefix}/"+r.prof.Kind+"/"+r.cfg.DeviceID+"/cmd/+ nor published its status): no command can reach it")
		return
	}
	topic := r.base + "/cmd/" + r.prof.Command
	q, ok := r.s.Granted(topic)
	switch {
	case !ok:
		r.fail(ReqCommands, "no subscription of the device matches "+topic)
		return
	case q < 1:
		r.fail(ReqCommands, fmt.Sprintf("the device subscribed to its commands at QoS %d; commands are QoS 1 (a lost command is a gate that does not open)", q))
	}
	if _, ok := r.current(); !ok {
		return
	}
	type sent struct {
		name, corr string
		idx        int
	}
	var cmds []sent
	for range 3 {
		corr, idx, err := r.command(r.prof.Command)
		if err != nil {
			r.fail(ReqCommands, "could not send a command: "+err.Error())
			return
		}
		cmds = append(cmds, sent{r.prof.Command, corr, idx})
	}
	for _, name := range r.prof.Follow {
		corr, idx, err := r.command(name)
		if err != nil {
			r.fail(ReqCommands, "could not send a command: "+err.Error())
			return
		}
		cmds = append(cmds, sent{name, corr, idx})
	}
	for _, c := range cmds {
		r.judgeAck(c.name, c.corr, c.idx)
	}
	r.probeRejection("certify_unknown", []byte(`{"corr":"`+r.corr("certify_unknown")+`"}`), "an unknown command")
	r.probeRejection(r.prof.Command, []byte(`{"corr": `), "a malformed command payload")
}

// judgeAck waits for the ack of one command and records what it says under ReqCommands.
func (r *run) judgeAck(name, corr string, idx int) {
	sentAt := time.Now()
	if evs := r.tr.Events(idx, -1); len(evs) > 0 {
		for _, e := range evs {
			if e.Is(stage.ToDevice, packet.TypePublish) {
				sentAt = e.At
				break
			}
		}
	}
	ev, a, ok := r.awaitAck(name, corr, idx, r.cfg.AckLimit)
	if !ok {
		if other, _, found := r.awaitAck(name, "", idx, 0); found {
			r.fail(ReqCommands, fmt.Sprintf("command %s (corr %q) was acked without its corr: %s", name, corr, payloadText(other.Publish().Payload)), idx, other.Index)
			return
		}
		r.fail(ReqCommands, fmt.Sprintf("no ack of command %s (corr %q) on %s/cmd/%s/ack within %s", name, corr, r.base, name, r.cfg.AckLimit), idx)
		return
	}
	d := ev.At.Sub(sentAt)
	m := report.MeasureDuration("ack of "+name+" "+corr, d, report.AtMost(float64(r.cfg.AckLimit.Milliseconds())))
	switch {
	case a.Result != "ok":
		r.measure(ReqCommands, report.Fail, fmt.Sprintf("command %s was answered %q (%s); a device in its normal state carries it out", name, a.Result, a.Reason), m, idx, ev.Index)
	default:
		r.measure(ReqCommands, report.Pass, fmt.Sprintf("command %s acked ok with its corr in %s", name, ms(d)), m, ev.Index)
	}
}

// probeRejection sends something the device cannot carry out and expects a rejected ack with a
// reason.
func (r *run) probeRejection(name string, payload []byte, what string) {
	idx := r.tr.Len()
	if _, _, err := r.s.Publish(r.base+"/cmd/"+name, payload, 1); err != nil {
		r.fail(ReqRejects, "could not send "+what+": "+err.Error())
		return
	}
	ev, a, ok := r.awaitAck(name, "", idx, r.cfg.AckLimit)
	switch {
	case !ok:
		r.fail(ReqRejects, fmt.Sprintf("no ack on %s/cmd/%s/ack within %s for %s (%s)", r.base, name, r.cfg.AckLimit, what, payloadText(payload)), idx)
	case a.Result != "rejected":
		r.fail(ReqRejects, fmt.Sprintf("%s was answered %q, not \"rejected\"", what, a.Result), idx, ev.Index)
	case strings.TrimSpace(a.Reason) == "":
		r.fail(ReqRejects, what+" was rejected without a reason", idx, ev.Index)
	default:
		r.pass(ReqRejects, fmt.Sprintf("%s was rejected: %q", what, a.Reason), ev.Index)
	}
}

// phaseReceive sends a device without a contract messages on what it subscribed to, at the
// QoS it was granted, and checks the acknowledgements, including a QoS 2 repeat before PUBREL
// (the device answers PUBREC again and must not deliver the message twice).
func (r *run) phaseReceive() {
	if r.prof.Contract {
		return
	}
	subs := r.s.Subscriptions()
	if len(subs) == 0 {
		r.skip(ReqAcknowledges, "the device subscribed to nothing, so no message could be sent to it")
		return
	}
	filter, granted := "", packet.QoS(0)
	for f, q := range subs {
		if filter == "" || q > granted || (q == granted && f < filter) {
			filter, granted = f, q
		}
	}
	topic := concreteTopic(filter)
	if granted == 0 {
		r.skip(ReqAcknowledges, fmt.Sprintf("the device subscribed to %s at QoS 0: nothing it receives needs an acknowledgement", filter))
		return
	}
	if _, ok := r.current(); !ok {
		return
	}
	var ids []uint16
	from := r.tr.Len()
	for i := range 2 {
		_, id, err := r.s.Publish(topic, fmt.Appendf(nil, "certify QoS 1 message %d", i+1), 1)
		if err != nil {
			r.fail(ReqAcknowledges, "could not send a message: "+err.Error())
			return
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, ok := r.tr.Wait(r.ctx, from, r.cfg.AckLimit, deviceSent(packet.TypePuback, id)); !ok {
			r.fail(ReqAcknowledges, fmt.Sprintf("no PUBACK for the QoS 1 message %d on %s within %s", id, topic, r.cfg.AckLimit), from)
		}
	}
	if granted < 2 {
		return
	}
	// The server's PUBREL is held (both times the device answers PUBREC) so that the repeat
	// comes before it, then sent by Release.
	r.s.Hold(stage.Hold{Ack: packet.TypePubrel})
	from = r.tr.Len()
	_, id, err := r.s.Publish(topic, []byte("certify QoS 2 message"), 2)
	if err != nil {
		r.s.ClearHolds()
		r.fail(ReqAcknowledges, "could not send a message: "+err.Error())
		return
	}
	first, ok := r.tr.Wait(r.ctx, from, r.cfg.AckLimit, deviceSent(packet.TypePubrec, id))
	if !ok {
		r.s.ClearHolds()
		r.fail(ReqAcknowledges, fmt.Sprintf("no PUBREC for the QoS 2 message %d within %s", id, r.cfg.AckLimit), from)
		return
	}
	if err := r.s.Resend(id); err != nil {
		r.fail(ReqAcknowledges, "could not repeat the QoS 2 message: "+err.Error())
		return
	}
	again, ok := r.tr.Wait(r.ctx, first.Index+1, r.cfg.AckLimit, deviceSent(packet.TypePubrec, id))
	if !ok {
		r.s.ClearHolds()
		r.fail(ReqAcknowledges, fmt.Sprintf("the QoS 2 message %d, repeated with DUP before PUBREL, got no second PUBREC within %s", id, r.cfg.AckLimit), from, first.Index)
	} else {
		r.pass(ReqAcknowledges, "a QoS 2 message repeated before PUBREL was answered with PUBREC again", first.Index, again.Index)
	}
	r.s.ClearHolds()
	if err := r.s.Release(id); err != nil {
		r.fail(ReqAcknowledges, "could not send PUBREL: "+err.Error())
		return
	}
	if comp, ok := r.tr.Wait(r.ctx, from, r.cfg.AckLimit, deviceSent(packet.TypePubcomp, id)); !ok {
		r.fail(ReqAcknowledges, fmt.Sprintf("no PUBCOMP for the PUBREL of message %d within %s", id, r.cfg.AckLimit), from)
	} else {
		r.pass(ReqAcknowledges, "the QoS 2 exchange completed with PUBCOMP", comp.Index)
	}
}

// deviceSent matches an acknowledgement of type t with packet identifier id from the device.
func deviceSent(t packet.Type, id uint16) func(stage.Event) bool {
	return func(e stage.Event) bool { return e.Is(stage.FromDevice, t) && packetID(e.Packet) == id }
}

// concreteTopic turns a topic filter into a topic name it matches.
func concreteTopic(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = "certify"
		}
	}
	return strings.Join(levels, "/")
}

// effectiveKeepalive is the keepalive the device must keep on connection n: the Server Keep Alive
// of the CONNACK when the server sent one (5.0), else its own.
func (r *run) effectiveKeepalive(n int) (time.Duration, bool) {
	for _, e := range r.tr.Events(0, -1) {
		if e.Conn == n && e.Is(stage.ToDevice, packet.TypeConnack) {
			if p := e.Packet.(*packet.Connack); p.Props.ServerKeepAlive != 0 || p.Props.Present.Has(packet.PropServerKeepAlive) {
				return time.Duration(p.Props.ServerKeepAlive) * time.Second, true
			}
		}
	}
	return time.Duration(r.connectOf(n).KeepAlive) * time.Second, false
}

// phaseKeepalive stays silent for two keepalive periods and measures the longest silence of the
// device.
func (r *run) phaseKeepalive() {
	n, ok := r.current()
	if !ok {
		return
	}
	k, _ := r.effectiveKeepalive(n)
	if k == 0 {
		if r.prof.Contract {
			r.fail(ReqKeepalive, "the device connects with Keep Alive 0: a broker can then never tell that it is gone, and its will is not published when its network fails silently")
		} else {
			r.skip(ReqKeepalive, "the device connects with Keep Alive 0 (keepalive switched off)")
		}
		return
	}
	r.judgeSilence(ReqKeepalive, n, k)
}

// judgeSilence watches connection n for two periods of k and judges the longest silence of the
// device against k (MUST above 1.5 × k, where a server gives up; a warning between k and 1.5 × k).
func (r *run) judgeSilence(req string, n int, k time.Duration) {
	window := 2*k + 500*time.Millisecond
	from := r.tr.Len()
	t0 := time.Now()
	end := t0.Add(window)
	closed, wasClosed := r.tr.Wait(r.ctx, from, window, func(e stage.Event) bool { return e.Kind == stage.Closed && e.Conn == n })
	if wasClosed {
		end = closed.At
	}
	var times []time.Time
	var idx []int
	pings := 0
	for _, e := range r.tr.Events(0, -1) {
		if e.Conn != n || e.Kind != stage.FromDevice || e.At.After(end) {
			continue
		}
		times = append(times, e.At)
		idx = append(idx, e.Index)
		if e.Is(stage.FromDevice, packet.TypePingreq) && !e.At.Before(t0) {
			pings++
		}
	}
	if len(times) == 0 {
		r.skip(req, fmt.Sprintf("connection %d carried nothing from the device", n))
		return
	}
	longest, at := time.Duration(0), -1
	for i := 1; i < len(times); i++ {
		if times[i].Before(t0) {
			continue
		}
		if g := times[i].Sub(times[i-1]); g > longest {
			longest, at = g, i
		}
	}
	trailing := end.Sub(times[len(times)-1])
	evidence := []int{}
	if trailing > longest {
		longest, at = trailing, -1
		evidence = append(evidence, idx[len(idx)-1])
		if wasClosed {
			evidence = append(evidence, closed.Index)
		}
	} else if at > 0 {
		evidence = append(evidence, idx[at-1], idx[at])
	}
	tolerance := 100*time.Millisecond + k/50
	limit := k + k/2
	m := report.MeasureDuration("longest silence of the device", longest, report.AtMost(float64(limit.Milliseconds())))
	m.Note = fmt.Sprintf("Keep Alive %s; a server closes the connection after 1.5 × Keep Alive", k)
	what := fmt.Sprintf("longest silence %s with Keep Alive %s over %s (%d PINGREQ)", ms(longest), k, ms(end.Sub(t0)), pings)
	switch {
	case longest > limit:
		r.measure(req, report.Fail, what+": a server would have closed the connection", m, evidence...)
	case longest > k+tolerance && pings == 0:
		r.measure(req, report.Fail, what+": idle for longer than its Keep Alive, the device sent no PINGREQ", m, evidence...)
	case longest > k+tolerance:
		r.measure(req, report.Warn, what+": the gap between packets exceeds the Keep Alive (a server tolerates up to 1.5 ×)", m, evidence...)
	default:
		r.measure(req, report.Pass, what, m, evidence...)
	}
	if wasClosed {
		r.comeBack(n, closed.Index, "after closing connection "+fmt.Sprint(n)+" during the keepalive watch")
	}
}

// phaseSilentServer makes the server go silent — no PINGRESP, no acknowledgement of anything —
// as a broker behind a dead network path would be, and waits for the device to give up on the
// connection.
func (r *run) phaseSilentServer() {
	n, ok := r.current()
	if !ok {
		return
	}
	k, _ := r.effectiveKeepalive(n)
	if k == 0 {
		r.skip(ReqSilentServer, "the device connects with Keep Alive 0, so it does not watch the server")
		return
	}
	limit := 3 * k
	for _, t := range []packet.Type{packet.TypePingresp, packet.TypePuback, packet.TypePubrec, packet.TypePubcomp} {
		r.s.Hold(stage.Hold{Ack: t})
	}
	from := r.tr.Len()
	began := time.Now()
	closed, ok := r.tr.Wait(r.ctx, from, limit+time.Second, func(e stage.Event) bool { return e.Kind == stage.Closed && e.Conn == n })
	r.s.ClearHolds()
	switch {
	case !ok:
		r.warn(ReqSilentServer, fmt.Sprintf("the device kept the connection open for %s although the server answered nothing, not even PINGREQ", ms(time.Since(began))), from)
		r.cycle("the device did not give up on a silent server", nil)
		return
	case !closed.ByDevice:
		r.skip(ReqSilentServer, "the connection ended for another reason: "+closed.Text)
	default:
		d := closed.At.Sub(began)
		m := report.MeasureDuration("close after the server went silent", d, report.AtMost(float64(limit.Milliseconds())))
		verdict, text := report.Pass, fmt.Sprintf("the device closed the connection %s after the server went silent", ms(d))
		if d > limit {
			verdict, text = report.Warn, text+fmt.Sprintf(", later than three times its Keep Alive (%s)", limit)
		}
		ev := []int{closed.Index}
		if held, heldOK := r.tr.Wait(r.ctx, from, 0, func(e stage.Event) bool {
			return e.Held != nil && e.Held.Ack == packet.TypePingresp && e.Conn == n
		}); heldOK {
			ev = append([]int{held.Index}, ev...)
		}
		r.measure(ReqSilentServer, verdict, text, m, ev...)
	}
	r.comeBack(n, closed.Index, "after it gave up on a silent server")
}

// resumes reports whether the device keeps its session between connections, so that it has
// something to resend.
func (r *run) resumes(n int) bool {
	c := r.connectOf(n)
	if c.CleanStart {
		return false
	}
	return c.Version != packet.V5 || c.Props.SessionExpiry > 0
}

// holdMatch is what the certifier holds back: under a contract the ack of the profile's command
// (so that other traffic flows), otherwise the first message of the QoS.
func (r *run) holdMatch() func(*packet.Publish) bool {
	if !r.prof.Contract {
		return nil
	}
	topic := r.base + "/cmd/" + r.prof.Command + "/ack"
	return func(p *packet.Publish) bool { return p.Topic == topic }
}

// provokeQoS1 makes the device publish at QoS 1: under a contract a command (its ack is QoS 1);
// otherwise the certifier waits for the device to publish by itself. It returns how long to wait.
func (r *run) provokeQoS1() time.Duration {
	if r.prof.Contract {
		if _, _, err := r.command(r.prof.Command); err != nil {
			r.log("could not send a command: %v", err)
		}
		return r.cfg.AckLimit + time.Second
	}
	return r.spontaneous(1)
}

// spontaneous is how long to wait for a device without a contract to publish at qos by itself:
// a while when it already did during the run, briefly when it never did (a pure subscriber).
func (r *run) spontaneous(qos packet.QoS) time.Duration {
	for _, e := range r.tr.Events(0, -1) {
		if p := e.Publish(); p != nil && e.Kind == stage.FromDevice && p.QoS == qos {
			return max(10*time.Second, 2*r.keepalive)
		}
	}
	return 2 * time.Second
}

// phaseResendQoS1 holds back the PUBACK of a QoS 1 message, drops the connection and expects the
// message again, same packet identifier, with DUP, when the device resumes its session.
func (r *run) phaseResendQoS1() {
	n, ok := r.current()
	if !ok {
		return
	}
	if !r.resumes(n) {
		r.skip(ReqResendQoS1, "the device starts a clean session on every connection (Clean Session 1, or 5.0 Session Expiry 0), so it keeps nothing to resend")
		return
	}
	r.s.Hold(stage.Hold{Ack: packet.TypePuback, Count: 1, Match: r.holdMatch()})
	from := r.tr.Len()
	wait := r.provokeQoS1()
	held, ok := r.tr.Wait(r.ctx, from, wait, func(e stage.Event) bool { return e.Held != nil && e.Held.Ack == packet.TypePuback })
	if !ok {
		r.s.ClearHolds()
		r.skip(ReqResendQoS1, fmt.Sprintf("the device sent no QoS 1 message within %s to hold the acknowledgement of", wait))
		return
	}
	orig := r.publishBefore(held)
	r.log("held back the PUBACK of packet %d on connection %d", held.Held.ID, held.Conn)
	r.delay()
	n2, ok := r.cycle(fmt.Sprintf("the QoS 1 PUBLISH %d is unacknowledged", held.Held.ID), nil)
	if !ok {
		return
	}
	again, ok := r.awaitResend(n2, orig)
	if !ok {
		r.fail(ReqResendQoS1, fmt.Sprintf("the unacknowledged QoS 1 PUBLISH %d was not sent again within %s of resuming the session (connection %d)", held.Held.ID, r.resendLimit(), n2), orig.Index, held.Index)
		return
	}
	p := again.Publish()
	if p.PacketID != held.Held.ID {
		r.fail(ReqResendQoS1, fmt.Sprintf("the message was sent again with packet identifier %d instead of %d", p.PacketID, held.Held.ID), orig.Index, held.Index, again.Index)
	} else {
		r.pass(ReqResendQoS1, fmt.Sprintf("the QoS 1 PUBLISH %d was sent again on connection %d", p.PacketID, n2), orig.Index, held.Index, again.Index)
	}
	r.judgeDup(again, orig, held)
}

// ackDelay is how long the server sits on a held acknowledgement before it drops the
// connection: the scenario is a broker that is slow to acknowledge, then goes away.
const ackDelay = 300 * time.Millisecond

// delay lets ackDelay pass (the acknowledgement is late on purpose; nothing is awaited).
func (r *run) delay() {
	t := time.NewTimer(ackDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// resendLimit is how long a resumed session may take to resend what is unacknowledged.
func (r *run) resendLimit() time.Duration { return max(5*time.Second, r.cfg.AckLimit) }

// publishBefore returns the PUBLISH whose acknowledgement the held note is about.
func (r *run) publishBefore(held stage.Event) stage.Event {
	evs := r.tr.Events(0, held.Index)
	for i := len(evs) - 1; i >= 0; i-- {
		if p := evs[i].Publish(); p != nil && evs[i].Kind == stage.FromDevice && p.PacketID == held.Held.ID && evs[i].Conn == held.Conn {
			return evs[i]
		}
	}
	return stage.Event{Index: held.Index, Packet: &packet.Publish{PacketID: held.Held.ID}}
}

// awaitResend waits on connection n for a PUBLISH carrying the same message as orig (same topic
// and payload) or its packet identifier.
func (r *run) awaitResend(n int, orig stage.Event) (stage.Event, bool) {
	op := orig.Publish()
	return r.tr.Wait(r.ctx, orig.Index+1, r.resendLimit(), func(e stage.Event) bool {
		p := e.Publish()
		if e.Conn != n || e.Kind != stage.FromDevice || p == nil || p.QoS == 0 {
			return false
		}
		return p.PacketID == op.PacketID || sameMessage(p, op)
	})
}

func sameMessage(a, b *packet.Publish) bool {
	return a.Topic == b.Topic && bytes.Equal(a.Payload, b.Payload)
}

// judgeDup records whether a resent PUBLISH carried DUP.
func (r *run) judgeDup(again, orig, held stage.Event) {
	p := again.Publish()
	if p.Dup {
		r.pass(ReqDup, fmt.Sprintf("the PUBLISH %d sent again carried DUP=1", p.PacketID), again.Index)
		return
	}
	r.fail(ReqDup, fmt.Sprintf("the PUBLISH %d was sent again with DUP=0: a receiver cannot tell it from a new message", p.PacketID), orig.Index, held.Index, again.Index)
}

// phasePhysical applies the profile's physical events (with a Physical) and follows any QoS 2
// message they cause — an exit gate's charge — through a QoS 2 exchange broken twice by a lost
// connection. A device without a contract is watched for a QoS 2 message of its own.
func (r *run) phasePhysical() {
	if _, ok := r.current(); !ok {
		return
	}
	r.s.Hold(stage.Hold{Ack: packet.TypePubrec, Count: 1})
	from := r.tr.Len()
	wait := r.spontaneous(2)
	switch {
	case !r.prof.Contract:
	case r.cfg.Physical == nil:
		r.s.ClearHolds()
		for _, st := range r.prof.Stimuli {
			r.skip(ReqEvents, "physical event not applied ("+st.Name+"): the certifier has no access to the device's physical side (run with --bench)")
		}
		r.skip(ReqQoS2, "the device publishes at QoS 2 only after a physical event (an exit gate's charge), and the certifier has no access to its physical side (run with --bench)")
		return
	default:
		for _, st := range r.prof.Stimuli {
			r.stimulate(st)
		}
		wait = r.cfg.EventLimit
	}
	held, ok := r.tr.Wait(r.ctx, from, wait, func(e stage.Event) bool { return e.Held != nil && e.Held.Ack == packet.TypePubrec })
	r.s.ClearHolds()
	if !ok {
		r.skip(ReqQoS2, fmt.Sprintf("the device published nothing at QoS 2 within %s", wait))
		return
	}
	r.qos2(held)
}

// stimulate applies one physical sequence and checks the events it must produce.
func (r *run) stimulate(st Stimulus) {
	if st.Needs != "" {
		_, idx, err := r.command(st.Needs)
		if err != nil {
			r.log("could not send %s: %v", st.Needs, err)
			return
		}
		if _, a, ok := r.awaitAck(st.Needs, "", idx, r.cfg.AckLimit); !ok || a.Result != "ok" {
			r.skip(ReqEvents, fmt.Sprintf("%s: the device did not carry out %s first", st.Name, st.Needs))
			return
		}
		if st.Ready != nil && !r.lastStateReady(st.Ready) {
			if _, ok := r.tr.Wait(r.ctx, idx, r.cfg.EventLimit+r.cfg.AckLimit, func(e stage.Event) bool {
				p := e.Publish()
				if e.Kind != stage.FromDevice || p == nil || p.Topic != r.base+"/state" {
					return false
				}
				var m map[string]any
				return json.Unmarshal(p.Payload, &m) == nil && st.Ready(m)
			}); !ok {
				r.skip(ReqEvents, fmt.Sprintf("%s: the device did not reach the state it needs after %s", st.Name, st.Needs))
				return
			}
		}
	}
	from := r.tr.Len()
	r.log("physical event: %s", st.Name)
	for _, s := range st.Do {
		if err := r.cfg.Physical.Stimulate(r.ctx, s); err != nil {
			r.fail(ReqEvents, fmt.Sprintf("%s: could not apply %s: %v", st.Name, s.Kind, err))
			return
		}
	}
	for _, typ := range st.Events {
		topic := r.base + "/evt/" + typ
		ev, ok := r.tr.Wait(r.ctx, from, r.cfg.EventLimit, func(e stage.Event) bool {
			p := e.Publish()
			return e.Kind == stage.FromDevice && p != nil && p.Topic == topic
		})
		if !ok {
			r.fail(ReqEvents, fmt.Sprintf("%s: no event on %s within %s", st.Name, topic, r.cfg.EventLimit), from)
			continue
		}
		d := ev.At.Sub(r.tr.Events(from, from+1)[0].At)
		m := report.MeasureDuration("event "+typ+" after "+st.Name, d, report.AtMost(float64(r.cfg.EventLimit.Milliseconds())))
		r.measure(ReqEvents, report.Pass, fmt.Sprintf("%s: reported on %s", st.Name, topic), m, ev.Index)
	}
}

// lastStateReady reports whether the last state the device published satisfies ready.
func (r *run) lastStateReady(ready func(map[string]any) bool) bool {
	evs := r.tr.Events(0, -1)
	for i := len(evs) - 1; i >= 0; i-- {
		if p := evs[i].Publish(); p != nil && evs[i].Kind == stage.FromDevice && p.Topic == r.base+"/state" {
			var m map[string]any
			return json.Unmarshal(p.Payload, &m) == nil && ready(m)
		}
	}
	return false
}

// qos2 follows the QoS 2 PUBLISH whose PUBREC was held: the connection drops before PUBREC (the
// device must resend the PUBLISH, with DUP, same identifier), then before PUBCOMP (it must resend
// only the PUBREL), and the message must never come again as a new message.
func (r *run) qos2(held stage.Event) {
	id := held.Held.ID
	orig := r.publishBefore(held)
	r.log("held back the PUBREC of QoS 2 packet %d on connection %d", id, held.Conn)
	r.s.Hold(stage.Hold{Ack: packet.TypePubcomp, ID: id, Count: 1})
	defer r.s.ClearHolds()
	r.delay()
	n2, ok := r.cycle(fmt.Sprintf("the QoS 2 PUBLISH %d waits for its PUBREC", id), nil)
	if !ok {
		return
	}
	again, ok := r.awaitQoS2Resend(n2, orig.Index+1, orig)
	switch {
	case !ok:
		r.fail(ReqQoS2, fmt.Sprintf("the QoS 2 PUBLISH %d, unanswered by PUBREC, was not sent again within %s of resuming the session", id, r.resendLimit()), orig.Index, held.Index)
		return
	case again.Publish() == nil:
		r.fail(ReqQoS2, fmt.Sprintf("the device sent PUBREL %d although it never received a PUBREC for it", id), orig.Index, held.Index, again.Index)
		return
	case again.Publish().PacketID != id:
		r.fail(ReqQoS2, fmt.Sprintf("the message was sent again as packet %d instead of %d: a new message, billed twice", again.Publish().PacketID, id), orig.Index, held.Index, again.Index)
		return
	}
	r.judgeDup(again, orig, held)
	rel, ok := r.tr.Wait(r.ctx, again.Index, r.cfg.AckLimit, func(e stage.Event) bool {
		return e.Conn == n2 && e.Is(stage.FromDevice, packet.TypePubrel) && packetID(e.Packet) == id
	})
	if !ok {
		r.fail(ReqQoS2, fmt.Sprintf("no PUBREL %d within %s of the PUBREC", id, r.cfg.AckLimit), again.Index)
		return
	}
	r.log("held back the PUBCOMP of packet %d", id)
	r.delay()
	n3, ok := r.cycle(fmt.Sprintf("the PUBREL %d waits for its PUBCOMP", id), nil)
	if !ok {
		return
	}
	next, ok := r.awaitQoS2Resend(n3, rel.Index+1, orig)
	switch {
	case !ok:
		r.fail(ReqQoS2, fmt.Sprintf("the unacknowledged PUBREL %d was not sent again within %s of resuming the session", id, r.resendLimit()), rel.Index)
		return
	case next.Publish() != nil && next.Publish().PacketID == id:
		r.fail(ReqQoS2, fmt.Sprintf("the PUBLISH %d was sent again after its PUBREL: once PUBREL is sent, only the PUBREL may be resent", id), rel.Index, next.Index)
		return
	case next.Publish() != nil:
		r.fail(ReqQoS2, fmt.Sprintf("after the exchange of packet %d the device published the same message again as packet %d: a receiver delivers it twice (exactly once is broken)", id, next.Publish().PacketID), orig.Index, rel.Index, next.Index)
		return
	}
	comp, _ := r.tr.Wait(r.ctx, next.Index, r.cfg.AckLimit, func(e stage.Event) bool {
		return e.Is(stage.ToDevice, packet.TypePubcomp) && packetID(e.Packet) == id
	})
	// Exactly once: the same message must not come back as a new one. A bounded window is the one
	// way to see that something does not happen.
	window := max(time.Second, r.cfg.AckLimit/2)
	dup, found := r.tr.Wait(r.ctx, next.Index+1, window, func(e stage.Event) bool {
		p := e.Publish()
		return e.Kind == stage.FromDevice && p != nil && p.QoS > 0 && p.PacketID != id && sameMessage(p, orig.Publish())
	})
	if found {
		r.fail(ReqQoS2, fmt.Sprintf("after the exchange of packet %d completed, the device published the same message again as packet %d: a receiver delivers it twice (exactly once is broken)", id, dup.Publish().PacketID), orig.Index, next.Index, comp.Index, dup.Index)
		return
	}
	r.pass(ReqQoS2, fmt.Sprintf("QoS 2 message %d: PUBLISH resent before PUBREC, only PUBREL after, completed once (no duplicate within %s)", id, window), orig.Index, held.Index, again.Index, rel.Index, next.Index)
}

// awaitQoS2Resend waits, on connection conn from trace index from, for what the device sends
// again of the QoS 2 message orig after a reconnection: the PUBLISH (with orig's packet
// identifier, or the same message under another) or the PUBREL of orig's identifier. The caller
// judges which it is.
func (r *run) awaitQoS2Resend(conn, from int, orig stage.Event) (stage.Event, bool) {
	id := orig.Publish().PacketID
	return r.tr.Wait(r.ctx, from, r.resendLimit(), func(e stage.Event) bool {
		if e.Conn != conn || e.Kind != stage.FromDevice {
			return false
		}
		if p := e.Publish(); p != nil {
			return p.QoS > 0 && (p.PacketID == id || sameMessage(p, orig.Publish()))
		}
		return e.Is(stage.FromDevice, packet.TypePubrel) && packetID(e.Packet) == id
	})
}

// phasePower cuts the device's power and restores it.
func (r *run) phasePower() {
	if !r.prof.Contract {
		return
	}
	if r.cfg.Physical == nil {
		r.skip(ReqPowerLoss, "needs the device's physical side to cut its power (run with --bench)")
		return
	}
	n, ok := r.current()
	if !ok {
		return
	}
	from := r.tr.Len()
	r.log("power cut")
	if err := r.cfg.Physical.Power(r.ctx, false); err != nil {
		r.fail(ReqPowerLoss, "could not cut the power: "+err.Error())
		return
	}
	closed, ok := r.tr.Wait(r.ctx, from, 5*time.Second, func(e stage.Event) bool { return e.Kind == stage.Closed && e.Conn == n })
	if !ok {
		r.fail(ReqPowerLoss, "the connection did not end within 5s of the power cut", from)
	} else if bye, said := r.tr.Wait(r.ctx, from, 0, func(e stage.Event) bool {
		return e.Conn == n && e.Is(stage.FromDevice, packet.TypeDisconnect)
	}); said {
		r.fail(ReqPowerLoss, "the device sent DISCONNECT when its power was cut: a broker then discards its will and nobody learns it is offline", bye.Index, closed.Index)
	} else {
		r.pass(ReqPowerLoss, "the connection ended without DISCONNECT when the power was cut: a broker publishes the will", closed.Index)
	}
	back := r.tr.Len()
	if err := r.cfg.Physical.Power(r.ctx, true); err != nil {
		r.fail(ReqPowerLoss, "could not restore the power: "+err.Error())
		r.gone = true
		return
	}
	n2, ok := r.comeBack(n, back, "after power returned")
	if !ok {
		r.fail(ReqPowerLoss, "the device did not come back after its power returned")
		return
	}
	status, ok := r.tr.Wait(r.ctx, back, r.cfg.EventLimit, func(e stage.Event) bool {
		p := e.Publish()
		return e.Conn == n2 && e.Kind == stage.FromDevice && p != nil && p.Topic == r.base+"/status" && statusOnline(p.Payload)
	})
	if !ok {
		r.fail(ReqPowerLoss, fmt.Sprintf("no online status within %s of reconnecting after the power returned", r.cfg.EventLimit), back)
		return
	}
	r.pass(ReqPowerLoss, "back online after the power returned", status.Index)
}

func statusOnline(payload []byte) bool {
	var st struct {
		Online *bool `json:"online"`
	}
	return json.Unmarshal(payload, &st) == nil && st.Online != nil && *st.Online
}

// phaseLimits5 reconnects a 5.0 device with tight CONNACK limits — Receive Maximum 1, Topic Alias
// Maximum 2, a shorter Server Keep Alive — and checks that it keeps them.
func (r *run) phaseLimits5() {
	if r.pv != packet.V5 {
		return
	}
	var props packet.Properties
	props.ReceiveMaximum = 1
	props.TopicAliasMaximum = 2
	props.Present.Add(packet.PropTopicAliasMaximum)
	sk := time.Duration(0)
	switch {
	case r.keepalive == 0:
		sk = 2 * time.Second
	case r.keepalive >= 2*time.Second:
		sk = (r.keepalive / 2).Truncate(time.Second)
	}
	if sk > 0 {
		props.ServerKeepAlive = uint16(sk / time.Second)
		props.Present.Add(packet.PropServerKeepAlive)
	} else {
		r.skip(ReqServerKeepalive, "the device's Keep Alive of 1s leaves no shorter Server Keep Alive to give it")
	}
	n, ok := r.cycle("reconnect under Receive Maximum 1, Topic Alias Maximum 2 and a Server Keep Alive", &stage.Answer{Props: props})
	if !ok {
		return
	}
	r.judgeReceiveMaximum(n)
	if sk > 0 {
		if cur, ok := r.current(); ok {
			r.judgeSilence(ReqServerKeepalive, cur, sk)
		}
	}
}

// judgeReceiveMaximum holds the acknowledgement of one QoS 1 message under Receive Maximum 1 and
// provokes another: the device must wait.
func (r *run) judgeReceiveMaximum(n int) {
	r.s.Hold(stage.Hold{Ack: packet.TypePuback, Count: 1})
	from := r.tr.Len()
	wait := r.provokeQoS1()
	held, ok := r.tr.Wait(r.ctx, from, wait, func(e stage.Event) bool { return e.Held != nil && e.Held.Ack == packet.TypePuback })
	if !ok {
		r.s.ClearHolds()
		r.skip(ReqReceiveMaximum, fmt.Sprintf("the device sent no QoS 1 message within %s", wait))
		return
	}
	if r.prof.Contract {
		r.provokeQoS1()
	}
	window := max(time.Second, r.cfg.AckLimit)
	extra, over := r.tr.Wait(r.ctx, held.Index+1, window, func(e stage.Event) bool {
		p := e.Publish()
		return e.Conn == held.Conn && e.Kind == stage.FromDevice && p != nil && p.QoS > 0 && p.PacketID != held.Held.ID
	})
	if over {
		r.fail(ReqReceiveMaximum, fmt.Sprintf("with Receive Maximum 1 and PUBLISH %d unacknowledged, the device sent PUBLISH %d", held.Held.ID, extra.Publish().PacketID), held.Index, extra.Index)
	} else {
		r.pass(ReqReceiveMaximum, fmt.Sprintf("with Receive Maximum 1 the device sent no other QoS 1/2 message for %s while PUBLISH %d was unacknowledged", window, held.Held.ID), held.Index)
	}
	if err := r.s.Send(&packet.Puback{PacketID: held.Held.ID}); err != nil {
		r.log("could not acknowledge packet %d: %v", held.Held.ID, err)
	}
}

// inFlight is how long after the server's refusal or DISCONNECT a device's packets are taken as
// sent before it read them (crossing on the way), not as sent in spite of them.
const inFlight = 100 * time.Millisecond

// phaseServerDisconnect sends a 5.0 DISCONNECT (server shutting down) and watches the device stop.
func (r *run) phaseServerDisconnect() {
	if r.pv != packet.V5 {
		return
	}
	n, ok := r.current()
	if !ok {
		return
	}
	linger := time.Second
	from := r.tr.Len()
	if _, err := r.s.Disconnect(packet.ServerShuttingDown, linger); err != nil {
		r.fail(ReqServerDisconnect, "could not send DISCONNECT: "+err.Error())
		return
	}
	closed, ok := r.tr.Wait(r.ctx, from, linger+2*time.Second, func(e stage.Event) bool { return e.Kind == stage.Closed && e.Conn == n })
	if !ok {
		r.fail(ReqServerDisconnect, "the connection did not close after DISCONNECT", from)
		return
	}
	// Disconnect records the DISCONNECT before it returns; a device packet read meanwhile may
	// come first in the trace.
	bye, ok := r.tr.Wait(r.ctx, from, 0, func(e stage.Event) bool { return e.Conn == n && e.Is(stage.ToDevice, packet.TypeDisconnect) })
	if !ok {
		r.fail(ReqServerDisconnect, "the DISCONNECT the server sent is missing from the trace", from)
		return
	}
	// A packet the device wrote before it read the DISCONNECT crossed it on the way: only what
	// arrives once the device had the time to read it counts.
	var after []int
	for _, e := range r.tr.Events(bye.Index+1, closed.Index) {
		if e.Conn == n && e.Kind == stage.FromDevice && e.At.Sub(bye.At) > inFlight {
			after = append(after, e.Index)
		}
	}
	switch {
	case len(after) > 0:
		r.fail(ReqServerDisconnect, fmt.Sprintf("the device sent %d packet(s) after the server's DISCONNECT", len(after)), append(append([]int{bye.Index}, after...), closed.Index)...)
	case closed.ByDevice:
		r.pass(ReqServerDisconnect, fmt.Sprintf("the device closed the connection %s after the server's DISCONNECT", ms(closed.At.Sub(bye.At))), bye.Index, closed.Index)
	default:
		r.pass(ReqServerDisconnect, "the device sent nothing after the server's DISCONNECT", bye.Index, closed.Index)
	}
	limit := r.cfg.ReconnectLimit
	if !r.prof.Contract {
		limit = min(limit, 5*time.Second)
	}
	r.comeBackWithin(n, closed.Index, "after the server's DISCONNECT", limit)
}

// phaseResubscribe answers a reconnection with Session Present 0 and expects every subscription
// again.
func (r *run) phaseResubscribe() {
	subs := r.s.Subscriptions()
	if len(subs) == 0 {
		r.skip(ReqResubscribe, "the device subscribed to nothing")
		return
	}
	n, ok := r.cycle("the server loses the device's session (Session Present 0)", &stage.Answer{Session: stage.SessionLost})
	if !ok {
		return
	}
	from := r.tr.Len()
	for _, e := range r.tr.Events(0, -1) {
		if e.Conn == n {
			from = e.Index
			break
		}
	}
	limit := max(5*time.Second, r.cfg.AckLimit)
	missing := func() []string {
		now := r.s.Subscriptions()
		var out []string
		for f := range subs {
			if _, ok := now[f]; !ok {
				out = append(out, f)
			}
		}
		return out
	}
	last, ok := r.tr.Wait(r.ctx, from, limit, func(e stage.Event) bool {
		return e.Conn == n && e.Is(stage.ToDevice, packet.TypeSuback) && len(missing()) == 0
	})
	if !ok {
		r.fail(ReqResubscribe, fmt.Sprintf("after Session Present 0 the device did not subscribe again to %s within %s", strings.Join(missing(), ", "), limit), from)
		return
	}
	if !r.prof.Contract {
		r.pass(ReqResubscribe, "subscribed again to every topic filter after Session Present 0", last.Index)
		return
	}
	// Any ack of the command shows that it reached the device; whether the ack carries its corr
	// is ReqCommands' business.
	_, idx, err := r.command(r.prof.Command)
	if err != nil {
		r.fail(ReqResubscribe, "could not send a command after the resubscription: "+err.Error())
		return
	}
	if ev, _, ok := r.awaitAck(r.prof.Command, "", idx, r.cfg.AckLimit); ok {
		r.pass(ReqResubscribe, "subscribed again after Session Present 0, and the next command was answered", last.Index, ev.Index)
	} else {
		r.fail(ReqResubscribe, "subscribed again after Session Present 0, but the next command got no ack", last.Index, idx)
	}
}

// phaseRefused refuses the device's next CONNECT (server unavailable), keeps the connection open
// for a moment to see the device stop, and expects it to try again later.
func (r *run) phaseRefused() {
	linger := time.Second
	from := r.tr.Len()
	n, _ := r.s.Drop("the next connection will be refused")
	r.s.AnswerNext(stage.Answer{Code: packet.ServerUnavailable, Linger: linger})
	if n == 0 {
		n = r.lastConn()
	}
	r.log("dropped connection %d; the next CONNECT is refused (server unavailable)", n)
	refusal, ok := r.tr.Wait(r.ctx, from, r.cfg.ReconnectLimit, func(e stage.Event) bool {
		return e.Is(stage.ToDevice, packet.TypeConnack) && e.Packet.(*packet.Connack).Code != 0
	})
	if !ok {
		r.fail(ReqReconnects, fmt.Sprintf("the device did not reconnect within %s after the server dropped connection %d", r.cfg.ReconnectLimit, n), from)
		r.gone = true
		return
	}
	m := refusal.Conn
	closed, ok := r.tr.Wait(r.ctx, refusal.Index, linger+2*time.Second, func(e stage.Event) bool { return e.Kind == stage.Closed && e.Conn == m })
	end := -1
	if ok {
		end = closed.Index
	}
	// MQTT lets a client send packets right after CONNECT without waiting for CONNACK, so what
	// arrives in the first moments after the refusal may have left before the device read it.
	var after []int
	for _, e := range r.tr.Events(refusal.Index, end) {
		if e.Conn == m && e.Kind == stage.FromDevice && e.At.Sub(refusal.At) > inFlight {
			after = append(after, e.Index)
		}
	}
	switch {
	case len(after) > 0:
		r.fail(ReqRefused, fmt.Sprintf("the device sent %d packet(s) on the connection the server had refused", len(after)), append([]int{refusal.Index}, after...)...)
	case ok && closed.ByDevice:
		r.pass(ReqRefused, fmt.Sprintf("the device closed the refused connection after %s", ms(closed.At.Sub(refusal.At))), refusal.Index, closed.Index)
	default:
		r.pass(ReqRefused, "the device sent nothing on the refused connection until the server closed it", refusal.Index)
	}
	if r.prof.Contract {
		// Trying again is the device contract's business (ReqReconnects); MQTT itself does not
		// ask a client to, and many command-line clients give up.
		r.comeBack(m, refusal.Index, "after a refused connection")
	}
}

// finishEvents waits for the events that answer commands (a turnstile's timeout after
// allow_pass), which come after a device-defined delay.
func (r *run) finishEvents() {
	if !r.prof.Contract || r.base == "" {
		return
	}
	for cmd, typ := range r.prof.Answers {
		for _, corr := range r.corrs[cmd] {
			topic := r.base + "/evt/" + typ
			if _, ok := r.tr.Wait(r.ctx, 0, r.cfg.EventLimit, func(e stage.Event) bool {
				p := e.Publish()
				return e.Kind == stage.FromDevice && p != nil && p.Topic == topic && bytes.Contains(p.Payload, []byte(corr))
			}); !ok {
				r.skip(ReqEvents, fmt.Sprintf("no %s event answering command %s (corr %q) was seen", typ, cmd, corr))
			}
		}
	}
}

// packetID returns the packet identifier of packets that carry one.
func packetID(p packet.Packet) uint16 {
	switch p := p.(type) {
	case *packet.Publish:
		return p.PacketID
	case *packet.Puback:
		return p.PacketID
	case *packet.Pubrec:
		return p.PacketID
	case *packet.Pubrel:
		return p.PacketID
	case *packet.Pubcomp:
		return p.PacketID
	case *packet.Subscribe:
		return p.PacketID
	case *packet.Suback:
		return p.PacketID
	case *packet.Unsubscribe:
		return p.PacketID
	case *packet.Unsuback:
		return p.PacketID
	}
	return 0
}

// payloadText quotes a payload for messages, shortened.
func payloadText(b []byte) string {
	const max = 120
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
