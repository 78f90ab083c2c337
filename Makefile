# Two commands on a fresh machine: `make run` and `make test`. Both build .venv themselves,
# with uv from the committed lock file (uv.lock): the same versions on every machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

# uv from PATH; where there is none, it is installed once from the package index into .uv/.
UV ?= $(or $(shell command -v uv 2>/dev/null),.uv/bin/uv)
# The interpreter is the machine's ($(PYTHON)); uv never downloads one.
export UV_PYTHON_DOWNLOADS := never

RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP     := $(VENV)/.installed-dev

.PHONY: install install-dev run demo test lint audit fmt docs migrate bench clean warehouse warehouse-docs lock

.uv/bin/uv:
	@echo "== uv not found on PATH: installing it into .uv/ (once)"
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --quiet --disable-pip-version-check 'uv>=0.9'

# --locked: the lock must match pyproject.toml (`make lock` after changing a dependency).
# --inexact: the runtime install leaves the test tools of an earlier `make test` in place.
$(RUNTIME_STAMP): pyproject.toml uv.lock | $(UV)
	@echo "== installing the locked dependencies into $(VENV) (uv sync)"
	$(UV) sync --locked --inexact --python $(PYTHON)
	touch $@

$(DEV_STAMP): pyproject.toml uv.lock | $(UV)
	@echo "== installing the locked dependencies and the test tools into $(VENV) (uv sync)"
	$(UV) sync --locked --extra dev --python $(PYTHON)
	touch $@ $(RUNTIME_STAMP)

## After changing a dependency in pyproject.toml: resolve again and write uv.lock.
lock: | $(UV)
	$(UV) lock

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

## Serve on http://$(HOST):$(PORT), on the embedded PostgreSQL unless DATABASE_URL is set.
run: $(RUNTIME_STAMP)
	$(BIN)/orderlens serve --host $(HOST) --port $(PORT) --sample data

## A demo worth looking at: two years of a marketplace's long tail (10,000 products in 74
## categories, generated here, the same every time) served on http://$(HOST):$(PORT) from
## a data directory of its own ($(DEMO_DIR), its own embedded PostgreSQL and key), with a
## forecast run started once it is loaded. `make run`'s sample and data are left alone.
DEMO_DIR    ?= .orderlens-demo
DEMO_SAMPLE := $(DEMO_DIR)/sample
$(DEMO_SAMPLE)/orders.csv: data/generate.py | $(RUNTIME_STAMP)
	$(BIN)/python data/generate.py --demand marketplace --products 10000 --days 730 \
	  --out $(DEMO_SAMPLE)
demo: $(RUNTIME_STAMP) $(DEMO_SAMPLE)/orders.csv
	ORDERLENS_DATA_DIR=$(DEMO_DIR) \
	  $(BIN)/orderlens serve --host $(HOST) --port $(PORT) --sample $(DEMO_SAMPLE) --forecast

## Lint, type-check, audit the dependencies, then the whole suite on a real PostgreSQL,
## in one pytest-xdist worker per core (each with a server or database of its own).
PYTEST := $(BIN)/python -m pytest -n auto
test: lint audit
	$(PYTEST)

## Known vulnerabilities in the installed dependencies (pip-audit; see docs/RELIABILITY.md).
audit: $(DEV_STAMP)
	$(BIN)/python .ci/audit.py

## Python (ruff, mypy strict) and the container files: the Dockerfile by hadolint, the
## compose file against the Compose specification's schema (shipped in the package).
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

fmt: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Sync the change feeds of the service into the DuckDB file ORDERLENS_WAREHOUSE
## (orderlens sync, dlt), then build and test the dbt project on it. The service is the
## one the command line finds (ORDERLENS_URL when set, else the one `orderlens serve`
## runs from this folder, else http://127.0.0.1:8000). API_KEY, when set, goes with
## the reads (a read key is enough).
## The rows go to the dataset ORDERLENS_DATASET, by default the service's instance id;
## the marts to schema ORDERLENS_MARTS (analytics).
## Builds are incremental; DBT_ARGS adds to dbt's command line, e.g.
## DBT_ARGS=--full-refresh (every mart from scratch, every row checked).
ORDERLENS_WAREHOUSE ?= warehouse/orderlens.duckdb
DBT_ARGS ?=
DBT_DIRS := --project-dir warehouse --profiles-dir warehouse --target duckdb \
  --target-path target --log-path warehouse/logs
SYNC_TO := --to duckdb:///$(ORDERLENS_WAREHOUSE)
warehouse: $(RUNTIME_STAMP)
	$(BIN)/orderlens sync $(SYNC_TO)
	dataset=$$($(BIN)/orderlens sync $(SYNC_TO) --show-dataset) && \
	  ORDERLENS_DATASET=$$dataset ORDERLENS_WAREHOUSE=$(ORDERLENS_WAREHOUSE) \
	  $(BIN)/dbt build $(DBT_DIRS) $(DBT_ARGS)

## dbt's documentation site of the warehouse (models, columns, tests, lineage), built
## from the project and the DuckDB file ORDERLENS_WAREHOUSE (its catalog: types and
## sizes), served on http://$(HOST):$(DOCS_PORT) until Ctrl-C.
DOCS_PORT ?= 8081
warehouse-docs: $(RUNTIME_STAMP)
	dataset=$$($(BIN)/orderlens sync $(SYNC_TO) --show-dataset) && \
	  ORDERLENS_DATASET=$$dataset ORDERLENS_WAREHOUSE=$(ORDERLENS_WAREHOUSE) \
	  $(BIN)/dbt docs generate $(DBT_DIRS) && \
	  ORDERLENS_DATASET=$$dataset ORDERLENS_WAREHOUSE=$(ORDERLENS_WAREHOUSE) \
	  $(BIN)/dbt docs serve $(DBT_DIRS) --host $(HOST) --port $(DOCS_PORT) --no-browser

## docs/CONFIGURATION.md's table of settings, written from app/config.py's fields.
docs: $(RUNTIME_STAMP)
	$(BIN)/python -m app.config docs/CONFIGURATION.md

migrate: $(RUNTIME_STAMP)
	$(BIN)/orderlens migrate

## Every benchmark in benchmarks/ (see benchmarks/RESULTS.md for what they print).
bench: $(DEV_STAMP)
	@found=0; for b in benchmarks/*/run.py; do \
	  [ -f "$$b" ] || continue; found=1; echo "== $$b"; $(BIN)/python "$$b" || exit 1; \
	done; [ $$found = 1 ] || echo "no benchmarks yet"

clean:
	rm -rf $(VENV) .uv .mypy_cache .ruff_cache .pytest_cache
