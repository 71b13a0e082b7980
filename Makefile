# Gatehouse — the entry point for people and CI alike.
#   make run    the main job on embedded defaults: reference broker in process, default fleet,
#               default scenario; prints a summary and the report's path
#   make test   every test (race detector on), fuzz smoke, simulated HIL bench, cross-builds
# See README.md for the rest.

SHELL := /bin/bash
GO ?= go
PKGS ?= ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TEST_TIMEOUT ?= 20m
FUZZTIME ?= 60s
BENCHTIME ?= 1s
BENCH_OUT ?= bench-results
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCH ?= fixtures/benches/sim.yaml
REPORT_DIR ?= gatehouse-report

# testcontainers-go: no registry to pull its reaper from, and containers are reached on loopback.
export TESTCONTAINERS_RYUK_DISABLED ?= true
export TESTCONTAINERS_HOST_OVERRIDE ?= 127.0.0.1

.PHONY: all build run test test-go test-alloc cross fuzz bench lint generate tidy-check hil conformance \
        images bench-fleet bench-broker soak clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gatehouse ./cmd/gatehouse

run:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/gatehouse run --report-dir $(REPORT_DIR)

# The whole suite. `go test` runs each fuzz target's seed corpus, which is the fuzz smoke.
test: test-go test-alloc cross

test-go:
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(PKGS)
	cd bench && $(GO) test -race -timeout $(TEST_TIMEOUT) ./...

# Allocation counts of pooled objects, which the race detector perturbs: without -race.
test-alloc:
	$(GO) test -count=1 -run 'Alloc|DoesNotAllocate' ./packet/... ./broker/...

# Everything must build for the bench computers (Raspberry Pi and other ARM boards).
cross:
	GOOS=linux GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build ./...

# Each fuzz target runs for FUZZTIME (default 60s); crashers land in packet/testdata/fuzz.
fuzz:
	@set -e; for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	@mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./packet/... ./broker/... | tee $(BENCH_OUT)/go-bench.txt

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

generate:
	$(GO) generate ./...

# go generate and go mod tidy must leave the tree unchanged.
tidy-check: generate
	$(GO) mod tidy
	git diff --exit-code -- go.mod go.sum $$(git ls-files '*.go')

# Hardware in the loop; BENCH defaults to the simulated bench so that it runs anywhere.
hil:
	$(GO) run ./cmd/gatehouse hil --bench $(BENCH) --report-dir $(REPORT_DIR)/hil

conformance:
	$(GO) run ./cmd/gatehouse conform --target embedded --report-dir $(REPORT_DIR)/conformance

# Container images on the local Docker daemon, FROM scratch, nothing pulled: gatehouse:dev (the
# static binary) and gatehouse-mosquitto:dev (Debian's installed mosquitto and its libraries).
# An image whose build context did not change is left as it is; FORCE=1 rebuilds.
images:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' $(GO) run ./ci/images/build $(if $(FORCE),-force)

# 10,000 simulated devices (mixed kinds, keepalive 30s, telemetry every 10s) against the reference
# broker as a separate process, for 60s: connect time, CPU, memory per device, message rates.
bench-fleet: build
	@mkdir -p $(BENCH_OUT)
	$(GO) run ./simulator/fleet/fleetbench -gatehouse bin/gatehouse -devices 10000 -duration 60s -json $(BENCH_OUT)/fleet.json

# Side-by-side broker benchmark (bench/ module): gatehouse, mosquitto and mochi-mqtt, fresh processes,
# medians of 3 repetitions; writes bench/results/broker-bench.json and the tables of BENCHMARKS.md.
# BENCH_BROKER_FLAGS=-quick for a smoke run.
BENCH_BROKER_FLAGS ?=
bench-broker:
	cd bench && $(GO) run ./cmd/brokerbench $(BENCH_BROKER_FLAGS)

# Ten minutes of traffic and faults on a 120-device site against the reference broker, judged on
# loss, duplication, latency and wills (SOAK=FILE for another soak scenario).
SOAK ?= fixtures/soak/soak.yaml
soak:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/gatehouse run $(SOAK) --report-dir $(REPORT_DIR)/soak

clean:
	rm -rf bin $(REPORT_DIR) $(BENCH_OUT)
