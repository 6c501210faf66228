# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Pinned with hashes (`make lock`): the site's install and everything `make test` and CI need.
LOCK     := requirements/lock.txt
DEV_LOCK := requirements/dev-lock.txt

.PHONY: demo test test-core lint bench install install-dev lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The locked dependencies (every file checked against its hash), then alliance itself with no
# dependencies of its own and no build isolation: its build needs (setuptools, wheel) are locked too.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP) $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/alliance demo

test: $(DEV_STAMP)
	scripts/test-services.sh
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

# The core alone: everything but the web app's tests (no PostgreSQL, no Chromium needed).
test-core: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q --ignore=tests/web

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(DEV_STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Resolve pyproject.toml's dependencies into the locks, for every platform and Python >= 3.11
# (--universal), with the hashes of every wheel and sdist. Versions already pinned are kept unless
# asked: `make lock UPGRADE="--upgrade-package django"` (one package) or `UPGRADE=--upgrade` (all);
# see CONTRIBUTING.md. The runtime lock is held to the dev lock's versions, so both install the same.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml requirements/build.in --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command 'make lock' $(UPGRADE)

lock: $(DEV_STAMP)
	$(UV_COMPILE) --extra production --extra dev -o $(DEV_LOCK)
	$(UV_COMPILE) --extra production --constraint $(DEV_LOCK) -o $(LOCK)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
