# The two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
LINTED := $(wildcard src tests benchmarks scripts examples corpus)

.PHONY: demo test setup lint typecheck unit integration bench soak fuzz lock dist clean

setup:
	@scripts/bootstrap.sh

demo: setup
	@scripts/demo.sh

# Tests without sockets or processes on every core (pytest-xdist), then the integration tests:
# as root on every core too, each worker in a network namespace of its own with only a loopback
# (the shop's sandboxes use fixed ports; tests/conftest.py), one file per worker at a time;
# otherwise in one process.
ITEST_WORKERS := $(shell [ "$$(id -u)" = 0 ] && echo auto || echo 0)
test: setup lint typecheck
	$(BIN)/python -m pytest -q -n auto -m "not integration"
	TRUSTPROOF_TEST_NETNS=1 $(BIN)/python -m pytest -q -n $(ITEST_WORKERS) --dist loadfile -m integration

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports  # the layer order of DESIGN.md §3 (contract in pyproject.toml)

typecheck: setup
	$(BIN)/mypy

# The inner loop: unit tests only (no sockets, no processes), without the fuzz targets, which
# `make test` runs briefly and `make fuzz` at length; on every core (pytest-xdist), property
# tests with the `quick` Hypothesis profile (tests/conftest.py).
unit: setup
	HYPOTHESIS_PROFILE=quick $(BIN)/python -m pytest -q -n auto -m "not integration" --ignore=tests/fuzz

integration: setup
	TRUSTPROOF_TEST_NETNS=1 $(BIN)/python -m pytest -q -n $(ITEST_WORKERS) --dist loadfile -m integration

bench: setup
	@for b in benchmarks/[!_]*.py; do case $$b in */soak_*) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Minutes-long soaks (loopback only, bounded): a sandbox with a 60 s certificate lifetime, 5 min.
soak: setup
	$(BIN)/python benchmarks/soak_rotation.py

# Longer fuzzing for developers (a few minutes; `make test` runs the same properties briefly):
# the Hypothesis properties of tests/fuzz with the `fuzz` profile, then atheris (libFuzzer, Linux
# x86-64) on each target for FUZZ_SECONDS. Every input that breaks a target is saved as
# tests/fuzz/corpus/<target>/crash-<sha1>: commit it with the fix, `make test` replays it.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := http1 paths
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz TRUSTPROOF_FUZZ_SAVE=1 $(BIN)/python -m pytest -q tests/fuzz
	@if ! $(BIN)/python -c 'import atheris' 2>/dev/null; then \
	  echo "fuzz: atheris is not installed (Linux x86-64 only): Hypothesis only"; exit 0; fi; \
	work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	for t in $(FUZZ_TARGETS); do \
	  echo "== atheris $$t, $(FUZZ_SECONDS) s"; mkdir -p "$$work/$$t"; \
	  if $(BIN)/python tests/fuzz/atheris_run.py $$t -max_total_time=$(FUZZ_SECONDS) \
	      -max_len=2048 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=tests/fuzz/corpus/$$t/ \
	      "$$work/$$t" tests/fuzz/corpus/$$t >"$$work/$$t.log" 2>&1; then \
	    grep -E '^Done' "$$work/$$t.log"; \
	  else tail -40 "$$work/$$t.log"; echo "fuzz: $$t broke; the input is in tests/fuzz/corpus/$$t/"; \
	    exit 1; fi; \
	done

# Re-resolve the pinned set from pyproject.toml (run by hand, commit the result).
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo '# Exact pins of every dependency (runtime + dev). Regenerate with: make lock'; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^trustproof'; } > requirements.lock
	rm -rf .lock-venv

# The wheel and sdist a team installs from (`pip install dist/trustproof-*.whl`), built offline.
# The wheel is built from the sdist (only tracked files), as pip would: no run output of the
# checkout's examples rides along into the packaged example.
dist: setup
	rm -rf dist build/sdist && $(BIN)/hatchling build -t sdist -d dist
	mkdir -p build/sdist && tar -xzf dist/trustproof-*.tar.gz -C build/sdist
	cd build/sdist/trustproof-* && $(CURDIR)/$(BIN)/hatchling build -t wheel -d $(CURDIR)/dist
	rm -rf build/sdist

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
