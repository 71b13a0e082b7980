package target

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/gatehouse-iot/gatehouse/packet"
)

// probeTimeout bounds one MQTT probe: the dial, the CONNECT and the CONNACK.
const probeTimeout = time.Second

// Probe connects to addr, sends an MQTT 3.1.1 CONNECT with a fresh client identifier and a clean
// session, and waits for the CONNACK, bounded by ctx and by one second. Any CONNACK, even one
// refusing the client, means a broker is serving; it is returned. A broker that accepts the TCP
// connection but never answers (paused, or a port proxy in front of nothing) gives an error.
func Probe(ctx context.Context, addr string) (*packet.Connack, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", addr, err)
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	var id [8]byte
	_, _ = rand.Read(id[:])
	connect := &packet.Connect{ClientID: "gatehouse-probe-" + hex.EncodeToString(id[:]), CleanStart: true, KeepAlive: 10}
	if _, err := nc.Write(packet.Build(connect, packet.V311)); err != nil {
		return nil, fmt.Errorf("probe %s: write CONNECT: %w", addr, err)
	}
	rd := packet.NewReader(bufio.NewReader(nc), 0)
	rd.SetVersion(packet.V311)
	p, err := rd.ReadPacket()
	if err != nil {
		return nil, fmt.Errorf("probe %s: no CONNACK: %w", addr, err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		return nil, fmt.Errorf("probe %s: got %s where CONNACK was due", addr, p.Type())
	}
	// Leave politely so that the broker logs no lost connection and publishes nothing.
	_, _ = nc.Write(packet.Build(&packet.Disconnect{}, packet.V311))
	return ack, nil
}

// mqttReady is a testcontainers-go wait strategy: the broker in the container answers a CONNECT
// on its mapped port. A listening port is not enough, because Docker's port proxy accepts
// connections before the broker inside listens; a log line is not enough either, because some
// brokers buffer their log when it goes to a pipe (mosquitto does). The probe needs no shell in
// the image, so FROM scratch images work.
type mqttReady struct {
	port    string // the MQTT port inside the container, "1883/tcp"
	timeout time.Duration
}

var _ wait.StrategyTimeout = mqttReady{}

func (s mqttReady) Timeout() *time.Duration { return &s.timeout }

func (s mqttReady) WaitUntilReady(ctx context.Context, t wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if st, err := t.State(ctx); err == nil && !st.Running {
			return fmt.Errorf("the container stopped (%s, exit code %d) before its broker answered on %s", st.Status, st.ExitCode, s.port)
		}
		host, err := t.Host(ctx)
		if err == nil {
			var port interface{ Port() string }
			if port, err = t.MappedPort(ctx, s.port); err == nil {
				if _, err = Probe(ctx, net.JoinHostPort(host, port.Port())); err == nil {
					return nil
				}
			}
		}
		last = err
		select {
		case <-tick.C:
		case <-ctx.Done():
			if last == nil {
				last = errors.New("no attempt finished")
			}
			return fmt.Errorf("no CONNACK on %s within %s (last attempt: %w)", s.port, s.timeout, last)
		}
	}
}
