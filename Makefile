# xdpfwd: what people run often. Everything privileged runs as root.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/xdpfwd

.PHONY: all deps generate check-generate build test unit lint bench bench-engine demo fuzz clean

all: build

deps:
	./scripts/deps.sh

# Regenerate the bpf2go output (bpf/*_bpfel.go, *.o) from bpf/*.c with clang-14.
generate:
	$(GO) generate ./bpf/

# Fails when the committed BPF objects differ from what the sources generate.
check-generate: deps
	./scripts/check-generate.sh

VERSION := $(shell git describe --always --dirty 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN) ./cmd/xdpfwd

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# All tests, privileged ones included (run as root), under the race
# detector: the tests' own code, and the xdpfwd daemon they start.
test: deps lint check-generate
	XDPFWD_TEST_RACE=1 $(GO) test -race -count=1 ./...

# Unit tests only: no privileges needed.
unit:
	$(GO) test -count=1 ./internal/... ./fastpath/...

# Engine benchmarks without I/O.
bench-engine:
	$(GO) test -run '^$$' -bench . -benchmem ./fastpath/... ./xdp/...

# Kernel bridge vs xdpfwd on the same veth topology and traffic.
bench: build
	./$(BIN) bench

demo: deps build
	./$(BIN) demo

# Every fuzz target in the module, FUZZTIME each (default 20s).
fuzz:
	GO=$(GO) ./scripts/fuzz.sh

clean:
	rm -rf bin
