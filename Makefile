# make           build the commands into ./bin, install them into $(go env GOPATH)/bin, make the dev PKI
# make test      the whole test suite (what CI runs)
# make certs     the dev PKI under settings/dev/certs (kept if present)

GO      ?= go
BIN     := bin
CMDS    := eps devpki
CERTS   := settings/dev/certs
GOBIN   := $(shell $(GO) env GOPATH)/bin

.PHONY: all build install certs test vet fmt clean

all: build install certs

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

install:
	$(GO) install $(addprefix ./cmd/,$(CMDS))
	@case ":$$PATH:" in *":$(GOBIN):"*) ;; *) echo "note: $(GOBIN) is not on PATH; add it: export PATH=\"$(GOBIN):\$$PATH\"";; esac

certs: build
	$(BIN)/devpki -dir $(CERTS)

test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 10m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)
