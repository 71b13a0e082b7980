package target

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
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

func startImage(ctx context.Context, t Target) (Running, error) {
	return StartContainer(ctx, t, ContainerOptions{})
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
