# dynredis: the two commands of the README are `make cluster` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-test cluster stop status test compat lint bench latency fuzz

# The local cluster's first port, size and data directory: `make cluster PORT=8000`.
# (Plain assignments: only the command line changes them, never a stray $PORT.)
PORT = 7000
NODES = 3
DATA = ./data

install:
	scripts/install.sh

install-test:
	scripts/install.sh --test

## Install, then start a local cluster of NODES nodes on ports PORT.. (3 nodes,
## 7000-7002, data in ./data by default); again, it restarts nodes that died.
## (DYNREDIS_HINTS=make: what it prints to do next is worded as make targets.)
cluster: install
	@DYNREDIS_HINTS=make $(BIN)/dynredis cluster --detach --nodes $(NODES) --base-port $(PORT) \
		--data-dir $(DATA)

## Stop the cluster started by `make cluster` (its nodes keep their data).
stop: $(BIN)/dynredis
	@DYNREDIS_HINTS=make $(BIN)/dynredis stop --data-dir $(DATA)

## The cluster at a glance, as the node on PORT (7000 by default) sees it: each member's
## zone, state, partitions, transfers, hints and last anti-entropy exchange; says so
## clearly when no node answers.
status: $(BIN)/dynredis
	@DYNREDIS_HINTS=make $(BIN)/dynredis admin status --port $(PORT) --data-dir $(DATA)

$(BIN)/dynredis:
	@echo "dynredis is not installed yet: run make cluster (or make install)" >&2; exit 1

## Install everything the tests need, then run the whole suite.
test: install-test
	$(BIN)/python -m pytest -q

## The compatibility suite alone (compat/): redis-cli, redis-py, ioredis and
## redis-benchmark against clusters it starts; ends with a client / family table
## (also written to compat/last-results.md).
compat: install-test
	$(BIN)/python -m pytest compat -q

lint: install-test
	$(BIN)/ruff check dynredis tests bench compat

## redis-benchmark side by side: redis-server, a 1-node and a 3-node dynredis (requests/s,
## p50/p99/p99.9, server CPU per request); the 3-node cluster with one replica paused,
## then killed (throughput and p99.9 against healthy, failed requests); 1 KB and 100 KB
## values; a million keys (and memory and disk per key); then the collection rows (CPU
## per SADD/HSET/ZADD/RPUSH+LPOP/ZRANGE on one key of 10^2, 10^4 and 10^6 elements,
## memory per element). About 15 minutes on 2 cores, 20-25 on a busy machine.
## Extra flags: make bench BENCH_ARGS="--suites strings,failures --requests 20000"
bench: install-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## Where a request's time goes at -P 16 (bench/latency.py): a 3-node cluster with
## DYN.LATENCY on, redis-benchmark SET then GET through node 1, and per stage of the
## followed requests p50/p99/p99.9 and share of the time (all, and the slowest 0.1%);
## the nodes' loop lag, loop work and GC pauses. About 2 minutes.
latency: install-test
	$(BIN)/python bench/latency.py $(BENCH_ARGS)

## Fuzz the request parser against the model of Redis' reading (tests/fuzz/): first
## FUZZ_RUNS structured inputs coverage-guided by atheris over the parser's source
## (its findings kept in build/fuzz-corpus), then FUZZ_RUNS more through the compiled
## parser, starting from them. Where atheris does not install, hypothesis runs the
## same check FUZZ_RUNS times. A failing input is printed and saved (build/crash-*).
FUZZ_RUNS ?= 1000000
fuzz: install-test
	@mkdir -p build/fuzz-corpus
	@if $(BIN)/python -m pip install -q "atheris>=2.3" >build/fuzz-install.log 2>&1; then \
		DYNREDIS_PURE=1 $(BIN)/python -m tests.fuzz.fuzz_request -runs=$(FUZZ_RUNS) \
			-print_final_stats=1 -artifact_prefix=build/ build/fuzz-corpus && \
		$(BIN)/python -m tests.fuzz.fuzz_request -runs=$(FUZZ_RUNS) \
			-print_final_stats=1 -artifact_prefix=build/ build/fuzz-corpus; \
	else \
		echo "make fuzz: atheris does not install here (build/fuzz-install.log): hypothesis instead"; \
		DYNREDIS_FUZZ_EXAMPLES=$(FUZZ_RUNS) $(BIN)/python -m pytest -q tests/fuzz -k fuzzed; \
	fi
