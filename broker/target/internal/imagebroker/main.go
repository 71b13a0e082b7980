// Command imagebroker runs the reference broker on 0.0.0.0:1883 with anonymous clients allowed
// until SIGTERM or SIGINT. Built as a static binary into a FROM scratch image, it is the container
// that the tests of package target start through testcontainers-go, without any registry.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse-iot/gatehouse/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b, err := broker.New(broker.Config{
		AllowAnonymous: true,
		Listeners:      []broker.Listener{{Kind: broker.TCP, Addr: "0.0.0.0:1883"}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebroker:", err)
		os.Exit(1)
	}
	if err := b.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "imagebroker:", err)
		os.Exit(1)
	}
	fmt.Println("gatehouse reference broker running on :1883")
	<-ctx.Done()
	if err := b.Shutdown(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "imagebroker:", err)
		os.Exit(1)
	}
}
