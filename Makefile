# dynredis: the two commands of the README are `make cluster` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-test cluster stop test compat lint bench

install:
	scripts/install.sh

install-test:
	scripts/install.sh --test

## Install, then start a 3-node local cluster on ports 7000-7002 (data in ./data).
cluster: install
	$(BIN)/dynredis cluster --detach

stop:
	$(BIN)/dynredis stop

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

## redis-benchmark side by side: redis-server, a 1-node and a 3-node dynredis.
## Extra flags: make bench BENCH_ARGS="--requests 20000"
bench: install-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)
