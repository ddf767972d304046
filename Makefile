# Solo's everyday commands. `make run` and `make test` are the two a newcomer needs.
GO ?= go
PKGS ?= ./...

.PHONY: run test test-stress test-deps bench bench-compare bench-cluster lint build fuzz fuzz-smoke

# run starts the daemon on ./data in the foreground, with an example service
# that prints the time every 5 s. Ctrl-C drains it; `make run` again brings it
# back. In another terminal: ./bin/solo --data-dir ./data ls | logs hello -f.
run: build
	@mkdir -p data
	@./bin/solo daemon --data-dir ./data & pid=$$!; \
	for i in $$(seq 100); do ./bin/solo --data-dir ./data ls >/dev/null 2>&1 && break; sleep 0.1; done; \
	./bin/solo --data-dir ./data deploy hello -- sh -c 'while :; do date; sleep 5; done'; \
	./bin/solo --data-dir ./data ls; \
	echo "solo daemon is running (pid $$pid) on ./data; Ctrl-C stops it"; \
	wait $$pid

test: test-deps
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# test-stress runs the whole suite twice while two CPU-bound loops keep
# both cores busy, as on a shared, loaded machine: a test that waits on time
# instead of on a fact fails here. The loops end with the target.
test-stress: test-deps
	@sh -c 'while :; do :; done' & a=$$!; sh -c 'while :; do :; done' & b=$$!; \
	trap "kill $$a $$b 2>/dev/null" EXIT INT TERM; \
	$(GO) test -race -count=2 -timeout 30m $(PKGS)

# FUZZTIME is how long make fuzz runs each fuzz test.
FUZZTIME ?= 2m
# FUZZFLAGS adds go test flags to each run, such as -parallel 1 on a shared
# machine.
FUZZFLAGS ?=

# fuzz runs every fuzz test of the tree (each func FuzzXxx of a tracked
# _test.go file) for FUZZTIME, one after the other: go test -fuzz takes one
# package and one target a run. A failure stops it; its input is left in
# the package's testdata/fuzz/FuzzXxx/, where plain go test replays it.
fuzz:
	@set -e; grep -Ho '^func Fuzz[A-Za-z0-9_]*' $$(git ls-files '*_test.go') | sort -u | \
	while IFS=: read -r file fn; do \
	  fn=$${fn#func }; pkg=./$$(dirname $$file); \
	  echo "== $$fn ($$pkg), $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg; \
	done

# fuzz-smoke runs each fuzzer for a few thousand inputs (a few seconds), as
# CI does after make test. A count, not a duration: Go 1.26's fuzz
# coordinator can fail a run with "context deadline exceeded" and no failing
# input just as a -fuzztime duration ends (go.dev/issue/75804, fixed in Go
# 1.27); a count has no deadline to race. A long `make fuzz` can still hit
# it: a failure that wrote no input to testdata/fuzz/ is that, not a find.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5000x

# test-deps installs what the tests need beyond Go, from Debian's packages,
# when it is missing: ipykernel under /usr/bin/python3 (the kernel session
# tests), the real daemons the operator tests run under Solo (nginx,
# redis, postgres), promtool (package prometheus) that checks the
# metrics, and chromium, the headless browser the web view's tests drive.
# The tests fail, never skip, without them. It does
# nothing when all are there.
test-deps:
	@pkgs=; \
	/usr/bin/python3 -c 'import ipykernel' >/dev/null 2>&1 || pkgs="$$pkgs python3-ipykernel"; \
	command -v nginx >/dev/null || pkgs="$$pkgs nginx-light"; \
	command -v redis-server >/dev/null || pkgs="$$pkgs redis-server"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	command -v pg_isready >/dev/null || pkgs="$$pkgs postgresql-client"; \
	command -v promtool >/dev/null || pkgs="$$pkgs prometheus"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium"; \
	if [ -n "$$pkgs" ]; then \
	  echo "installing$$pkgs for the tests"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$pkgs >/dev/null; \
	fi

# bench runs every benchmark once; figures for the closing notes come from here.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m $(PKGS)

# bench-compare runs the same work on the fork/exec floor, Solo, supervisord and
# pm2 (installed when missing; pm2 into bench/.node) for 100, 1,000 and 10,000
# `sleep` services, prints the table of the README's Performance section and
# writes bench/out/latest.{json,md} and the curves bench/out/bench-{start,memory}.svg.
# Each tool has BENCH_BUDGET per phase (start, restart, stop): one that does not
# finish in it is stopped and reported as such. The idle window is 30 s (not 60)
# so that the whole run, 12 idle windows, stays under about 30 minutes even when
# the peers use their whole budget at 10,000. A smoke run:
# go run ./bench/compare -n 20 -idle 3s
BENCH_N ?= 100,1000,10000
BENCH_IDLE ?= 30s
BENCH_BUDGET ?= 2m
bench-compare:
	$(GO) run ./bench/compare -n $(BENCH_N) -idle $(BENCH_IDLE) -budget $(BENCH_BUDGET)

# bench-cluster runs the cluster's benchmarks, on embedded etcd members on
# loopback: the etcd store's replay of REPLAY_EVENTS events (the log is built
# first, outside the timing: a few minutes for 1,000,000), and the time a
# token revocation takes from Revoke on one node to the refusal on another
# (3 members, p50/p99/max). Then three `solo daemon --cluster --etcd-embed`
# with 30 services: the time from a node's SIGKILL to every one of its
# services running on another node (p50, p99, max over 10 kills, lease TTL
# 2s), and deploys per second through the cluster against one daemon on
# bbolt, in the same run.
REPLAY_EVENTS ?= 1000000
bench-cluster:
	$(GO) test -run '^$$' -bench '^BenchmarkReplay$$' -benchtime 1x -count 1 -timeout 60m ./eventstore/etcdstore -args -replay.events=$(REPLAY_EVENTS)
	$(GO) test -run '^$$' -bench '^BenchmarkEtcdStore_RevocationReach$$' -benchtime 200x -count 1 -timeout 10m ./capability
	$(GO) test -run '^$$' -bench '^BenchmarkCluster_' -benchtime 1x -count 1 -timeout 30m ./cmd/solo -args -cluster.services=30 -cluster.kills=10

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build -o bin/solo ./cmd/solo
