from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# pytester runs pytest inside the tests of the pytest plugin (tests/*/test_pytest_plugin*.py).
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"

# Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (default `ci`):
#   ci    what `make test` runs: bounded and derandomized, so a CI failure reproduces exactly
#         (derandomize also turns the example database off: CI writes nothing to the tree).
#   quick what `make unit` runs (the inner loop): the same bounded, derandomized search with a
#         tenth of the examples; `make test` runs the full `ci` profile.
#   fuzz  what `make fuzz` runs: many more random examples, new seeds each run, failures kept in
#         the local .hypothesis/ database and replayed first on the next run.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("quick", settings.get_profile("ci"), max_examples=20)
settings.register_profile(
    "fuzz",
    max_examples=2_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The sandboxes of the tests run on the local backend unless a test (tests/integration/
# test_isolated.py) asks for the isolated one, or TRUSTPROOF_BACKEND says otherwise: many tests
# check what only the local backend does (a service's port listening on the host, a bypass the
# service itself refuses).
os.environ.setdefault("TRUSTPROOF_BACKEND", "local")
# The audit log's key-encryption key for every sandbox the tests start (and their `trustproof`
# subprocesses): one per session, so no test writes the per-user ~/.config/trustproof/audit.kek.
os.environ.setdefault("TRUSTPROOF_AUDIT_KEK", base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def shop_spec_path() -> Path:
    return SHOP
