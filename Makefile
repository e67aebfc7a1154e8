# tradingstate — the two commands a fresh machine needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1:8000
CONFIG ?= configs/paper.toml
PYTEST_ARGS ?=

.PHONY: install run test lint format bench reliability migrate clean-data

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q ".[test]"
	$(PY) -m pip install -q -e clients/python
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput -v 0

## Install, migrate, create a development superuser, load the demo desync and run the
## console (http://127.0.0.1:8000/admin/) with its reconciliation worker.
run: migrate
	DEBUG=1 $(PY) manage.py ensure_dev_superuser --url http://$(HOST)/admin/
	DEBUG=1 $(PY) manage.py demo
	DEBUG=1 $(PY) scripts/run_paper.py --config $(CONFIG) --web $(HOST)

## ruff, then the architecture contracts ([tool.importlinter] in pyproject.toml).
lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Lint, then the whole suite (SQLite unless DATABASE_URL is set). Three workers on a
## 2-core host: the end-to-end tests spend much of their time waiting on the servers and
## processes they start (measured: 9:23 with -n 3, 11:23 with -n 2, same host and hour).
TEST_WORKERS ?= 3
test: lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: migrate
	$(PY) bench/run_all.py

## The reliability/security suite (tests/reliability; PostgreSQL via DATABASE_URL, Redis on
## 127.0.0.1:6379). Bounded: each test has its own time limit, the whole run < 8 min.
reliability: install
	$(VENV)/bin/pytest -m reliability tests/reliability -p no:cacheprovider $(PYTEST_ARGS)
