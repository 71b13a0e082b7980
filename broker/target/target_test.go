package target_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/target"
	"github.com/gatehouse-iot/gatehouse/internal/testenv"
	"github.com/gatehouse-iot/gatehouse/packet"
)

func TestMain(m *testing.M) {
	target.SetContainerEnv()
	goleak.VerifyTestMain(m)
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want target.Target
	}{
		{"embedded", target.Target{Kind: target.Embedded, Spec: "embedded", Transport: "tcp"}},
		{"embedded?fault=drop-puback&fault=no-dup@dev1", target.Target{Kind: target.Embedded, Spec: "embedded?fault=drop-puback&fault=no-dup@dev1", Transport: "tcp",
			Faults: []broker.FaultRule{{Fault: broker.FaultDropPuback}, {Fault: broker.FaultNoDup, ClientID: "dev1"}}}},
		{"embedded?fault=no-will,no-retain&transport=ws", target.Target{Kind: target.Embedded, Spec: "embedded?fault=no-will,no-retain&transport=ws", Transport: "ws",
			Faults: []broker.FaultRule{{Fault: broker.FaultNoWill}, {Fault: broker.FaultNoRetain}}}},
		{"mosquitto", target.Target{Kind: target.Mosquitto, Spec: "mosquitto", Transport: "tcp"}},
		{"mosquitto?bin=/opt/m/mosquitto", target.Target{Kind: target.Mosquitto, Spec: "mosquitto?bin=/opt/m/mosquitto", Transport: "tcp", MosquittoBin: "/opt/m/mosquitto"}},
		{"image:registry.local/broker:1.2", target.Target{Kind: target.Image, Spec: "image:registry.local/broker:1.2", Image: "registry.local/broker:1.2", ImagePort: "1883/tcp", Transport: "tcp"}},
		{"image:b?port=8883&log=ready", target.Target{Kind: target.Image, Spec: "image:b?port=8883&log=ready", Image: "b", ImagePort: "8883/tcp", ReadyLog: "ready", Transport: "tcp"}},
		{"mqtt://gate:s3cret@10.0.0.5:1883", target.Target{Kind: target.Remote, Spec: "mqtt://10.0.0.5:1883", URL: "mqtt://10.0.0.5:1883", Username: "gate", Password: "s3cret"}},
		{"mqtts://broker.example:8883", target.Target{Kind: target.Remote, Spec: "mqtts://broker.example:8883", URL: "mqtts://broker.example:8883"}},
		{"wss://broker.example:443/mqtt", target.Target{Kind: target.Remote, Spec: "wss://broker.example:443/mqtt", URL: "wss://broker.example:443/mqtt"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := target.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrorsNameTheProblem(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"mosquito", `unknown target "mosquito"`},
		{"embedded?fault=drop-everything", `unknown fault mode "drop-everything"`},
		{"embedded?colour=red", `unknown option "colour" for embedded`},
		{"embedded?deny=a/%23/b", "deny"},
		{"mosquitto?deny=a", `unknown option "deny" for mosquitto`},
		{"embedded?transport=quic", `transport "quic": want tcp or ws`},
		{"image:", "image name missing"},
		{"image:b?port=http", `port "http": want a TCP port number`},
		{"http://host:80", `unknown scheme "http"`},
		{"mqtt://host", "want host:port"},
		{"mqtt://u:secret@host", "xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := target.Parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %v, want it to mention %q", tt.in, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// connect speaks a minimal MQTT 3.1.1 exchange with a running broker: CONNECT, then CONNACK.
func connect(t *testing.T, r target.Running) packet.ReasonCode {
	t.Helper()
	u, err := url.Parse(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	var nc net.Conn
	switch u.Scheme {
	case "mqtt":
		nc, err = net.DialTimeout("tcp", r.Addr(), 5*time.Second)
	case "ws":
		var ws *websocket.Conn
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
		ws, _, err = d.Dial(r.URL(), nil)
		if err == nil {
			defer ws.Close()
			if err := ws.WriteMessage(websocket.BinaryMessage, packet.Build(&packet.Connect{ClientID: "target-test", CleanStart: true}, packet.V311)); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			p, _, err := packet.Decode(msg, packet.V311, 0)
			if err != nil {
				t.Fatal(err)
			}
			return p.(*packet.Connack).Code
		}
	default:
		t.Fatalf("unexpected URL %s", r.URL())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(packet.Build(&packet.Connect{ClientID: "target-test", CleanStart: true}, packet.V311)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rd := packet.NewReader(bufio.NewReader(nc), 0)
	rd.SetVersion(packet.V311)
	p, err := rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		t.Fatalf("got %s, want CONNACK", p.Type())
	}
	return ack.Code
}

func start(t *testing.T, spec string) target.Running {
	t.Helper()
	tg, err := target.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	tg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := tg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := r.Stop(ctx); err != nil {
			t.Errorf("second stop: %v", err)
		}
	})
	return r
}

func TestEmbedded(t *testing.T) {
	for _, spec := range []string{"embedded", "embedded?transport=ws"} {
		t.Run(spec, func(t *testing.T) {
			r := start(t, spec)
			if !strings.HasPrefix(r.Addr(), "127.0.0.1:") || strings.HasSuffix(r.Addr(), ":1883") {
				t.Fatalf("Addr() = %q, want a free loopback port", r.Addr())
			}
			if code := connect(t, r); code != packet.ConnAccepted {
				t.Fatalf("CONNACK %v", code)
			}
			if _, ok := r.(target.Reference); !ok {
				t.Fatal("an embedded target does not give access to the reference broker")
			}
		})
	}
}

func TestEmbeddedListensOnTCPAndWebSocket(t *testing.T) {
	r := start(t, "embedded")
	ep, ok := r.(target.Endpoints)
	if !ok {
		t.Fatal("an embedded target does not list its endpoints")
	}
	urls := ep.Endpoints()
	if urls["tcp"] != r.URL() || !strings.HasPrefix(urls["ws"], "ws://127.0.0.1:") {
		t.Fatalf("Endpoints() = %v (URL %s)", urls, r.URL())
	}
	if code := connect(t, wsOnly{r, urls["ws"]}); code != packet.ConnAccepted {
		t.Fatalf("CONNACK over WebSocket %v", code)
	}
}

// wsOnly presents a running broker by its WebSocket URL.
type wsOnly struct {
	target.Running
	url string
}

func (w wsOnly) URL() string { return w.url }

func TestEmbeddedDeniesTopics(t *testing.T) {
	r := start(t, "embedded?deny=gatehouse/denied/%23")
	nc, err := net.DialTimeout("tcp", r.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, p := range []packet.Packet{
		&packet.Connect{ClientID: "deny-test", CleanStart: true},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "gatehouse/#"}}},
		&packet.Publish{Topic: "gatehouse/denied/x", Payload: []byte("no")},
		&packet.Publish{Topic: "gatehouse/allowed", Payload: []byte("yes")},
	} {
		if _, err := nc.Write(packet.Build(p, packet.V311)); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rd := packet.NewReader(bufio.NewReader(nc), 0)
	rd.SetVersion(packet.V311)
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if pub, ok := p.(*packet.Publish); ok {
			if pub.Topic != "gatehouse/allowed" {
				t.Fatalf("received %q on a denied topic", pub.Topic)
			}
			return
		}
	}
}

func TestEmbeddedNamesItsFaults(t *testing.T) {
	r := start(t, "embedded?fault=drop-puback&fault=no-will@gate-1")
	if got, want := r.Name(), "embedded reference broker (faults: drop-puback, no-will@gate-1)"; got != want {
		t.Fatalf("Name() = %q, want %q", got, want)
	}
}

func TestMosquitto(t *testing.T) {
	testenv.Mosquitto(t)
	r := start(t, "mosquitto")
	if !strings.HasPrefix(r.Name(), "mosquitto 2.") {
		t.Fatalf("Name() = %q, want mosquitto and its version", r.Name())
	}
	if code := connect(t, r); code != packet.ConnAccepted {
		t.Fatalf("CONNACK %v", code)
	}
}

func TestMosquittoStopEndsTheProcess(t *testing.T) {
	testenv.Mosquitto(t)
	tg, _ := target.Parse("mosquitto")
	r, err := tg.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addr := r.Addr()
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", addr)
	}
}

func TestMosquittoMissingBinary(t *testing.T) {
	tg, _ := target.Parse("mosquitto?bin=" + filepath.Join(t.TempDir(), "no-such-mosquitto"))
	_, err := tg.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no-such-mosquitto") {
		t.Fatalf("err = %v, want it to name the missing binary", err)
	}
}

func TestRemote(t *testing.T) {
	ref := start(t, "embedded")
	r := start(t, "mqtt://gate:pw@"+ref.Addr())
	if r.Addr() != ref.Addr() || r.URL() != "mqtt://"+ref.Addr() {
		t.Fatalf("Addr/URL = %s %s", r.Addr(), r.URL())
	}
	if u, p, ok := r.Credentials(); !ok || u != "gate" || p != "pw" {
		t.Fatalf("Credentials() = %q %q %v", u, p, ok)
	}
	if code := connect(t, r); code != packet.ConnAccepted {
		t.Fatalf("CONNACK %v", code)
	}
}

func TestRemoteNotListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tg, _ := target.Parse("mqtt://" + addr)
	if _, err := tg.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "does not accept connections") {
		t.Fatalf("err = %v", err)
	}
}

func TestTLSOptions(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts target.TLSOptions
		want string
	}{
		{target.TLSOptions{CAFile: filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{target.TLSOptions{CAFile: notPEM}, "no PEM certificate"},
		{target.TLSOptions{CertFile: "c.pem"}, "needs both a cert file and a key file"},
		{target.TLSOptions{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}, "c.pem"},
	}
	for _, tt := range tests {
		if _, err := tt.opts.Config(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want it to mention %q", tt.opts, err, tt.want)
		}
	}
	cfg, err := target.TLSOptions{Insecure: true, ServerName: "broker"}.Config()
	if err != nil || !cfg.InsecureSkipVerify || cfg.ServerName != "broker" || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("Config() = %+v, %v", cfg, err)
	}
}

func TestPlainURLRefusesTLSOptions(t *testing.T) {
	ref := start(t, "embedded")
	tg, _ := target.Parse("mqtt://" + ref.Addr())
	tg.TLS.Insecure = true
	if _, err := tg.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "use mqtts://") {
		t.Fatalf("err = %v", err)
	}
}

// TestImage builds a FROM scratch image holding a static reference broker, then starts it as an
// image:NAME target through testcontainers-go. Nothing is pulled.
func TestImage(t *testing.T) {
	testenv.Docker(t)
	docker := testenv.Tool(t, "docker", "apt-get install -y docker.io")
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "broker"), "./internal/imagebroker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the broker binary: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY broker /broker\nEXPOSE 1883\nENTRYPOINT [\"/broker\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o600); err != nil {
		t.Fatal(err)
	}
	tag := "gatehouse-target-test:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000000")
	tag = strings.ReplaceAll(tag, ".", "")
	if out, err := exec.Command(docker, "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "rmi", "-f", tag).Run() })

	r := start(t, "image:"+tag+"?log=running")
	if r.Name() != "image:"+tag {
		t.Fatalf("Name() = %q", r.Name())
	}
	if code := connect(t, r); code != packet.ConnAccepted {
		t.Fatalf("CONNACK %v", code)
	}
}

func TestImageNotPresentIsNotPulled(t *testing.T) {
	testenv.Docker(t)
	tg, _ := target.Parse("image:gatehouse-no-such-image:never")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := tg.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "not present in the local Docker daemon") {
		t.Fatalf("err = %v", err)
	}
}
