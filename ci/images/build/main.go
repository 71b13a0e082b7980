// Command build builds Gatehouse's container images on the local Docker daemon without pulling
// anything; `make images` runs it. With no argument it builds every image under its default tag
// (gatehouse:dev, gatehouse-mosquitto:dev); an argument NAME or NAME=TAG builds one image, e.g.
//
//	go run ./ci/images/build gatehouse=registry.example/gatehouse:1.4
//
// An image whose build context has not changed since the last build is left as it is unless
// -force is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-iot/gatehouse/ci/images"
)

func main() {
	force := flag.Bool("force", false, "build even when the image is up to date")
	verbose := flag.Bool("v", false, "show the output of go build and docker build")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: build [-force] [-v] [NAME[=TAG]...]\nimages: gatehouse (%s), gatehouse-mosquitto (%s)\n",
			images.GatehouseTag, images.MosquittoTag)
		flag.PrintDefaults()
	}
	flag.Parse()

	type job struct {
		img images.Image
		tag string
	}
	var jobs []job
	for _, arg := range flag.Args() {
		name, tag, _ := strings.Cut(arg, "=")
		img, err := images.ByName(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			os.Exit(2)
		}
		jobs = append(jobs, job{img, tag})
	}
	if len(jobs) == 0 {
		for _, img := range images.All() {
			jobs = append(jobs, job{img, img.Tag})
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	o := images.Options{Force: *force, Version: os.Getenv("VERSION"), Commit: os.Getenv("COMMIT")}
	if *verbose {
		o.Log = os.Stderr
	}
	for _, j := range jobs {
		res, err := images.Ensure(ctx, j.img, j.tag, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			os.Exit(1)
		}
		fmt.Println(res)
	}
}
