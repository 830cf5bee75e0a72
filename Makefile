# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: run test lint example benchmarks clean

run: $(RUNTIME_STAMP)
	@$(BIN)/python -m analysis --help
	@mkdir -p var
	$(BIN)/python -m analysis example --out var/example.csv
	$(BIN)/python -m analysis run var/example.csv --out var/example-result.xlsx --out var/example-result.json

test: $(DEV_STAMP)
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
