// Command mochibroker runs mochi-mqtt with its default settings on one TCP listener, so that the
// broker benchmark can start it as a fresh process beside the reference broker and mosquitto.
//
// It prints "listening ADDR" on standard output once bound and stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "TCP listener `ADDR`")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "mochibroker:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	// Default options, as a user embedding mochi would start it; only the logs are silenced so
	// that logging does not count against it.
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return fmt.Errorf("allow hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("listener %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Printf("listening %s\n", tcp.Address())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
