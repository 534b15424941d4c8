# stratlab: `make demo` and `make test` work on a machine with only Python >= 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv demo dev test lint perf clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "stratlab needs Python >= 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## Start Temporal + Postgres + the four pools, run research cycles, print what happened.
demo: $(STAMP)
	$(BIN)/stratlab demo

## Keep the stack running in the foreground (Ctrl-C stops it).
dev: $(STAMP)
	$(BIN)/stratlab dev

## The whole suite against a real Temporal dev server and a real Postgres. Test files are
## spread over up to 4 processes (xdist), each with its own Temporal and Postgres.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n auto --maxprocesses 4 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy stratlab workflows activities workers

perf: $(STAMP)
	$(BIN)/python perf/grid.py
	$(BIN)/python perf/cycle.py --cycles 20
	$(BIN)/python perf/sandbox.py --runs 50
	$(BIN)/python perf/generation.py --generations 5 --population 16

clean:
	rm -rf $(VENV) .stratlab .pytest_cache .mypy_cache .ruff_cache
