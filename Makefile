# The two commands of the README: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo compile test lint fmt typecheck unit snapshots-update bench install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "lcc needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# bytecode for lcc's own modules (pip wrote it for every installed package): without it, and
# with PYTHONDONTWRITEBYTECODE set, each start compiles them again (about 25 ms of `lcc demo`'s start)
compile: $(STAMP)
	@$(BIN)/python -m compileall -q core tui > /dev/null

install: $(STAMP)

demo: compile
	$(BIN)/lcc demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check core tui tests bench
	$(BIN)/ruff format --check core tui tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n auto -q

fmt: $(STAMP)
	$(BIN)/ruff format core tui tests bench
	$(BIN)/ruff check --fix core tui tests bench

snapshots-update: $(STAMP)
	$(BIN)/pytest tests/tui --snapshot-update -q

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
