"""`trustproof audit verify` and `audit show` through click's runner."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.audit import AuditCompletion, AuditEvent, Timings
from trustproof.audit.store import EncryptedLogSink
from trustproof.cli import cli

KEK = bytes(range(32))


def decision(i: int, allowed: bool, caller: str) -> AuditEvent:
    return AuditEvent(
        request_id=f"r{i}",
        time=f"2030-01-01T00:00:{i:02d}+00:00",
        service="orders" if i % 2 else "payments",
        method="GET" if allowed else "DELETE",
        path=f"/orders/{i}",
        route="GET /orders/{id}",
        peer_spiffe_id=f"spiffe://shop.test/{caller}",
        token_subject=None,
        principal=caller,
        allowed=allowed,
        status=200 if allowed else 403,
        stage="policy",
        reason="allowed-by-policy" if allowed else "no-matching-permit",
        timings=Timings(policy_us=3.0),
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    sink = EncryptedLogSink(run / "audit.log", KEK, checkpoint_every=4)
    for i in range(8):
        sink.record(decision(i, allowed=i % 3 != 0, caller="storefront" if i < 5 else "alice"))
    sink.complete(AuditCompletion("r1", 200, 10.0, 20.0))
    sink.event("probe", {"case": "authz.outside-matrix | orders | alice | DELETE /orders/1"})
    sink.close()
    return run


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRUSTPROOF_AUDIT_KEK", base64.b64encode(KEK).decode())
    return CliRunner()


def test_verify_passes_an_intact_log(runner: CliRunner, run_dir: Path) -> None:
    result = runner.invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "audit log OK" in result.output
    assert "10 records" in result.output


def test_verify_exits_1_naming_the_first_bad_entry(runner: CliRunner, run_dir: Path) -> None:
    log = run_dir / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*lines[:3], *lines[4:]]))  # entry 3 deleted
    result = runner.invoke(cli, ["audit", "verify", str(run_dir), "--json"])
    assert result.exit_code == 1
    problem = json.loads(result.output)["problem"]
    assert (problem["kind"], problem["entry"]) == ("deleted", 3)


def test_verify_without_the_key_is_a_usage_error(run_dir: Path, tmp_path: Path) -> None:
    env = {"TRUSTPROOF_AUDIT_KEK": "", "XDG_CONFIG_HOME": str(tmp_path / "none")}
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)], env=env)
    assert result.exit_code == 2
    assert "no audit key-encryption key" in result.output
    assert "Traceback" not in result.output


def test_verify_with_another_key_says_so(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.kek"
    other.write_text(base64.b64encode(b"x" * 32).decode())
    other.chmod(0o600)
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir), "--kek-file", str(other)])
    assert result.exit_code == 1
    assert "wrong-key" in result.output


def test_show_filters_by_caller_decision_and_service(runner: CliRunner, run_dir: Path) -> None:
    result = runner.invoke(
        cli,
        ["audit", "show", str(run_dir), "--json", "--caller", "storefront", "--decision", "denied"],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["request_id"] for r in rows] == ["r0", "r3"]
    result = runner.invoke(cli, ["audit", "show", str(run_dir), "--json", "--service", "orders"])
    assert {json.loads(line)["service"] for line in result.output.splitlines()} == {"orders"}
    result = runner.invoke(
        cli, ["audit", "show", str(run_dir), "--json", "--since", "2030-01-01T00:00:06Z"]
    )
    assert [json.loads(line)["request_id"] for line in result.output.splitlines()] == ["r6", "r7"]
    result = runner.invoke(cli, ["audit", "show", str(run_dir), "--json", "--case", "authz.*"])
    assert [json.loads(line)["kind"] for line in result.output.splitlines()] == ["probe"]
    table = runner.invoke(cli, ["audit", "show", str(run_dir)])
    assert "no-matching-permit" in table.output
    assert "10 records" in table.output


def test_show_exports_ocsf_api_activity(runner: CliRunner, run_dir: Path) -> None:
    result = runner.invoke(cli, ["audit", "show", str(run_dir), "--format", "ocsf"])
    events = [json.loads(line) for line in result.output.splitlines()]
    assert len(events) == 8  # the decisions; completions and probes have no OCSF reading
    first = events[0]
    assert (first["class_uid"], first["category_uid"], first["metadata"]["version"]) == (
        6003,
        6,
        "1.3.0",
    )
    assert (first["activity_id"], first["status_id"], first["type_uid"]) == (4, 2, 600304)
    assert first["actor"]["user"]["uid"] == "storefront"
    assert first["http_request"]["url"]["path"] == "/orders/0"


def test_show_refuses_a_bad_time(runner: CliRunner, run_dir: Path) -> None:
    result = runner.invoke(cli, ["audit", "show", str(run_dir), "--since", "yesterday"])
    assert result.exit_code == 2
    assert "RFC 3339" in result.output
