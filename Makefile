# Everyday commands. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
APP_PORT ?= 5000
SANDBOX_PORT ?= 5001
# Test processes (pytest-xdist): the suite waits on HTTP, timeouts and browsers as much as on
# the CPU, so four keep two cores busy (the SQLite suite on a 2-core machine: 5:40 with four,
# 6:13 with three). A module's tests stay in one process: its fixtures (a served app, a
# browser) are shared.
TEST_WORKERS ?= 4
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile
# Keep compiled modules (in __pycache__, ignored by git) even where the environment says
# PYTHONDONTWRITEBYTECODE: without them every test process and every server the suite starts
# compiles the project, and pytest rewrites every test module, from source again.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: openapi setup chromium lint typecheck migrations-check test test-sqlite test-postgres run sandbox bench soak fuzz clean

# Compiled message catalogues are not in git: each .mo is rebuilt when its .po is newer
# (the app also compiles a missing or stale one when it starts).
MO_FILES := $(patsubst %.po,%.mo,$(wildcard b24app/translations/*/LC_MESSAGES/messages.po))

setup: $(VENV)/.installed $(MO_FILES)

# uv installs the pinned requirements into the venv in seconds where pip takes over a minute
# (measured from PyPI with empty caches: 4.7 s against 75 s); pip is the fallback.
UV_VERSION := 0.13.9

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(PY) -r requirements-dev.txt || \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

b24app/translations/%.mo: b24app/translations/%.po | $(VENV)/.installed
	$(BIN)/pybabel -q compile -i $< -o $@.tmp && mv -f $@.tmp $@

# Browser tests drive Debian's chromium; install it when missing and we may.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing and this user cannot install it: browser tests will be skipped"; \
	  fi; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# An empty database upgraded to head must match the models exactly.
migrations-check: setup
	@tmp=$$(mktemp -d); \
	APP_ENV=testing DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/flask --app app db upgrade >/dev/null && \
	APP_ENV=testing DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/flask --app app db check; \
	rc=$$?; rm -rf $$tmp; exit $$rc

test-sqlite: setup chromium
	$(PYTEST)

# The database-backed suites again on PostgreSQL, when TEST_DATABASE_URL points at it (the
# unit tests and the Bitrix24 client's own tests use no app database: they run once).
test-postgres: setup
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  tmpdb=$$TEST_DATABASE_URL; \
	  APP_ENV=testing DATABASE_URL=$$tmpdb $(BIN)/flask --app app db upgrade >/dev/null && \
	  APP_ENV=testing DATABASE_URL=$$tmpdb $(BIN)/flask --app app db check && \
	  APP_ENV=testing DATABASE_URL=$$tmpdb $(BIN)/flask --app app db downgrade base >/dev/null && \
	  B24_TEST_POSTGRES=1 $(PYTEST) tests/integration tests/load --ignore=tests/integration/bitrix; \
	else \
	  echo "TEST_DATABASE_URL is not set: PostgreSQL runs skipped"; \
	fi

test: lint typecheck migrations-check test-sqlite test-postgres

run: setup
	@$(PY) -m b24app.devrun --app-port $(APP_PORT) --sandbox-port $(SANDBOX_PORT)

sandbox: setup
	$(PY) -m b24sandbox --port $(SANDBOX_PORT) --app-url http://127.0.0.1:$(APP_PORT)

# Regenerate the committed OpenAPI document after changing the API's models.
openapi: setup
	APP_ENV=testing $(BIN)/flask --app app openapi -o docs/openapi.json

bench: setup
	$(PY) -m bench

# 50 administrators for 60 s on gunicorn (4 workers), PostgreSQL and Redis, then the audit of
# the portal's bindings against the answers and the history (docs/reliability.md).
soak: setup
	$(PY) -m tests.load.soak --users 50 --seconds 60 --output bench/results/soak.json

# Fuzzing at full size: FUZZ_EXAMPLES generated cases per API operation and per form endpoint
# (install, app, events, OAuth callback), linked API sequences besides; `make test` runs the
# same tests with a small default (docs/reliability.md, "Fuzzing").
FUZZ_EXAMPLES ?= 1000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTEST) --timeout 3600 tests/fuzz

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis instance
