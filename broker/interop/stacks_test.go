package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
	"github.com/gatehouse-iot/gatehouse/packet"
)

// message is an application message as a client stack received it.
type message struct {
	Topic    string
	Payload  string
	QoS      byte
	Retained bool
}

// stack is one independent MQTT client implementation, driven the same way by every spec.
type stack struct {
	name      string
	mosquitto bool // needs mosquitto_pub and mosquitto_sub
	// subscribe connects a clean session named id, subscribes to filter at qos and returns once
	// the SUBACK has granted it; what the client receives arrives on the channel.
	subscribe func(b *brokertest.Broker, id, filter string, qos byte) <-chan message
	// publish connects a clean session named id and publishes one message; it returns once the
	// flow is complete (PUBACK, PUBCOMP; QoS 0: once sent).
	publish func(b *brokertest.Broker, id, topic string, qos byte, retain bool, payload string)
}

var stacks = []stack{
	{name: "paho.mqtt.golang 3.1.1", subscribe: pahoSubscriber, publish: pahoPublisher},
	{name: "paho.golang 5.0", subscribe: paho5Subscriber, publish: paho5Publisher},
	{name: "mosquitto 3.1.1", mosquitto: true, subscribe: mosquittoSubscriber("mqttv311"), publish: mosquittoPublisher("mqttv311")},
	{name: "mosquitto 5.0", mosquitto: true, subscribe: mosquittoSubscriber("mqttv5"), publish: mosquittoPublisher("mqttv5")},
}

// next returns the next message on ch, failing the spec after wait.
func next(ch <-chan message, what string) message {
	GinkgoHelper()
	select {
	case m, ok := <-ch:
		if !ok {
			Fail("the subscriber ended while waiting for " + what)
		}
		return m
	case <-time.After(wait):
		Fail(fmt.Sprintf("no message within %s: waiting for %s", wait, what))
	}
	return message{}
}

// within returns the next value on ch, failing the spec after wait.
func within[T any](ch <-chan T, what string) T {
	GinkgoHelper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		Fail(fmt.Sprintf("nothing within %s: waiting for %s", wait, what))
	}
	var zero T
	return zero
}

// marker publishes a QoS 1 message on topic from a client of its own and returns once the broker
// has acknowledged it: a subscriber that then receives the marker has already received every
// message the broker routed to it before, so "nothing else came" is checked without sleeping.
func marker(b *brokertest.Broker, topic string) message {
	GinkgoHelper()
	pahoPublisher(b, "marker", topic, 1, false, "marker")
	return message{Topic: topic, Payload: "marker", QoS: 1}
}

// --- eclipse/paho.mqtt.golang, MQTT 3.1.1 ---

func pahoOptions(brokerURL, id string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetConnectTimeout(wait).SetWriteTimeout(wait).SetKeepAlive(30 * time.Second)
}

// pahoConnect connects and disconnects (with DISCONNECT) when the spec ends.
func pahoConnect(o *mqtt.ClientOptions) mqtt.Client {
	GinkgoHelper()
	c := mqtt.NewClient(o)
	tok := c.Connect()
	Expect(tok.WaitTimeout(wait)).To(BeTrue(), "CONNACK within %s", wait)
	Expect(tok.Error()).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(50)
		}
	})
	return c
}

func fromPaho(m mqtt.Message) message {
	return message{Topic: m.Topic(), Payload: string(m.Payload()), QoS: m.Qos(), Retained: m.Retained()}
}

// collect returns a handler that sends what it receives on ch.
func collect(ch chan message) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) { ch <- fromPaho(m) }
}

// pahoSubscribe subscribes and returns the SUBACK return code.
func pahoSubscribe(c mqtt.Client, filter string, qos byte, ch chan message) byte {
	GinkgoHelper()
	tok := c.Subscribe(filter, qos, collect(ch))
	Expect(tok.WaitTimeout(wait)).To(BeTrue(), "SUBACK within %s", wait)
	code, ok := tok.(*mqtt.SubscribeToken).Result()[filter]
	Expect(ok).To(BeTrue(), "SUBACK for %s", filter)
	return code
}

func pahoSubscriber(b *brokertest.Broker, id, filter string, qos byte) <-chan message {
	GinkgoHelper()
	ch := make(chan message, 256)
	c := pahoConnect(pahoOptions(b.URL(), id))
	Expect(pahoSubscribe(c, filter, qos, ch)).To(Equal(qos))
	return ch
}

func pahoPublish(c mqtt.Client, topic string, qos byte, retain bool, payload string) {
	GinkgoHelper()
	tok := c.Publish(topic, qos, retain, payload)
	Expect(tok.WaitTimeout(wait)).To(BeTrue(), "publish flow within %s", wait)
	Expect(tok.Error()).NotTo(HaveOccurred())
}

func pahoPublisher(b *brokertest.Broker, id, topic string, qos byte, retain bool, payload string) {
	GinkgoHelper()
	c := pahoConnect(pahoOptions(b.URL(), id))
	pahoPublish(c, topic, qos, retain, payload)
	c.Disconnect(50)
}

// --- eclipse/paho.golang, MQTT 5.0 ---

type client5 struct {
	*paho5.Client
	msgs chan message

	mu  sync.Mutex // protects dup
	dup []bool     // the DUP flag of every PUBLISH received, in order
}

// dups returns the DUP flags of the PUBLISH packets received so far.
func (c *client5) dups() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.dup...)
}

// dial5 connects a paho.golang client to addr with cp. On success the client disconnects (with
// DISCONNECT 0x00) when the spec ends; on a refusal it returns the CONNACK and the error.
func dial5(addr string, cp *paho5.Connect) (*client5, *paho5.Connack, error) {
	GinkgoHelper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	Expect(err).NotTo(HaveOccurred())
	c := &client5{msgs: make(chan message, 256)}
	c.Client = paho5.NewClient(paho5.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			p := pr.Packet
			c.mu.Lock()
			c.dup = append(c.dup, p.Duplicate())
			c.mu.Unlock()
			c.msgs <- message{Topic: p.Topic, Payload: string(p.Payload), QoS: p.QoS, Retained: p.Retain}
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		return nil, ack, err
	}
	DeferCleanup(c.close)
	return c, ack, nil
}

func connect5(addr string, cp *paho5.Connect) *client5 {
	GinkgoHelper()
	c, ack, err := dial5(addr, cp)
	Expect(err).NotTo(HaveOccurred(), "CONNACK %+v", ack)
	return c
}

// close disconnects (when still connected) and waits for the client's goroutines to end.
func (c *client5) close() {
	_ = c.Disconnect(&paho5.Disconnect{ReasonCode: 0})
	select {
	case <-c.Done():
	case <-time.After(wait):
		Fail("paho.golang client did not shut down")
	}
}

func (c *client5) subscribe(filter string, qos byte) *paho5.Suback {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: filter, QoS: qos}}})
	Expect(ack).NotTo(BeNil(), "SUBACK: %v", err)
	return ack
}

func (c *client5) publish(topic string, qos byte, retain bool, payload string) (*paho5.PublishResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)})
}

// paho5Connect is a clean-start CONNECT for id.
func paho5Connect(id string) *paho5.Connect { return &paho5.Connect{ClientID: id, CleanStart: true} }

func paho5Subscriber(b *brokertest.Broker, id, filter string, qos byte) <-chan message {
	GinkgoHelper()
	c := connect5(b.Addr(), &paho5.Connect{ClientID: id, CleanStart: true})
	Expect(c.subscribe(filter, qos).Reasons).To(Equal([]byte{qos}))
	return c.msgs
}

func paho5Publisher(b *brokertest.Broker, id, topic string, qos byte, retain bool, payload string) {
	GinkgoHelper()
	c := connect5(b.Addr(), &paho5.Connect{ClientID: id, CleanStart: true})
	_, err := c.publish(topic, qos, retain, payload)
	Expect(err).NotTo(HaveOccurred())
	c.close()
}

// --- Debian's mosquitto_sub and mosquitto_pub ---

// subFormat prints one line per message: topic, QoS, retain flag, payload.
const subFormat = "%t\t%q\t%r\t%p"

func hostPort(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	return []string{"-h", host, "-p", port}
}

// lockedBuffer collects a process's standard error.
type lockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a mosquitto_sub process; the messages it prints arrive on msgs, closed when it exits.
type proc struct {
	cmd    *exec.Cmd
	msgs   chan message
	other  chan string // lines that are not messages
	stderr *lockedBuffer
	eof    chan struct{}
	once   sync.Once
	err    error
}

// startSub starts mosquitto_sub with args (-F subFormat is added) and stops it when the spec ends.
func startSub(args ...string) *proc {
	GinkgoHelper()
	requireMosquitto()
	p := &proc{msgs: make(chan message, 256), other: make(chan string, 64), stderr: &lockedBuffer{}, eof: make(chan struct{})}
	p.cmd = exec.Command(mosquittoSub, append(args, "-F", subFormat)...)
	out, err := p.cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	p.cmd.Stderr = p.stderr
	Expect(p.cmd.Start()).To(Succeed())
	go func() {
		defer close(p.eof)
		defer close(p.msgs)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), "\t", 4)
			if len(f) != 4 {
				select {
				case p.other <- sc.Text():
				default:
				}
				continue
			}
			q, _ := strconv.Atoi(f[1])
			p.msgs <- message{Topic: f[0], QoS: byte(q), Retained: f[2] == "1", Payload: f[3]}
		}
	}()
	DeferCleanup(func() { _ = p.stop(syscall.SIGKILL) })
	return p
}

// stop signals the process and waits for it to exit; it returns how it ended.
func (p *proc) stop(sig syscall.Signal) error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(sig)
		for {
			select {
			case <-p.msgs: // keep the reader going until the pipe closes
				continue
			case <-p.eof:
			case <-time.After(wait):
				_ = p.cmd.Process.Kill()
				<-p.eof
			}
			break
		}
		p.err = p.cmd.Wait()
	})
	return p.err
}

// wait waits for the process to exit by itself.
func (p *proc) wait() error {
	GinkgoHelper()
	Eventually(p.eof).WithTimeout(wait).Should(BeClosed(), "mosquitto_sub exits; stderr: %s", p.stderr)
	return p.stop(0)
}

func mosquittoSubscriber(version string) func(b *brokertest.Broker, id, filter string, qos byte) <-chan message {
	return func(b *brokertest.Broker, id, filter string, qos byte) <-chan message {
		GinkgoHelper()
		return subscribeProc(b, b.Addr(), id, []string{"-V", version, "-t", filter, "-q", strconv.Itoa(int(qos))}).msgs
	}
}

// subscribeProc starts mosquitto_sub as id on addr and returns once the broker has sent it SUBACK.
func subscribeProc(b *brokertest.Broker, addr, id string, args []string) *proc {
	GinkgoHelper()
	from := b.Trace().Next()
	p := startSub(append(append(hostPort(addr), "-i", id), args...)...)
	_, err := b.Trace().WaitAfter(from, wait, brokertest.All(brokertest.Client(id), brokertest.Out(packet.TypeSuback)))
	Expect(err).NotTo(HaveOccurred(), "mosquitto_sub %s subscribed; stderr: %s", id, p.stderr)
	return p
}

// runPub runs mosquitto_pub to completion and returns what it printed and its exit status.
func runPub(args ...string) (string, int) {
	GinkgoHelper()
	requireMosquitto()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, mosquittoPub, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	Fail(fmt.Sprintf("mosquitto_pub %v: %v: %s", args, err, out))
	return "", -1
}

func pubArgs(addr, version, id, topic string, qos byte, retain bool, payload string) []string {
	args := append(hostPort(addr), "-V", version, "-i", id, "-t", topic, "-q", strconv.Itoa(int(qos)))
	if retain {
		args = append(args, "-r")
	}
	if payload == "" {
		return append(args, "-n")
	}
	return append(args, "-m", payload)
}

func mosquittoPublisher(version string) func(b *brokertest.Broker, id, topic string, qos byte, retain bool, payload string) {
	return func(b *brokertest.Broker, id, topic string, qos byte, retain bool, payload string) {
		GinkgoHelper()
		out, code := runPub(pubArgs(b.Addr(), version, id, topic, qos, retain, payload)...)
		Expect(code).To(BeZero(), "mosquitto_pub: %s", out)
	}
}

// --- a connection the spec closes itself ---

// droppable returns paho options whose network connection the spec can close without DISCONNECT,
// as a power cut would.
func droppable(o *mqtt.ClientOptions) (*mqtt.ClientOptions, func()) {
	var (
		mu sync.Mutex // protects nc
		nc net.Conn
	)
	o.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", u.Host, wait)
		mu.Lock()
		nc = c
		mu.Unlock()
		return c, err
	})
	return o, func() {
		mu.Lock()
		defer mu.Unlock()
		Expect(nc).NotTo(BeNil())
		_ = nc.Close()
	}
}

// tlsPaho returns paho options for a TLS listener.
func tlsPaho(addr, id string, cfg *tls.Config) *mqtt.ClientOptions {
	return pahoOptions("ssl://"+addr, id).SetTLSConfig(cfg)
}
