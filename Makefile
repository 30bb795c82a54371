# make           build the commands into ./bin, install them into $(go env GOPATH)/bin, make the dev PKI
# make demo      the five-process demo on the dev ports; Ctrl-C stops it
# make demo-cluster  Redis, two public proxy instances, two private proxies, the nodes and the
#                internal server (installs redis-server if missing and root); Ctrl-C stops it
# make test      the whole test suite (what CI runs)
# make fuzz      every fuzz target for FUZZTIME each (default 30s)
# make soak      200,000 connections through the real chain at concurrency 100 (make test runs 2,000)
# make examples  build and install the demo's internal-server
# make certs     the dev PKI under settings/dev/certs (kept if present)
# make bench     the full benchmark (about 25 minutes): the chain against direct and HAProxy,
#                report in bench/out; `make bench PROFILE=cpu` also profiles the public proxy,
#                `make bench SYSCALLS=1` also counts each proxy's system calls per connection (perf)
# make bench-quick  the same, shorter (under two minutes)
# make bench-cluster  Redis and the cluster chain: new connections through one public instance and
#                through two, interleaved; CPU per connection of each process, Redis commands per
#                connection (about 3 minutes)

GO      ?= go
BIN     := bin
CMDS    := eps proxy devpki
EXAMPLES := internal-server
CERTS   := settings/dev/certs
GOBIN   := $(shell $(GO) env GOPATH)/bin

.PHONY: all build install certs examples demo demo-cluster test fuzz soak vet fmt clean

all: build install certs

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

install:
	$(GO) install $(addprefix ./cmd/,$(CMDS))
	@case ":$$PATH:" in *":$(GOBIN):"*) ;; *) echo "note: $(GOBIN) is not on PATH; add it: export PATH=\"$(GOBIN):\$$PATH\"";; esac

examples:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(EXAMPLES))
	$(GO) install $(addprefix ./cmd/,$(EXAMPLES))

certs: build
	$(BIN)/devpki -dir $(CERTS)

demo: all examples
	scripts/demo

demo-cluster: all examples
	scripts/demo-cluster

test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 10m ./...

# package:target pairs; each runs for FUZZTIME. New findings land in the package's
# testdata/fuzz/<target>/ and then fail `make test` until fixed.
FUZZTIME ?= 30s
FUZZ_TARGETS := engine/hello:FuzzParse engine:FuzzAcceptPath matcher:FuzzNormalize matcher:FuzzLoad internal/pki:FuzzParseCA proxy/wire:FuzzParseAddressHeader

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s; \
	done

SOAK_CONNS ?= 200000
soak:
	SOAK_CONNS=$(SOAK_CONNS) SOAK_CONC=100 $(GO) test -count=1 -run '^TestSoak$$' -timeout 45m -v ./e2e/

vet:
	$(GO) vet ./...

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)

# The harness builds and starts everything itself on loopback and stops it all; see BENCHMARKS.md.
.PHONY: bench bench-quick bench-cluster
BENCH_OUT ?= bench/out

bench:
	$(GO) run ./bench/cmd/bench -out $(BENCH_OUT) $(if $(PROFILE),-profile $(PROFILE)) $(if $(SYSCALLS),-syscalls)

bench-quick:
	$(GO) run ./bench/cmd/bench -quick -out $(BENCH_OUT) $(if $(PROFILE),-profile $(PROFILE)) $(if $(SYSCALLS),-syscalls)

bench-cluster:
	$(GO) run ./bench/cmd/cluster -reps 5 -seconds 8 -c 24
