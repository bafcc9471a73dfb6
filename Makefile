# Iridium: `make run` serves the app on its embedded defaults; `make test` runs the whole suite.
# Both work from a fresh clone with only Python 3.11+: uv is installed into .tools/ when missing.

PYTHON ?= python3
PORT ?= 8000
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python

.PHONY: run test test-embedded lint format check-migrations bench browser clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

run: .venv/.synced
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	PORT=$(PORT) $(PY) manage.py serve

# Browser tests drive Debian's Chromium; install it when it is missing (needs root and apt).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: .venv/.synced browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests where the set-ups differ, again on the embedded defaults `make run` serves (SQLite,
# local-memory cache, in-memory channel layer): answers started and saved, the console's SQL.
EMBEDDED_TESTS := tests/test_chat_consumer.py tests/test_chat_versions.py tests/test_support.py \
	tests/test_codegen.py tests/test_progress.py tests/test_latency_histograms.py \
	tests/test_rollup_hours.py tests/test_middleware.py tests/test_console_migrations.py

test-embedded: .venv/.synced
	env -u DATABASE_URL -u REDIS_URL IRIDIUM_TEST_SETUP=embedded \
	  $(PY) -m pytest -m "not postgresql" $(EMBEDDED_TESTS)

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

format: .venv/.synced
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

check-migrations: .venv/.synced
	$(PY) manage.py makemigrations --check --dry-run

# Every benchmark; each also runs alone as `.venv/bin/python -m bench.<name>`.
bench: .venv/.synced
	$(PY) -m bench

clean:
	rm -rf .venv .tools var staticfiles .pytest_cache .ruff_cache
