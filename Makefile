# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of torch; a GPU user can override, e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/vanishing: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,text,timeseries]"
	touch $@

demo: $(BIN)/vanishing
	$(BIN)/vanishing demo

test: $(BIN)/vanishing
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/python -m pytest

bench: $(BIN)/vanishing
	$(BIN)/python benchmarks/layers.py

lint: $(BIN)/vanishing
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-logo --no-cache

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis .import_linter_cache
