"""A whole shop run, then its run directory scanned: the audit log and the service logs verify
(`trustproof audit verify`), the audit log holds every kind of record the run made, and nothing
in the directory is a secret (a token, a private key, the KEK); inside the audit file and the
service logs, not even an identity or a path is readable — `trustproof audit logs` shows the
services' output decrypted."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trustproof.audit.files import read_log
from trustproof.audit.keys import load_kek
from trustproof.sandbox.controller import Sandbox
from trustproof.suite.command import suite_on

pytestmark = pytest.mark.integration

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")
PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
READABLE = (b"spiffe://", b"shop.test", b"/orders", b"/checkout", b"storefront", b"alice", b"GET ")


def scan(run: Path, secrets: dict[str, bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if JWT.search(data):
            found.append(f"{path.relative_to(run)}: a token")
        if PEM_KEY.search(data):
            found.append(f"{path.relative_to(run)}: a private key")
        found += [f"{path.relative_to(run)}: {what}" for what, s in secrets.items() if s in data]
    return found


def readable(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [r for r in READABLE if r in data]


def test_a_shop_run_leaves_a_verified_log_and_no_secret(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    kek = load_kek().key
    tokens: list[str] = []

    async def main() -> None:
        async with Sandbox.from_file(shop_spec_path, run_dir=run) as sandbox:
            tokens.append(sandbox.token("alice", "storefront"))  # one we know to look for
            await suite_on(sandbox, scenarios=False)  # every case; scenarios take a minute
            sandbox.audit_event("chaos", experiment="idp-outage", step="start")  # others' kinds
            sandbox.audit_event("egress.drop", service="orders", destination="192.0.2.10")

    asyncio.run(main())

    verified = subprocess.run(
        [sys.executable, "-m", "trustproof", "audit", "verify", str(run)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit log OK" in verified.stdout
    services = {"storefront", "orders", "payments"}
    for service in services:
        assert f"service log OK: {run / 'logs' / service}.log.tpa: " in verified.stdout
    log = read_log(run, kek)
    kinds = {r.data["kind"] for r in log.contents}
    assert {"decision", "completion", "token.issue", "token.revoke", "probe", "chaos"} <= kinds
    assert {"egress.drop"} <= kinds

    secrets = {
        "the KEK": kek,
        "the KEK (base64)": base64.b64encode(kek),
        "a token": tokens[0].encode(),
    }
    assert scan(run, secrets) == []
    audit = (run / "audit.log").read_bytes()
    assert [r for r in READABLE if r in audit] == []
    service_logs = sorted((run / "logs").glob("*.log.tpa"))
    assert {p.name.removesuffix(".log.tpa") for p in service_logs} >= services
    assert {p.name: readable(p) for p in service_logs} == {p.name: [] for p in service_logs}
    assert list((run / "logs").glob("storefront.log")) == []  # no copy in the clear

    shown = subprocess.run(
        [sys.executable, "-m", "trustproof", "audit", "logs", str(run)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "orders listening on http://" in shown.stdout
    assert "storefront | storefront GET /account/orders 200 caller=alice" in shown.stdout
    assert JWT.search(shown.stdout.encode()) is None
    assert tokens[0] not in shown.stdout


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The failing twin: a token, a key or a KEK left in a run directory is found."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_bytes(b"Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    (tmp_path / "b.pem").write_bytes(b"-----BEGIN EC PRIVATE KEY-----\n")
    (tmp_path / "c").write_bytes(b"k:" + base64.b64encode(b"k" * 32))
    found = scan(tmp_path, {"the KEK (base64)": base64.b64encode(b"k" * 32)})
    assert found == ["b.pem: a private key", "c: the KEK (base64)", "logs/a.log: a token"]
    (tmp_path / "logs" / "orders.log.tpa").write_bytes(
        b"orders GET /orders 200 caller=spiffe://shop.test/storefront\n"
    )  # a service log written in the clear
    clear = readable(tmp_path / "logs" / "orders.log.tpa")
    assert clear == [b"spiffe://", b"shop.test", b"/orders", b"storefront", b"GET "]
