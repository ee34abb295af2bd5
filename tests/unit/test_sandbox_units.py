"""Sandbox pieces without processes or sockets: start order, the environment contract,
templates, the run directory and the pid registry's safety."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from trustproof.clock import ManualClock
from trustproof.errors import SandboxError
from trustproof.identity import CertificateAuthority
from trustproof.sandbox.backend import FakeBackend, PidRegistry, kill_group, start_time
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.datastores import Datastores
from trustproof.sandbox.reaper import wait_for_previous
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import env_suffix, start_order, template_values
from trustproof.spec import load_spec, parse_spec


def test_callees_start_first(shop_spec_path: Path) -> None:
    assert start_order(load_spec(shop_spec_path)) == [["payments"], ["orders"], ["storefront"]]


def test_a_cycle_starts_together(tmp_path: Path) -> None:
    spec = parse_spec(
        "trust_domain: t.test\nservices:\n"
        "  a: {command: x, port: 1, calls: [b]}\n  b: {command: x, port: 2, calls: [a]}\n"
        "  c: {command: x, port: 3}\n",
        tmp_path / "s.yaml",
    )
    assert start_order(spec) == [["c"], ["a", "b"]]


def test_env_suffix() -> None:
    assert env_suffix("order-items.v2") == "ORDER_ITEMS_V2"


def test_template_values_expose_the_contract() -> None:
    values = template_values(
        {
            "TRUSTPROOF_PORT": "8080",
            "TRUSTPROOF_EGRESS_ORDERS": "http://x",
            "TRUSTPROOF_DB_SHOPDB_DSN": "host=h",
            "PATH": "/bin",
        }
    )
    assert values["port"] == "8080"
    assert values["egress"] == {"orders": "http://x"}
    assert values["db"] == {"shopdb": "host=h"}
    assert "path" not in values


def test_run_dir_is_private_and_secrets_go(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    assert oct(run.path.stat().st_mode & 0o777) == "0o700"
    identity = run.identity("orders")
    identity.mkdir()
    (identity / "key.pem").write_text("secret")
    run.remove_secrets()
    assert not identity.exists()
    assert run.logs.is_dir()  # logs stay for the reports


def test_the_gateway_proof_key_is_private_and_goes_with_the_secrets(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    stale = run.identity("orders") / "gateway-proof.key"
    stale.parent.mkdir(mode=0o755)
    stale.write_bytes(b"left by a run that was SIGKILLed")
    stale.chmod(0o644)
    path = run.write_gateway_proof_key("orders", b"k" * 32)
    assert path == stale == run.gateway_proof_key("orders")
    assert path.read_bytes() == b"k" * 32
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    run.remove_secrets()
    assert not path.exists()


def test_pid_registry_never_names_a_process_it_did_not_record(tmp_path: Path) -> None:
    registry = PidRegistry(tmp_path / "pids")
    registry.add(os.getpid(), "me")
    assert registry.entries() == [(os.getpid(), "me")]
    # A recorded pid whose start time no longer matches (the pid was reused) is ignored.
    (tmp_path / "pids").write_text(f"{os.getpid()} 1 someone-else\n")
    assert registry.entries() == []


def test_pid_registry_names_a_group_whose_leader_is_gone(tmp_path: Path) -> None:
    # The leader died (with the controller) but the group may still hold its children: the
    # reaper and `down` must still signal it. The number cannot be reused while the group exists.
    leader = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    started = start_time(leader.pid)
    assert leader.stdin is not None
    leader.stdin.close()
    leader.wait()
    assert start_time(leader.pid) is None
    (tmp_path / "pids").write_text(f"{leader.pid} {started} orders\n")
    assert PidRegistry(tmp_path / "pids").entries() == [(leader.pid, "orders")]
    assert kill_group(leader.pid, signal.SIGKILL) is False  # an empty group: nothing to signal


class _FakePostgres:
    """Just what `Datastores.tick` reads of a running PostgreSQL server."""

    def __init__(self, ca: CertificateAuthority, ttl: timedelta) -> None:
        self.ca = ca
        self.ttl = ttl
        self.server_svid = ca.issue("shopdb", ttl)
        self.rotations = 0

    def rotate_server_certificate(self) -> None:
        self.rotations += 1
        self.server_svid = self.ca.issue("shopdb", self.ttl)


def test_datastore_certificates_renew_at_half_of_a_short_lifetime(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    # With the CA's 30-s backdate, "half of not_before..not_after" of a 10-s certificate was
    # already past at issue: every tick reloaded PostgreSQL. Half-life counts from the issue.
    clock = ManualClock()
    ca = CertificateAuthority("shop.test", clock)
    ttl = timedelta(seconds=10)
    stores = Datastores(
        load_spec(shop_spec_path), RunDir.create(tmp_path / "run"), PidRegistry(tmp_path / "pids")
    )
    server = _FakePostgres(ca, ttl)
    stores.servers["shopdb"] = server  # type: ignore[assignment]
    assert stores.tick(ttl) == []
    clock.advance(timedelta(seconds=4.9))
    assert stores.tick(ttl) == []
    clock.advance(timedelta(seconds=0.1))
    assert stores.tick(ttl) == ["shopdb"]
    assert stores.tick(ttl) == []
    assert server.rotations == 1


def test_a_certificate_lifetime_too_short_to_rotate_is_refused(tmp_path: Path) -> None:
    spec = parse_spec(
        "trust_domain: t.test\nttl: {certificate: 2s}\nservices:\n"
        "  a: {command: x, port: 1, routes: [GET /]}\n",
        tmp_path / "s.yaml",
    )
    sandbox = Sandbox(spec, run_dir=tmp_path / "run", backend=FakeBackend())
    with pytest.raises(SandboxError) as info:
        asyncio.run(sandbox.start())
    assert info.value.message.startswith("ttl.certificate is 2s: too short")
    assert "at least 4s" in info.value.hint
    assert sandbox.fabric is None  # nothing was started


def test_a_new_sandbox_waits_for_the_reaper_of_an_earlier_one(tmp_path: Path) -> None:
    # A controller died here and its reaper is still cleaning: starting now would let it delete
    # the new run's keys. (A stand-in process plays the reaper.)
    run = RunDir.create(tmp_path / "run")
    stand_in = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    try:
        PidRegistry(run.pids).add(stand_in.pid, "reaper")
        with pytest.raises(OSError, match="still cleaning up"):
            wait_for_previous(run, timeout=0.2)
    finally:
        assert stand_in.stdin is not None
        stand_in.stdin.close()
        stand_in.wait()
    wait_for_previous(run, timeout=0.2)  # gone: nothing to wait for
