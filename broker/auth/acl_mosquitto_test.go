package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gatehouse-iot/gatehouse/internal/testenv"
)

// The differential test runs Debian's mosquitto with an ACL file and compares its decisions with
// ACLFile's for publishing (Write) and receiving (Read). mosquitto 2.0 grants every SUBSCRIBE and
// filters on delivery, so Subscribe is not compared here (TestACLFixtureDecisions covers it).
//
// How mosquitto's decision is observed, with MQTT 5.0 clients (paho.golang):
//   - Write: the client publishes at QoS 1; mosquitto answers PUBACK 0x87 (not authorized) when
//     the ACL refuses and a success code otherwise.
//   - Read: the client subscribes to the topic and to a sentinel topic; a writer publishes the
//     topic, then the sentinel, each at QoS 1 and waiting for its PUBACK. mosquitto keeps the
//     order of one publisher's messages to one subscriber, so once the sentinel arrives the
//     topic either came first or was withheld. No timeouts decide the outcome.
//
// The harness adds two things to every ACL file, and ACLFile sees exactly the same file:
// a writer user allowed to publish anywhere, and a pattern that lets each client read its
// sentinel topic.
const harnessACL = `
user gh-writer
topic write #
pattern read gh-sentinel/%c
`

type diffCase struct {
	acl    string
	probes []aclCase
}

func TestACLAgreesWithMosquitto(t *testing.T) {
	fixture, err := os.ReadFile(fixtureACL)
	if err != nil {
		t.Fatal(err)
	}
	gate01 := as("gate-01", "gate-01")
	cases := []diffCase{
		{acl: string(fixture), probes: []aclCase{
			{anon("dash"), "acs/site-1/gate/gate-01/status", Read, true},
			{anon("dash"), "acs/site-1/gate/gate-01/status", Write, false},
			{anon("dash"), "acs/site-1/gate/gate-01/state", Read, false},
			{as("backoffice", "bo"), "acs/site-1/gate/gate-01/cmd/open", Write, true},
			{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/card", Read, true},
			{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/charge", Read, false},
			{as("backoffice", "bo"), "acs/site-1/gate/gate-01/evt/charge", Write, false},
			{as("billing", "bill"), "acs/site-2/gate/g-7/evt/charge", Read, true},
			{as("billing", "bill"), "acs/site-2/gate/g-7/evt/charge", Write, false},
			{as("billing", "bill"), "billing/invoices/2026", Write, true},
			{as("billing", "bill"), "billing/invoices/2026", Read, false},
			{as("installer", "inst"), "acs/site-1/gate/gate-01/cmd/open", Write, true},
			{as("installer", "inst"), "acs/site-2/gate/gate-01/cmd/open", Write, false},
			{gate01, "acs/site-1/gate/gate-01/state", Write, true},
			{gate01, "acs/site-1/gate/gate-02/state", Write, false},
			{gate01, "acs/site-1/gate/gate-01/cmd/open", Read, true},
			{gate01, "acs/site-1/gate/gate-02/cmd/open", Read, false},
			{gate01, "devices/gate-01/config", Write, true},
			{anon("gate-01"), "devices/gate-01/config", Write, false},
			{anon("gate-01"), "devices/%u/config", Write, false}, // %u is not left literal
			{anon("gate-01"), "acs/site-1/gate/gate-01/state", Write, true},
			{as("a+b", "dev"), "acs/site-1/gate/dev/state", Write, false},
		}},
		{acl: `
topic read public/#
user dave
topic readwrite devices/#
topic deny devices/+/secret
user erin
topic readwrite shared/#
topic deny shared/locked
pattern deny devices/%c/locked
pattern readwrite devices/%c/#
pattern read users/%u/inbox
topic readwrite after/pattern
`, probes: []aclCase{
			{as("dave", "dev2"), "devices/dev2/locked", Write, true},
			{as("dave", "dev2"), "devices/x/secret", Write, false},
			{as("dave", "dev2"), "devices/x/secret", Read, false},
			{as("erin", "e"), "shared/locked", Write, false},
			{as("erin", "e"), "shared/open", Read, true},
			{as("carol", "dev3"), "devices/dev3/locked", Write, false},
			{as("carol", "dev3"), "devices/dev3/x", Write, true},
			{as("carol", "dev3"), "users/carol/inbox", Read, true},
			{as("carol", "dev3"), "users/dave/inbox", Read, false},
			{anon("dev4"), "users/dev4/inbox", Read, false},
			{anon("dev4"), "devices/dev4/x", Read, true},
			{anon("dev4"), "public/news", Read, true},
			{anon("dev4"), "public/news", Write, false},
			{anon("site/dev5"), "devices/site/dev5/x", Write, true}, // '/' in a client id is not refused
			{as("a#", "dev6"), "devices/dev6/x", Write, false},
			{as("erin", "e"), "after/pattern", Write, true},
			{as("dave", "d"), "after/pattern", Write, false},
		}},
		{acl: `
user all
topic +/#
user deny-first
topic deny a/b
topic readwrite a/#
user deny-last
topic readwrite a/#
topic deny a/b
`, probes: []aclCase{
			{as("all", "x"), "a", Write, true},
			{as("all", "x"), "a/b/c", Read, true},
			{as("deny-first", "x"), "a/b", Write, false},
			{as("deny-first", "x"), "a/c", Write, true},
			{as("deny-last", "x"), "a/b", Read, false},
			{as("deny-last", "x"), "a/b/c", Read, true},
		}},
	}
	for i, dc := range cases {
		t.Run(fmt.Sprintf("acl-%d", i+1), func(t *testing.T) {
			path := writeFile(t, "acl.conf", dc.acl+harnessACL)
			ours, err := LoadACLFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m := testenv.StartMosquitto(t, "allow_anonymous true", "acl_file "+path, runAs())
			h := &mosqHarness{t: t, addr: m.Addr, log: m.Log}
			for _, p := range dc.probes {
				if !ours.Allow(p.id, "gh-sentinel/"+p.id.ClientID, Read) && p.access == Read {
					t.Fatalf("%v: harness sentinel not readable; fix the test case", p)
				}
				theirs := h.decide(p)
				got := ours.Allow(p.id, p.topic, p.access)
				if got != theirs {
					t.Errorf("%v: ACLFile allows %v, mosquitto allows %v", p, got, theirs)
				}
				if got != p.want {
					t.Errorf("%v: ACLFile allows %v, the case expects %v", p, got, p.want)
				}
			}
		})
	}
}

type mosqHarness struct {
	t    *testing.T
	addr string
	log  func() string
	n    atomic.Int64
}

// client connects an MQTT 5.0 client; received gets the topic of every message that arrives.
func (h *mosqHarness) client(id Identity, received chan<- string) *paho.Client {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatalf("dial mosquitto: %v", err)
	}
	cfg := paho.ClientConfig{Conn: conn, PacketTimeout: 10 * time.Second}
	if received != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case received <- pr.Packet.Topic:
			default:
				h.t.Errorf("message on %q dropped: test buffer full", pr.Packet.Topic)
			}
			return true, nil
		}}
	}
	c := paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID: id.ClientID, Username: id.Username, UsernameFlag: id.HasUsername,
		KeepAlive: 30, CleanStart: true,
	})
	if err != nil {
		h.t.Fatalf("connect %q to mosquitto: %v (connack %+v)\n%s", id.ClientID, err, ca, h.log())
	}
	h.t.Cleanup(func() { h.close(c) })
	return c
}

func (h *mosqHarness) close(c *paho.Client) {
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		h.t.Errorf("paho client did not stop within 10s")
	}
}

// decide observes mosquitto's decision for one probe.
func (h *mosqHarness) decide(p aclCase) bool {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch p.access {
	case Write:
		c := h.client(p.id, nil)
		defer h.close(c)
		resp, err := c.Publish(ctx, &paho.Publish{Topic: p.topic, QoS: 1, Payload: []byte("probe")})
		if resp == nil {
			h.t.Fatalf("%v: publish to mosquitto: %v", p, err)
		}
		return resp.ReasonCode < 0x80
	case Read:
		got := make(chan string, 16)
		c := h.client(p.id, got)
		defer h.close(c)
		sentinel := "gh-sentinel/" + p.id.ClientID
		sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
			{Topic: p.topic, QoS: 1}, {Topic: sentinel, QoS: 1},
		}})
		if err != nil && sa == nil {
			h.t.Fatalf("%v: subscribe: %v", p, err)
		}
		w := h.client(Identity{ClientID: fmt.Sprintf("gh-writer-%d", h.n.Add(1)), Username: "gh-writer", HasUsername: true}, nil)
		defer h.close(w)
		for _, topic := range []string{p.topic, sentinel} {
			if _, err := w.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("probe")}); err != nil {
				h.t.Fatalf("%v: writer publish %q: %v", p, topic, err)
			}
		}
		delivered := false
		for {
			select {
			case topic := <-got:
				switch topic {
				case p.topic:
					delivered = true
				case sentinel:
					return delivered
				}
			case <-ctx.Done():
				h.t.Fatalf("%v: sentinel not delivered by mosquitto within 10s: %v\n%s", p, errors.Unwrap(ctx.Err()), h.log())
				return false
			}
		}
	}
	h.t.Fatalf("access %v cannot be observed on mosquitto", p.access)
	return false
}
