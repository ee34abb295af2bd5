from __future__ import annotations

import base64
import ctypes
import os
import subprocess
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


def _own_network_namespace() -> None:
    """Give this pytest-xdist worker a network namespace of its own, with only a loopback.

    The shop's sandboxes listen on fixed ports (18101-18103): two workers running shop tests at
    once would collide on the host's loopback. In a namespace of its own each worker has a
    loopback to itself, and nothing in it can reach the host's network (the network rule holds by
    construction). Root only (CI and this machine); elsewhere the integration tests run in one
    process (`make test` passes `-n` only to the socket-free tests when not root).
    """
    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    # The namespace is the calling thread's: tests run on this (the main) thread, and every
    # thread and process they start inherits it.
    if libc.unshare(clone_newnet) != 0:
        errno = ctypes.get_errno()
        raise pytest.UsageError(
            f"cannot make a network namespace for this worker: {os.strerror(errno)}"
        )
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("TRUSTPROOF_TEST_NETNS") == "1":
        _own_network_namespace()
