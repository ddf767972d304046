# Solo's everyday commands. `make run` and `make test` are the two a newcomer needs.
GO ?= go
PKGS ?= ./...

.PHONY: run test bench lint build

# run appends to and prints an event store in ./data (the daemon replaces it).
run:
	$(GO) run ./examples/eventlog -data ./data

test:
	$(GO) test -race -count=1 $(PKGS)

# bench runs every benchmark once; figures for the closing notes come from here.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build -o bin/solo ./cmd/solo
