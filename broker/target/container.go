package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ContainerFile is a file copied into a container before it starts.
type ContainerFile struct {
	Path    string // absolute path inside the container
	Content []byte
	Mode    int64 // permission bits, e.g. 0o644 (a non-root image user must be able to read it)
}

// ContainerOptions configure a container beyond what an image target string says.
type ContainerOptions struct {
	// Cmd replaces the image's default command (for the gatehouse image: the subcommand and its
	// flags, e.g. broker --listen 0.0.0.0:1883 --allow-anonymous); nil keeps the default.
	Cmd []string
	// Env sets environment variables inside the container.
	Env map[string]string
	// Files are copied into the container before it starts.
	Files []ContainerFile
	// Network is a user-defined Docker network the container joins instead of the default
	// bridge; Aliases are its host names there (other containers dial broker:1883, say).
	Network string
	Aliases []string
	// NoPort marks a container that serves no MQTT port (a simulated fleet): nothing is
	// published on the host and readiness is the image target's log line alone.
	NoPort bool
}

// Container is a container started through testcontainers-go with the lifecycle controls that
// fault scenarios need: SIGKILL, pause, unpause, restart and a cut from its networks. For a broker
// image it is a Running target whose MQTT port is published on the loopback interface of the
// Docker host.
//
// The host port is chosen once and kept: Docker would hand out a new ephemeral port at every
// start, and clients reconnecting after a restart (devices, observers) must find the broker where
// it was. Addr is still read back from Docker after every start and reconnection.
type Container struct {
	c        testcontainers.Container
	cli      *testcontainers.DockerClient
	image    string
	port     string // the MQTT port inside the container, "1883/tcp"; "" without one
	hostPort int    // the port on the Docker host, fixed for the container's life
	wait     wait.Strategy
	creds    [2]string
	hasCreds bool
	logf     func(format string, args ...any)

	// ops serialises lifecycle operations: a scheduled recovery never overlaps a restart or Stop.
	// Lock order: ops before mu.
	ops sync.Mutex

	// mu protects addr and cut.
	mu   sync.Mutex
	addr string
	cut  map[string][]string // networks Disconnect took the container from → its aliases there

	stopOnce sync.Once
	stopErr  error
}

var (
	_ Running   = (*Container)(nil)
	_ Lifecycle = (*Container)(nil)
)

// portAttempts bounds the starts tried when the chosen host port is taken in the meantime.
const portAttempts = 3

// StartContainer starts an image target (see Parse: image:NAME?port=...&log=...) as a container
// with the given options, waits until it is ready and returns it. Ready means: the log line of
// the target, if any, was printed, and (unless NoPort) the broker answers an MQTT CONNECT on its
// published port. The image must be present locally; nothing is pulled.
func StartContainer(ctx context.Context, t Target, o ContainerOptions) (*Container, error) {
	if t.Kind != Image {
		return nil, fmt.Errorf("target %s: not an image target", t.Spec)
	}
	if t.ImagePort == "" && !o.NoPort {
		t.ImagePort = "1883/tcp"
	}
	if o.NoPort {
		t.ImagePort = ""
		if t.ReadyLog == "" {
			return nil, fmt.Errorf("target %s: a container without a port needs a log line that says it is ready", t.Spec)
		}
	}
	SetContainerEnv()
	ctx, cancel := context.WithTimeout(ctx, imageStartTimeout)
	defer cancel()
	if err := imagePresent(ctx, t.Image); err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Spec, err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("target %s: docker daemon: %w", t.Spec, err)
	}
	bindIP, err := publishIP(ctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("target %s: %w", t.Spec, err)
	}
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		c, err := tryContainer(ctx, t, o, cli, bindIP)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !portTaken(err) {
			break
		}
	}
	cli.Close()
	return nil, lastErr
}

// publishIP is the host address the MQTT port is published on: loopback when the Docker daemon
// runs on this machine (nothing else on the network should reach a test broker), every
// interface when the daemon is remote (its loopback would be out of reach).
func publishIP(ctx context.Context) (netip.Addr, error) {
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker provider: %w", err)
	}
	defer p.Close()
	host, err := p.DaemonHost(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker host: %w", err)
	}
	if host == "localhost" {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return a, nil
	}
	return netip.IPv4Unspecified(), nil
}

func portTaken(err error) bool {
	s := err.Error()
	return strings.Contains(s, "address already in use") || strings.Contains(s, "port is already allocated")
}

func tryContainer(ctx context.Context, t Target, o ContainerOptions, cli *testcontainers.DockerClient, bindIP netip.Addr) (*Container, error) {
	c := &Container{cli: cli, image: t.Image, port: t.ImagePort, logf: t.Logf,
		creds: [2]string{t.Username, t.Password}, hasCreds: t.Username != "" || t.Password != ""}
	var strategies []wait.Strategy
	if t.ReadyLog != "" {
		strategies = append(strategies, wait.ForLog(t.ReadyLog).WithStartupTimeout(imageStartTimeout))
	}
	req := testcontainers.ContainerRequest{
		Image: t.Image,
		Cmd:   o.Cmd,
		Env:   o.Env,
	}
	if c.port != "" {
		port, err := network.ParsePort(c.port)
		if err != nil {
			return nil, fmt.Errorf("target %s: port %q: %w", t.Spec, c.port, err)
		}
		if c.hostPort, err = freePort(); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Spec, err)
		}
		binding := network.PortBinding{HostIP: bindIP, HostPort: strconv.Itoa(c.hostPort)}
		req.ExposedPorts = []string{c.port}
		req.HostConfigModifier = func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{port: {binding}}
		}
		strategies = append(strategies, mqttReady{port: c.port, timeout: imageStartTimeout})
	}
	if o.Network != "" {
		req.Networks = []string{o.Network}
		if len(o.Aliases) > 0 {
			req.NetworkAliases = map[string][]string{o.Network: o.Aliases}
		}
	}
	for _, f := range o.Files {
		req.Files = append(req.Files, testcontainers.ContainerFile{
			Reader: bytes.NewReader(f.Content), ContainerFilePath: f.Path, FileMode: f.Mode})
	}
	c.wait = wait.ForAll(strategies...).WithDeadline(imageStartTimeout)
	req.WaitingFor = c.wait
	var logger tclog.Logger = tclog.NewNoopLogger()
	if t.Logf != nil {
		logger = printf(t.Logf)
	}
	tc, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: logger,
	})
	if err != nil {
		msg := ""
		if tc != nil {
			msg = tailLogs(tc, 20)
			_ = tc.Terminate(context.Background())
		}
		if msg != "" {
			return nil, fmt.Errorf("target %s: start container: %w\ncontainer log:\n%s", t.Spec, err, msg)
		}
		return nil, fmt.Errorf("target %s: start container: %w", t.Spec, err)
	}
	c.c = tc
	if err := c.readAddr(ctx); err != nil {
		_ = tc.Terminate(context.Background())
		return nil, fmt.Errorf("target %s: %w", t.Spec, err)
	}
	return c, nil
}

// readAddr reads the published address back from Docker.
func (c *Container) readAddr(ctx context.Context) error {
	if c.port == "" {
		return nil
	}
	host, err := c.c.Host(ctx)
	if err != nil {
		return fmt.Errorf("container host: %w", err)
	}
	p, err := c.c.MappedPort(ctx, c.port)
	if err != nil {
		return fmt.Errorf("container port %s: %w", c.port, err)
	}
	c.mu.Lock()
	c.addr = net.JoinHostPort(host, p.Port())
	c.mu.Unlock()
	return nil
}

// Name says which image runs.
func (c *Container) Name() string { return "image:" + c.image }

// Addr is host:port of the published MQTT port ("" for a container without one).
func (c *Container) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// URL is mqtt://host:port.
func (c *Container) URL() string { return "mqtt://" + c.Addr() }

// TLSConfig is nil: image targets are reached over plain TCP.
func (c *Container) TLSConfig() *tls.Config { return nil }

// Credentials are the ones the target string gave.
func (c *Container) Credentials() (string, string, bool) { return c.creds[0], c.creds[1], c.hasCreds }

// ID is the Docker container ID.
func (c *Container) ID() string { return c.c.GetContainerID() }

// Container returns the testcontainers-go container.
func (c *Container) Container() testcontainers.Container { return c.c }

// Logs returns the container's last n log lines (standard output and error).
func (c *Container) Logs(n int) string { return tailLogs(c.c, n) }

func tailLogs(tc testcontainers.Container, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := tc.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// State says whether the container runs and whether it is paused.
func (c *Container) State(ctx context.Context) (running, paused bool, err error) {
	st, err := c.c.State(ctx)
	if err != nil {
		return false, false, fmt.Errorf("%s: state: %w", c.Name(), err)
	}
	return st.Running, st.Paused, nil
}

// Kill sends SIGKILL, as a crash or a power loss would end the broker: no shutdown, no
// DISCONNECT, nothing flushed that was not already on disk. It returns once the container has
// stopped; Restart starts it again.
func (c *Container) Kill(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if _, err := c.cli.ContainerKill(ctx, c.ID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("%s: kill: %w", c.Name(), err)
	}
	return c.awaitStopped(ctx)
}

// awaitStopped polls until the container no longer runs, at a bounded pace, within 10 s.
func (c *Container) awaitStopped(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.c.State(ctx)
		if err == nil && !st.Running {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%s: still running after the kill: %w", c.Name(), ctx.Err())
		}
	}
}

// Pause freezes every process of the container (the cgroup freezer): connections stay open,
// the kernel still accepts TCP data for them, but nothing is read or answered.
func (c *Container) Pause(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if _, err := c.cli.ContainerPause(ctx, c.ID(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("%s: pause: %w", c.Name(), err)
	}
	return nil
}

// Unpause resumes a paused container.
func (c *Container) Unpause(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if _, err := c.cli.ContainerUnpause(ctx, c.ID(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("%s: unpause: %w", c.Name(), err)
	}
	return nil
}

// restartStopTimeout is how long a running broker gets to shut down cleanly on Restart before
// Docker kills it.
const restartStopTimeout = 10 * time.Second

// Restart stops the container cleanly if it runs (SIGTERM; a paused one is resumed first), or
// takes it as it is after Kill, then starts it again, waits until it is ready and reads its
// published address back from Docker.
func (c *Container) Restart(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	running, paused, err := c.State(ctx)
	if err != nil {
		return err
	}
	if paused {
		if _, err := c.cli.ContainerUnpause(ctx, c.ID(), client.ContainerUnpauseOptions{}); err != nil {
			return fmt.Errorf("%s: unpause before restart: %w", c.Name(), err)
		}
	}
	if running {
		timeout := restartStopTimeout
		if err := c.c.Stop(ctx, &timeout); err != nil {
			return fmt.Errorf("%s: stop: %w", c.Name(), err)
		}
	}
	// Start runs the readiness checks of the first start again: the broker answers CONNECT on
	// the published port before Restart returns. (A container without a port has only its log
	// line, which the first start already printed: Restart returns once its process runs.)
	if err := c.c.Start(ctx); err != nil {
		if msg := tailLogs(c.c, 20); msg != "" {
			return fmt.Errorf("%s: start: %w\ncontainer log:\n%s", c.Name(), err, msg)
		}
		return fmt.Errorf("%s: start: %w", c.Name(), err)
	}
	return c.readAddr(ctx)
}

// Disconnect takes the container off every network it is attached to, remembering its aliases
// for Reconnect. Peers on those networks (device containers) get no FIN and no RST: their
// packets go nowhere, as when a cable is pulled. Docker's port proxy for the published port
// ends with the network, so clients on the host see their connections closed and new ones
// refused.
func (c *Container) Disconnect(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	in, err := c.c.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("%s: inspect: %w", c.Name(), err)
	}
	if len(in.NetworkSettings.Networks) == 0 {
		return fmt.Errorf("%s: attached to no network", c.Name())
	}
	names := make([]string, 0, len(in.NetworkSettings.Networks))
	for name := range in.NetworkSettings.Networks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ep := in.NetworkSettings.Networks[name]
		var aliases []string
		if ep != nil && name != "bridge" {
			aliases = userAliases(ep.Aliases, c.ID())
		}
		if _, err := c.cli.NetworkDisconnect(ctx, name, client.NetworkDisconnectOptions{Container: c.ID(), Force: true}); err != nil {
			return fmt.Errorf("%s: disconnect from network %s: %w", c.Name(), name, err)
		}
		c.mu.Lock()
		if c.cut == nil {
			c.cut = map[string][]string{}
		}
		c.cut[name] = aliases
		c.mu.Unlock()
	}
	return nil
}

// userAliases drops the short container ID Docker adds to every container's aliases by itself.
func userAliases(aliases []string, id string) []string {
	var out []string
	for _, a := range aliases {
		if len(id) >= 12 && a == id[:12] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Reconnect attaches the container again to the networks Disconnect took it from, with the
// same aliases, and (for a broker) waits until it answers on its published port again.
func (c *Container) Reconnect(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	cut := c.cut
	c.cut = nil
	c.mu.Unlock()
	if len(cut) == 0 {
		return fmt.Errorf("%s: not disconnected", c.Name())
	}
	names := make([]string, 0, len(cut))
	for name := range cut {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		opts := client.NetworkConnectOptions{Container: c.ID()}
		if aliases := cut[name]; len(aliases) > 0 {
			opts.EndpointConfig = &network.EndpointSettings{Aliases: aliases}
		}
		if _, err := c.cli.NetworkConnect(ctx, name, opts); err != nil {
			return fmt.Errorf("%s: reconnect to network %s: %w", c.Name(), name, err)
		}
	}
	if c.port == "" {
		return nil
	}
	// Docker publishes the port again with the network; wait until the broker answers there.
	if err := c.wait.WaitUntilReady(ctx, c.c); err != nil {
		return fmt.Errorf("%s: after reconnecting: %w", c.Name(), err)
	}
	return c.readAddr(ctx)
}

// Stop removes the container and its anonymous volumes. It is safe to call twice.
func (c *Container) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.ops.Lock()
		defer c.ops.Unlock()
		var errs []error
		// A frozen broker could not act on the SIGTERM that Terminate sends first.
		if _, paused, err := c.State(ctx); err == nil && paused {
			if _, err := c.cli.ContainerUnpause(ctx, c.ID(), client.ContainerUnpauseOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("unpause: %w", err))
			}
		}
		if err := c.c.Terminate(ctx); err != nil {
			errs = append(errs, fmt.Errorf("terminate: %w", err))
		}
		if err := c.cli.Close(); err != nil {
			errs = append(errs, fmt.Errorf("docker client: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			c.stopErr = fmt.Errorf("target image:%s: %w", c.image, err)
		}
	})
	return c.stopErr
}
