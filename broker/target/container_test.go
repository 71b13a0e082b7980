package target_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/ci/images/imagestest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// startContainer starts an image target with options and removes it when the test ends.
func startContainer(t *testing.T, spec string, o target.ContainerOptions) *target.Container {
	t.Helper()
	tg, err := target.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	tg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := target.StartContainer(ctx, tg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return c
}

// answers probes the broker and fails the test when it does not accept an MQTT CONNECT.
func answers(t *testing.T, c *target.Container, when string) {
	t.Helper()
	ack, err := target.Probe(context.Background(), c.Addr())
	if err != nil {
		t.Fatalf("%s: the broker does not answer: %v\ncontainer log:\n%s", when, err, c.Logs(20))
	}
	if ack.Code != packet.ConnAccepted {
		t.Fatalf("%s: CONNACK %v, want accepted", when, ack.Code)
	}
}

// silent fails the test when the broker still answers an MQTT CONNECT.
func silent(t *testing.T, c *target.Container, when string) error {
	t.Helper()
	ack, err := target.Probe(context.Background(), c.Addr())
	if err == nil {
		t.Fatalf("%s: the broker still answers CONNECT (CONNACK %v)", when, ack.Code)
	}
	return err
}

// TestContainerLifecycle drives the reference broker image through every control and checks
// each with a real MQTT exchange on the published port.
func TestContainerLifecycle(t *testing.T) {
	img := imagestest.Gatehouse(t)
	c := startContainer(t, "image:"+img, target.ContainerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	addr := c.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "1883" {
		t.Fatalf("Addr() = %q, want a free port on 127.0.0.1", addr)
	}
	if c.URL() != "mqtt://"+addr {
		t.Fatalf("URL() = %q", c.URL())
	}
	answers(t, c, "after start")

	t.Run("kill", func(t *testing.T) {
		if err := c.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		if running, _, err := c.State(ctx); err != nil || running {
			t.Fatalf("after SIGKILL: running=%v err=%v", running, err)
		}
		silent(t, c, "after SIGKILL")
		if err := c.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Addr() != addr {
			t.Fatalf("after the restart the broker is at %s, was at %s: clients could not find it", c.Addr(), addr)
		}
		answers(t, c, "after the restart")
	})

	t.Run("restart while running", func(t *testing.T) {
		if err := c.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Addr() != addr {
			t.Fatalf("after the restart the broker is at %s, was at %s", c.Addr(), addr)
		}
		answers(t, c, "after the restart")
	})

	t.Run("pause", func(t *testing.T) {
		if err := c.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		if _, paused, err := c.State(ctx); err != nil || !paused {
			t.Fatalf("after pause: paused=%v err=%v", paused, err)
		}
		// The port stays open: the TCP connection is accepted, the CONNECT never answered.
		err := silent(t, c, "while paused")
		if !strings.Contains(err.Error(), "no CONNACK") {
			t.Fatalf("while paused: %v, want a connection that is accepted but never answered", err)
		}
		if err := c.Unpause(ctx); err != nil {
			t.Fatal(err)
		}
		answers(t, c, "after unpause")
	})

	t.Run("disconnect", func(t *testing.T) {
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		silent(t, c, "while disconnected")
		if err := c.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
		if c.Addr() != addr {
			t.Fatalf("after reconnecting the broker is at %s, was at %s", c.Addr(), addr)
		}
		answers(t, c, "after reconnecting")
		if err := c.Reconnect(ctx); err == nil {
			t.Fatal("a second Reconnect succeeded; want an error saying the container is not disconnected")
		}
	})
}

// TestImageTargetHasLifecycle: the Running of an image target is the Container, so that callers
// holding a target.Running reach the controls.
func TestImageTargetHasLifecycle(t *testing.T) {
	img := imagestest.Gatehouse(t)
	r := start(t, "image:"+img)
	if _, ok := r.(target.Lifecycle); !ok {
		t.Fatalf("%T does not implement target.Lifecycle", r)
	}
	if _, ok := r.(*target.Container); !ok {
		t.Fatalf("%T is not a *target.Container", r)
	}
	if code := connect(t, r); code != packet.ConnAccepted {
		t.Fatalf("CONNACK %v", code)
	}
}

// TestContainerThatExits: a broker whose command fails says so, with its log, instead of
// waiting out the start-up timeout.
func TestContainerThatExits(t *testing.T) {
	img := imagestest.Gatehouse(t)
	tg, _ := target.Parse("image:" + img)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := target.StartContainer(ctx, tg, target.ContainerOptions{Cmd: []string{"broker", "--no-such-flag"}})
	if err == nil {
		t.Fatal("a container whose broker exits at once started")
	}
	// The exit is noticed as such (not as a start-up timeout), and the log says why.
	for _, want := range []string{"exit code", "no-such-flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to mention %q", err, want)
		}
	}
}

// TestContainerWithoutPortNeedsALogLine: a container without an MQTT port can only be awaited
// through a log line.
func TestContainerWithoutPortNeedsALogLine(t *testing.T) {
	tg, _ := target.Parse("image:gatehouse:dev")
	_, err := target.StartContainer(context.Background(), tg, target.ContainerOptions{NoPort: true})
	if err == nil || !strings.Contains(err.Error(), "needs a log line") {
		t.Fatalf("err = %v", err)
	}
}
