# Tandem: `make run` starts the server, `make test` runs every test. Both install what is
# missing first (`make setup` does only that). Stamps make a second run skip finished steps.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DB ?= tandem.db

CLIENT_SOURCES := $(shell find client_web/src -type f 2>/dev/null) client_web/build.mjs shared/protocol.json

.PHONY: setup run test lint bench bench-crowd bench-cluster chromium clean

setup: $(VENV)/.installed tests/node/node_modules/.installed client_web/dist/.built

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

client_web/node_modules/.installed: client_web/package.json client_web/package-lock.json
	cd client_web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

client_web/dist/.built: client_web/node_modules/.installed $(CLIENT_SOURCES)
	cd client_web && npm run --silent build
	touch $@

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Chromium (Debian package 'chromium') for the browser tests" >&2; exit 1; fi; }

run: setup
	$(PY) -m server serve --host $(HOST) --port $(PORT) --db $(DB)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check server tests testkit bench
	$(VENV)/bin/ruff format --check server tests testkit bench

test: setup chromium lint
	cd client_web && npm test --silent
	$(PY) -m pytest -ra

# --- benchmark (never part of `make test`) ---------------------------------------------------
BENCH_VENV := bench/.venv-peers

$(BENCH_VENV)/.installed: bench/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	touch $@

bench/node/node_modules/.installed: bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --omit=optional --no-audit --no-fund --loglevel=error
	touch $@

# ~12-15 min: Tandem vs pycrdt-websocket, y-websocket 1.5.4 and a bare relay, interleaved.
# BENCH_ARGS=--quick for a ~5 min run; results in bench/results/<timestamp>.json + latest.json.
bench: $(VENV)/.installed $(BENCH_VENV)/.installed bench/node/node_modules/.installed
	$(PY) -m bench.run $(BENCH_ARGS)

# ~6 min: W6 alone (many rooms at human speed: Tandem, the bare relay and y-websocket, then
# Tandem with acks). BENCH_ARGS="--w6 300x5x2 --rounds 3" picks the points and rounds.
bench-crowd: $(VENV)/.installed bench/node/node_modules/.installed
	$(PY) -m bench.run --only w6 $(BENCH_ARGS)

# ~7 min: real PostgreSQL + redis-server (Debian packages postgresql, redis-server), PostgreSQL
# vs SQLite, 1-3 instances, a kill loop. BENCH_ARGS=--quick for ~3 min; bench/results/cluster-*.json.
bench-cluster: $(VENV)/.installed
	$(PY) -m bench.cluster $(BENCH_ARGS)

# The wheel, with the built web client inside (hatch_build.py also builds it if stale), in dist/.
.PHONY: dist
dist: $(VENV)/.installed client_web/dist/.built
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) tests/node/node_modules client_web/node_modules client_web/dist \
	  $(BENCH_VENV) bench/node/node_modules
