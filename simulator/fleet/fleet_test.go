package fleet_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/packet"
	"github.com/gatehouse-iot/gatehouse/simulator/device"
	"github.com/gatehouse-iot/gatehouse/simulator/device/gate"
	"github.com/gatehouse-iot/gatehouse/simulator/fault"
	"github.com/gatehouse-iot/gatehouse/simulator/fleet"
)

// TestMain fails the package if any goroutine (the devices', paho's) outlives the tests; goleak
// retries for a while, which covers paho's goroutines that end just after Disconnect returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	st = "acs/site-1/gate/gate-01/status"
	sx = "acs/site-1/gate/gate-01/state"
)

func startFleet(t *testing.T, url string, groups ...fleet.Group) *fleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Spec{Groups: groups, Seed: 42, Broker: url})
	if err != nil {
		t.Fatalf("fleet start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := f.Stop(ctx); err != nil {
			t.Errorf("fleet stop: %v", err)
		}
	})
	return f
}

// waitPackets waits until the broker has traced n packets matching pred (the broker reads a
// DISCONNECT after the client has sent it: counting at once would race with it).
func waitPackets(t *testing.T, b *brokertest.Broker, n int, pred brokertest.Predicate, what string) {
	t.Helper()
	from := 0
	for i := range n {
		e, err := b.Trace().WaitAfter(from, 5*time.Second, pred)
		if err != nil {
			t.Fatalf("%s: %d of %d seen: %v", what, i, n, err)
		}
		from = e.Seq + 1
	}
}

func oneGate(extra ...func(*fleet.Group)) fleet.Group {
	g := fleet.Group{Kind: "gate", Count: 1, ID: "gate-{n:02}", Keepalive: 30 * time.Second, Telemetry: -1,
		TravelTime: 200 * time.Millisecond, HoldTime: time.Hour, ReconnectMin: 100 * time.Millisecond}
	for _, e := range extra {
		e(&g)
	}
	return g
}

func TestFleetComesOnlineWithRetainedStatusAndStateThenStopsCleanly(t *testing.T) {
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Spec{Seed: 1, Broker: b.URL(), ConnectRate: 200, Groups: []fleet.Group{
		{Kind: "gate", Count: 2, ID: "gate-{n:02}", Telemetry: -1},
		{Kind: "turnstile", Count: 2, Telemetry: -1},
		{Kind: "camera", Count: 1, Site: "north", Telemetry: -1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gate-01", "gate-02", "turnstile-001", "turnstile-002", "camera-001"}
	if got := f.IDs(); len(got) != len(want) {
		t.Fatalf("IDs = %v, want %v", got, want)
	}
	for i, id := range f.IDs() {
		if id != want[i] {
			t.Fatalf("IDs = %v, want %v", f.IDs(), want)
		}
	}
	p := newPlatform(t, b.URL(), "acs/#")
	for _, topic := range []string{
		"acs/site-1/gate/gate-01/status", "acs/site-1/gate/gate-02/status",
		"acs/site-1/turnstile/turnstile-001/status", "acs/site-1/turnstile/turnstile-002/status",
		"acs/north/camera/camera-001/status",
	} {
		m, _ := p.wait(0, 5*time.Second, "retained online status on "+topic, topicAnd(topic, field("online", true)))
		if !m.Retained || m.QoS != 1 {
			t.Errorf("%s: retained=%t qos=%d, want retained at QoS 1", topic, m.Retained, m.QoS)
		}
		if m.json()["fw"] != "1.4.2" || m.json()["model"] == nil || m.json()["ts"] == nil {
			t.Errorf("%s: status %s lacks fw, model or ts", topic, m.Payload)
		}
	}
	m, _ := p.wait(0, 5*time.Second, "retained gate state", topicIs(sx))
	if !m.Retained || m.json()["position"] != "closed" || m.json()["mode"] != "normal" {
		t.Errorf("gate state %s retained=%t, want position closed, mode normal, retained", m.Payload, m.Retained)
	}
	if s := f.Stats(); s.Devices != 5 || s.Online != 5 || s.Connects != 5 {
		t.Errorf("stats %+v: want 5 devices, 5 online, 5 connects", s)
	}

	// A will must carry {"online":false} retained at QoS 1: check the CONNECT each device sent.
	for _, e := range b.Trace().Packets(brokertest.In(packet.TypeConnect)) {
		c := e.Packet.(*packet.Connect)
		if strings.HasPrefix(c.ClientID, "platform") {
			continue
		}
		if c.ClientID == "gate-01" && (c.Will == nil || c.Will.Topic != "acs/site-1/gate/gate-01/status") {
			t.Errorf("gate-01 CONNECT will = %+v", c.Will)
		}
		if c.Will == nil || string(c.Will.Payload) != `{"online":false}` || !c.Will.Retain || c.Will.QoS != 1 {
			t.Errorf("%s CONNECT will = %+v, want {\"online\":false} retained QoS 1", c.ClientID, c.Will)
		}
	}

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopCancel()
	if err := f.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	waitPackets(t, b, 5, brokertest.In(packet.TypeDisconnect), "DISCONNECT on a clean stop")
	after := newPlatform(t, b.URL(), "acs/+/+/+/status")
	after.wait(0, 5*time.Second, "retained offline status after a clean stop",
		topicAnd("acs/site-1/gate/gate-02/status", field("online", false)))
}

func TestGateCommandsOverMQTT(t *testing.T) {
	b := brokertest.Start(t)
	startFleet(t, b.URL(), oneGate())
	p := newPlatform(t, b.URL(), "acs/#")
	p.send("acs/site-1/gate/gate-01/cmd/open", `{"corr":"k-1"}`)
	ack, _ := p.wait(0, 5*time.Second, "open ack", topicIs("acs/site-1/gate/gate-01/cmd/open/ack"))
	if ack.json()["corr"] != "k-1" || ack.json()["result"] != "ok" || ack.QoS != 1 {
		t.Fatalf("ack %s qos %d, want corr k-1 result ok at QoS 1", ack.Payload, ack.QoS)
	}
	p.wait(0, 5*time.Second, "state open", topicAnd(sx, field("position", "open")))
	p.send("acs/site-1/gate/gate-01/cmd/open", `{"corr":`)
	bad, _ := p.wait(0, 5*time.Second, "rejection of a malformed command", topicAnd("acs/site-1/gate/gate-01/cmd/open/ack", field("result", "rejected")))
	if r, _ := bad.json()["reason"].(string); r == "" {
		t.Fatalf("rejection without a reason: %s", bad.Payload)
	}
	p.send("acs/site-1/gate/gate-01/cmd/allow_pass", `{"corr":"k-2"}`)
	p.wait(0, 5*time.Second, "allow_pass rejected by a gate", topicAnd("acs/site-1/gate/gate-01/cmd/allow_pass/ack", field("result", "rejected")))
}

func TestTurnstileCardAllowPassPassage(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), fleet.Group{Kind: "turnstile", Count: 1, Telemetry: -1, Cards: []string{"CAFE0001"}})
	p := newPlatform(t, b.URL(), "acs/#")
	base := "acs/site-1/turnstile/turnstile-001"
	if err := f.Stimulate("turnstile-001", device.Stimulus{Kind: device.StimCard}); err != nil {
		t.Fatal(err)
	}
	card, _ := p.wait(0, 5*time.Second, "card event", topicIs(base+"/evt/card"))
	if card.json()["card"] != "CAFE0001" || card.json()["seq"] == nil || card.json()["id"] != "turnstile-001" {
		t.Fatalf("card event %s", card.Payload)
	}
	p.send(base+"/cmd/allow_pass", `{"corr":"swipe-1"}`)
	p.wait(0, 5*time.Second, "allow_pass ack", topicAnd(base+"/cmd/allow_pass/ack", field("result", "ok")))
	if err := f.Stimulate("turnstile-001", device.Stimulus{Kind: device.StimPassage, Direction: "in"}); err != nil {
		t.Fatal(err)
	}
	pass, _ := p.wait(0, 5*time.Second, "passage", topicIs(base+"/evt/passage"))
	if pass.json()["corr"] != "swipe-1" || pass.json()["direction"] != "in" {
		t.Fatalf("passage %s, want corr swipe-1 direction in", pass.Payload)
	}
	if err := f.Stimulate("turnstile-001", device.Stimulus{Kind: device.StimPassage}); err != nil {
		t.Fatal(err)
	}
	p.wait(0, 5*time.Second, "tailgating alarm", topicAnd(base+"/evt/tamper", field("reason", "tailgating")))
	p.wait(0, 5*time.Second, "counters in state", topicAnd(base+"/state", field("in", 1)))
}

func TestPowerCutPublishesTheWillAndPowerReturnBoots(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate())
	p := newPlatform(t, b.URL(), "acs/#")
	p.wait(0, 5*time.Second, "online", topicAnd(st, field("online", true)))
	from := p.mark()
	g, _ := f.Device("gate-01")
	if err := g.(*gate.Gate).SetInput(gate.InPower, false); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 5*time.Second, "the will", topicAnd(st, field("online", false)))
	if n := b.Trace().Count(brokertest.All(brokertest.In(packet.TypeDisconnect), brokertest.Client("gate-01"))); n != 0 {
		t.Fatalf("a power cut sent %d DISCONNECT packets", n)
	}
	if g.Online() {
		t.Fatal("device online without power")
	}
	from = p.mark()
	if err := f.Clear("gate-01", fault.PowerCut); err != nil {
		t.Fatal(err)
	}
	m, _ := p.wait(from, 5*time.Second, "online again", topicAnd(st, field("online", true)))
	if m.json()["boot"] != float64(2) {
		t.Errorf("status after power return %s, want boot 2", m.Payload)
	}
	p.wait(from, 5*time.Second, "state republished", topicAnd(sx, field("position", "closed")))
}

func TestNetworkDropIsNoticedOnlyByKeepalive(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate(func(g *fleet.Group) { g.Keepalive = time.Second }))
	p := newPlatform(t, b.URL(), "acs/#")
	p.wait(0, 5*time.Second, "online", topicAnd(st, field("online", true)))
	from := p.mark()
	injected := time.Now()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.NetworkDrop}); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 10*time.Second, "the will after the keepalive timeout", topicAnd(st, field("online", false)))
	// The broker may only give up after 1.5 x keepalive of silence (MQTT-3.1.2-24); an earlier
	// will would mean the drop was not silent.
	if waited := time.Since(injected); waited < time.Second {
		t.Fatalf("will after %s: the broker noticed the drop before any keepalive could expire", waited)
	}
	if n := b.Trace().Count(brokertest.All(brokertest.In(packet.TypeDisconnect), brokertest.Client("gate-01"))); n != 0 {
		t.Fatalf("%d DISCONNECT packets during a silent drop", n)
	}
	from = p.mark()
	if err := f.Clear("gate-01", fault.NetworkDrop); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 15*time.Second, "online after the network heals", topicAnd(st, field("online", true)))
	if s := f.Stats(); s.Reconnects < 1 || s.ConnectionsLost < 1 {
		t.Fatalf("stats %+v: want a lost connection and a reconnect", s.Stats)
	}
}

func TestResetAbortsAndTheDeviceReconnects(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate())
	p := newPlatform(t, b.URL(), "acs/#")
	p.wait(0, 5*time.Second, "online", topicAnd(st, field("online", true)))
	from := p.mark()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.Reset}); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 5*time.Second, "the will after a reset", topicAnd(st, field("online", false)))
	p.wait(from, 10*time.Second, "online again", topicAnd(st, field("online", true)))
	if s := f.Stats(); s.Resets != 1 || s.Reconnects != 1 {
		t.Fatalf("stats: resets %d reconnects %d, want 1 and 1", s.Resets, s.Reconnects)
	}
}

func TestNoPingreqLetsTheBrokerDropTheDevice(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate(func(g *fleet.Group) { g.Keepalive = time.Second }))
	pings := brokertest.All(brokertest.In(packet.TypePingreq), brokertest.Client("gate-01"))
	if _, err := b.Trace().Wait(5*time.Second, pings); err != nil {
		t.Fatalf("a healthy device with keepalive 1s sent no PINGREQ: %v", err)
	}
	p := newPlatform(t, b.URL(), "acs/#")
	from := p.mark()
	mark := b.Trace().Next()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.NoPingreq}); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 10*time.Second, "the will once keepalive expired", topicAnd(st, field("online", false)))
	if _, err := b.Trace().WaitAfter(mark, 0, pings); err == nil {
		t.Fatal("a PINGREQ reached the broker under no_pingreq")
	}
	if s := f.Stats(); s.PingreqsDropped == 0 {
		t.Fatal("no PINGREQ was dropped")
	}
}

// connectOf matches the CONNECT of a client, by the client identifier inside the packet.
func connectOf(id string) brokertest.Predicate {
	return func(e brokertest.Event) bool {
		c, ok := e.Packet.(*packet.Connect)
		return ok && e.Dir == broker.In && c.ClientID == id
	}
}

// resend makes a gate send a QoS 1 ack the broker never acknowledges (broker fault drop-puback),
// then resets the connection so that the client resends it on reconnection. The device is used
// directly: with no PUBACK, not even its status is acknowledged, so it never counts as online.
func resend(t *testing.T, noDup bool) *packet.Publish {
	b := brokertest.Start(t, brokertest.WithFault("drop-puback@gate-01"))
	g, err := gate.New(device.Config{ID: "gate-01", Broker: b.URL(), Telemetry: -1, ReconnectMin: 100 * time.Millisecond}, gate.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	status := brokertest.All(brokertest.In(packet.TypePublish), brokertest.Topic("acs/site-1/gate/gate-01/status"))
	if _, err := b.Trace().Wait(5*time.Second, status); err != nil {
		t.Fatal(err)
	}
	if noDup {
		if err := g.Inject(fault.Fault{Kind: fault.NoDup}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := g.Do(ctx, "open", []byte(`{"corr":"x"}`)); err != nil {
		t.Fatal(err)
	}
	ack := brokertest.All(brokertest.In(packet.TypePublish), brokertest.Topic("acs/site-1/gate/gate-01/cmd/open/ack"))
	first, err := b.Trace().Wait(5*time.Second, ack)
	if err != nil {
		t.Fatal(err)
	}
	if first.Packet.(*packet.Publish).Dup {
		t.Fatal("first transmission already has DUP")
	}
	mark := b.Trace().Next()
	if err := g.Inject(fault.Fault{Kind: fault.Reset}); err != nil {
		t.Fatal(err)
	}
	again, err := b.Trace().WaitAfter(mark, 10*time.Second, ack)
	if err != nil {
		t.Fatalf("no resend after reconnecting: %v", err)
	}
	p := again.Packet.(*packet.Publish)
	if p.PacketID != first.Packet.(*packet.Publish).PacketID {
		t.Fatalf("resend has packet id %d, first %d", p.PacketID, first.Packet.(*packet.Publish).PacketID)
	}
	return p
}

func TestResendCarriesDUP(t *testing.T) {
	if p := resend(t, false); !p.Dup {
		t.Fatal("the resend of an unacknowledged QoS 1 PUBLISH has DUP=0 (MQTT-3.3.1-1)")
	}
}

func TestNoDupClearsDUPOnResend(t *testing.T) {
	if p := resend(t, true); p.Dup {
		t.Fatal("under no_dup the resend still has DUP=1")
	}
}

func TestWrongWillRegistersAnotherWill(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate())
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.WrongWill, Params: map[string]any{"topic": "acs/site-1/gate/gate-01/lwt", "payload": "bye"}}); err != nil {
		t.Fatal(err)
	}
	mark := b.Trace().Next()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.Reset}); err != nil {
		t.Fatal(err)
	}
	e, err := b.Trace().WaitAfter(mark, 10*time.Second, connectOf("gate-01"))
	if err != nil {
		t.Fatal(err)
	}
	w := e.Packet.(*packet.Connect).Will
	if w == nil || w.Topic != "acs/site-1/gate/gate-01/lwt" || string(w.Payload) != "bye" {
		t.Fatalf("will after wrong_will = %+v", w)
	}
}

func TestExitChargeIsDeliveredExactlyOnceAcrossAReset(t *testing.T) {
	// The broker never answers the charge's PUBREC: the device must resend it (DUP) after the
	// reset, and the broker must deliver it once.
	b := brokertest.Start(t, brokertest.WithFault("drop-pubrec@gate-01"))
	f := startFleet(t, b.URL(), oneGate(func(g *fleet.Group) { g.Role = "exit" }))
	p := newPlatform(t, b.URL(), "acs/+/gate/+/evt/#")
	gateDev, _ := f.Device("gate-01")
	g := gateDev.(*gate.Gate)
	if _, err := g.Do(context.Background(), "hold_open", []byte(`{"corr":"h"}`)); err != nil {
		t.Fatal(err)
	}
	if err := g.SetInput(gate.InLoop, true); err != nil {
		t.Fatal(err)
	}
	if err := g.SetInput(gate.InLoop, false); err != nil {
		t.Fatal(err)
	}
	charge := "acs/site-1/gate/gate-01/evt/charge"
	in := brokertest.All(brokertest.In(packet.TypePublish), brokertest.Topic(charge), brokertest.Client("gate-01"))
	if _, err := b.Trace().Wait(5*time.Second, in); err != nil {
		t.Fatal(err)
	}
	mark := b.Trace().Next()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.Reset}); err != nil {
		t.Fatal(err)
	}
	re, err := b.Trace().WaitAfter(mark, 10*time.Second, in)
	if err != nil {
		t.Fatal(err)
	}
	if pp := re.Packet.(*packet.Publish); !pp.Dup || pp.QoS != 2 {
		t.Fatalf("charge resend dup=%t qos=%d, want DUP at QoS 2", pp.Dup, pp.QoS)
	}
	m, _ := p.wait(0, 5*time.Second, "the charge", topicIs(charge))
	if m.QoS != 2 || m.json()["amount_cents"] == nil {
		t.Fatalf("charge %s qos %d", m.Payload, m.QoS)
	}
	// Let a second copy, if the broker had one, reach the platform: a marker published after the
	// resend travels behind it on the same path.
	marker := "acs/site-1/gate/gate-01/evt/zz-marker"
	p.send(marker, "{}")
	p.wait(0, 5*time.Second, "marker", topicIs(marker))
	if n := p.count(topicIs(charge)); n != 1 {
		t.Fatalf("the platform received the charge %d times, want exactly once", n)
	}
}

func TestEventsDuringANetworkDropArriveAfterItHeals(t *testing.T) {
	b := brokertest.Start(t)
	f := startFleet(t, b.URL(), oneGate(func(g *fleet.Group) { g.Keepalive = time.Second }))
	p := newPlatform(t, b.URL(), "acs/#")
	p.wait(0, 5*time.Second, "online", topicAnd(st, field("online", true)))
	gd, _ := f.Device("gate-01")
	g := gd.(*gate.Gate)
	if _, err := g.Do(context.Background(), "hold_open", []byte(`{"corr":"h"}`)); err != nil {
		t.Fatal(err)
	}
	p.wait(0, 5*time.Second, "open", topicAnd(sx, field("position", "open")))
	from := p.mark()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.NetworkDrop}); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 10*time.Second, "the will", topicAnd(st, field("online", false)))
	// The device does not know yet, or knows and queues: either way nothing may be lost.
	for range 3 {
		if err := g.SetInput(gate.InLoop, true); err != nil {
			t.Fatal(err)
		}
		if err := g.SetInput(gate.InLoop, false); err != nil {
			t.Fatal(err)
		}
	}
	passage := "acs/site-1/gate/gate-01/evt/passage"
	if n := p.count(topicIs(passage)); n != 0 {
		t.Fatalf("%d passages crossed a dropped network", n)
	}
	if err := f.Clear("gate-01", fault.NetworkDrop); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		p.wait(from, 15*time.Second, "passage "+strconv.Itoa(i), topicAnd(passage, field("count", i)))
	}
}

func TestFleetAgainstMosquitto(t *testing.T) {
	m := testenv.StartMosquitto(t)
	f := startFleet(t, m.URL(), oneGate(), fleet.Group{Kind: "turnstile", Count: 1, Telemetry: -1})
	p := newPlatform(t, m.URL(), "acs/#")
	p.wait(0, 5*time.Second, "retained online status from mosquitto", topicAnd(st, field("online", true)))
	p.send("acs/site-1/gate/gate-01/cmd/open", `{"corr":"mq"}`)
	p.wait(0, 5*time.Second, "ack through mosquitto", topicAnd("acs/site-1/gate/gate-01/cmd/open/ack", field("corr", "mq")))
	from := p.mark()
	if err := f.Inject("gate-01", fault.Fault{Kind: fault.PowerCut}); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 5*time.Second, "mosquitto publishing the will", topicAnd(st, field("online", false)))
	if err := f.Clear("gate-01", fault.PowerCut); err != nil {
		t.Fatal(err)
	}
	p.wait(from, 10*time.Second, "online again", topicAnd(st, field("online", true)))
}
