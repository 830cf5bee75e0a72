# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: run test lint benchmarks screenshots clean

# The dashboard in embedded mode: SQLite in var/, analyses in local processes, no services.
# Single-user mode (no sign-in) unless AUTH_REQUIRED=true: allowed on a loopback address only.
run: $(RUNTIME_STAMP)
	@echo "Ganglioside RT check on http://$${HOST:-127.0.0.1}:$${PORT:-8050}/ (Ctrl+C to stop)"
	AUTH_REQUIRED=$${AUTH_REQUIRED:-false} $(BIN)/python app.py

# Everything: lint, import contracts, and every test against real PostgreSQL, Redis, Celery
# workers and headless Chromium (started by the tests when not running already).
test: $(DEV_STAMP)
	@scripts/ensure-test-tools.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check analysis
	$(BIN)/lint-imports

benchmarks: $(DEV_STAMP)
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/model_choice.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/sockets.py
	$(BIN)/python benchmarks/dashboard.py

screenshots: $(DEV_STAMP)
	$(BIN)/python scripts/screenshots.py

$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || scripts/install-system-packages.sh python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
