# The two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
LINTED := $(wildcard src tests benchmarks scripts examples)

.PHONY: demo test setup lint typecheck unit integration bench lock clean

setup:
	@scripts/bootstrap.sh

demo: setup
	@scripts/demo.sh

test: setup lint typecheck
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports  # the layer order of DESIGN.md §3 (contract in pyproject.toml)

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q -m "not integration"

integration: setup
	$(BIN)/python -m pytest -q -m integration

bench: setup
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Re-resolve the pinned set from pyproject.toml (run by hand, commit the result).
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo '# Exact pins of every dependency (runtime + dev). Regenerate with: make lock'; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^trustproof'; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
