package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// imageStartTimeout bounds how long a container may take to accept connections.
const imageStartTimeout = 60 * time.Second

// SetContainerEnv sets the environment testcontainers-go needs on a machine without a registry
// and with containers reached on loopback, unless the caller already chose values: no reaper
// container (it would have to be pulled) and 127.0.0.1 as the containers' host.
func SetContainerEnv() {
	for k, v := range map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"} {
		if _, ok := os.LookupEnv(k); !ok {
			_ = os.Setenv(k, v)
		}
	}
}

// container is a broker image started through testcontainers-go.
type container struct {
	c          testcontainers.Container
	image      string
	addr       string
	user, pass string
	hasCreds   bool

	stopOnce sync.Once
	stopErr  error
}

func startImage(ctx context.Context, t Target) (Running, error) {
	SetContainerEnv()
	ctx, cancel := context.WithTimeout(ctx, imageStartTimeout)
	defer cancel()
	if err := imagePresent(ctx, t.Image); err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Spec, err)
	}
	strategy := wait.Strategy(wait.ForListeningPort(t.ImagePort).
		// Broker images are often FROM scratch: there is no shell for the check inside.
		SkipInternalCheck().
		WithStartupTimeout(imageStartTimeout))
	if t.ReadyLog != "" {
		strategy = wait.ForAll(strategy, wait.ForLog(t.ReadyLog).WithStartupTimeout(imageStartTimeout))
	}
	var logger tclog.Logger = tclog.NewNoopLogger()
	if t.Logf != nil {
		logger = printf(t.Logf)
	}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        t.Image,
			ExposedPorts: []string{t.ImagePort},
			WaitingFor:   strategy,
		},
		Started: true,
		Logger:  logger,
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("target %s: start container: %w", t.Spec, err)
	}
	host, err := c.Host(ctx)
	if err == nil {
		var port interface{ Port() string }
		port, err = c.MappedPort(ctx, t.ImagePort)
		if err == nil {
			r := &container{c: c, image: t.Image, addr: net.JoinHostPort(host, port.Port()),
				user: t.Username, pass: t.Password, hasCreds: t.Username != "" || t.Password != ""}
			return r, nil
		}
	}
	_ = c.Terminate(context.Background())
	return nil, fmt.Errorf("target %s: container address: %w", t.Spec, err)
}

// printf adapts a Logf function to the logger testcontainers-go takes.
type printf func(format string, args ...any)

func (f printf) Printf(format string, args ...any) { f(format, args...) }

// imagePresent checks that the image is in the local Docker daemon, so that starting it never
// reaches for a registry.
func imagePresent(ctx context.Context, image string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker daemon: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %q is not present in the local Docker daemon (gatehouse never pulls; build or load it first): %w", image, err)
	}
	return nil
}

func (c *container) Name() string                        { return "image:" + c.image }
func (c *container) Addr() string                        { return c.addr }
func (c *container) URL() string                         { return "mqtt://" + c.addr }
func (c *container) TLSConfig() *tls.Config              { return nil }
func (c *container) Credentials() (string, string, bool) { return c.user, c.pass, c.hasCreds }

// Container returns the testcontainers-go container, for lifecycle controls.
func (c *container) Container() testcontainers.Container { return c.c }

func (c *container) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		if err := c.c.Terminate(ctx); err != nil {
			c.stopErr = fmt.Errorf("target image:%s: terminate: %w", c.image, err)
		}
	})
	return c.stopErr
}
