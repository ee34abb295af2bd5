"""Service logs at rest (`trustproof.audit.servicelog`): written in encrypted chunks, read back
by the one reader, tampering and a wrong key detected; the log pump writes through it; and
`trustproof audit logs` / `audit verify` over a run directory."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.alerts import facts_of
from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.servicelog import (
    ServiceLog,
    ServiceLogSink,
    indented_tail,
    read_service_log,
    service_log_files,
    service_of,
)
from trustproof.audit.store import EncryptedLogSink
from trustproof.audit.verify import verify
from trustproof.cli import audit as audit_cli
from trustproof.cli import cli
from trustproof.consistency.datascan import scan_files
from trustproof.data.proof import Evidence
from trustproof.sandbox.backend import Handle, _pump
from trustproof.spec import load_spec

KEK = bytes(range(32))
SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"
OTHER = b"x" * 32
LINES = [f"line {i}: GET /orders/{i} by spiffe://shop.test/storefront\n" for i in range(50)]


def write_log(path: Path, lines: list[str], **kwargs: object) -> ServiceLogSink:
    sink = ServiceLogSink(path, KEK, **kwargs)  # type: ignore[arg-type]
    for line in lines:
        sink.write(line)
    return sink


def test_a_log_round_trips_in_chunks_and_nothing_is_readable_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "orders.log.tpa"
    sink = write_log(path, LINES, chunk_bytes=500, batch_seconds=60)
    sink.close()
    found = read_service_log(path, KEK)
    assert found.problem is None
    assert found.verification.closed
    assert found.text == "".join(LINES)
    assert found.service == "orders"
    # lines are sealed together: far fewer records than lines (one encryption per chunk)
    assert 1 < found.verification.records < len(LINES) / 5
    data = path.read_bytes()
    assert b"spiffe://" not in data
    assert b"/orders" not in data
    assert b"line 1" not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_what_waits_in_memory_is_written_by_flush_and_the_flusher(tmp_path: Path) -> None:
    path = tmp_path / "api.log.tpa"
    sink = write_log(path, ["ready\n"], batch_seconds=60)
    assert read_service_log(path, KEK).text == ""  # a chunk not sealed yet: in memory
    assert "ready" in sink.tail()  # a reader (the start-error hint) flushes first
    sink.write("later\n")
    sink.flush()
    open_log = read_service_log(path, KEK)
    assert open_log.text == "ready\nlater\n"
    assert open_log.problem is not None
    assert open_log.problem.kind == "truncated"
    sink.close()
    timed = write_log(tmp_path / "w.log.tpa", ["tick\n"], batch_seconds=0.01)
    for _ in range(500):  # bounded: ~5 s; the flusher seals it on its own within its time
        if read_service_log(tmp_path / "w.log.tpa", KEK).text:
            break
        asyncio.run(asyncio.sleep(0.01))
    assert read_service_log(tmp_path / "w.log.tpa", KEK).text == "tick\n"
    timed.close()


@pytest.mark.parametrize("how", ["edit", "truncate", "delete"])
def test_tampering_with_a_service_log_is_named(tmp_path: Path, how: str) -> None:
    path = tmp_path / "orders.log.tpa"
    write_log(path, LINES, chunk_bytes=300, batch_seconds=60).close()
    lines = path.read_bytes().splitlines(keepends=True)
    if how == "edit":  # one byte of a record's ciphertext
        record = json.loads(lines[2])
        ct = bytearray(base64.b64decode(record["ct"]))
        ct[0] ^= 1
        record["ct"] = base64.b64encode(bytes(ct)).decode()
        lines[2] = json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        expected = ("edited", 2)
    elif how == "truncate":  # the end cut off: its closing checkpoint gone
        lines = lines[:-3]
        expected = ("truncated", len(lines))
    else:
        del lines[3]
        expected = ("deleted", 3)
    path.write_bytes(b"".join(lines))
    found = read_service_log(path, KEK)
    assert found.problem is not None
    assert (found.problem.kind, found.problem.seq) == expected
    assert LINES[0] in found.text or how == "edit"  # what precedes the damage is still read
    assert "the log is broken" in indented_tail(found) or how == "truncate"


def test_a_verified_log_is_never_silently_empty_or_swapped(tmp_path: Path) -> None:
    """The failing twins: a passing round trip above, and here the wrong key, or the log of
    one service renamed to another's, are problems, not an empty or foreign text."""
    path = tmp_path / "orders.log.tpa"
    write_log(path, LINES[:3]).close()
    wrong = read_service_log(path, OTHER)
    assert wrong.problem is not None
    assert wrong.problem.kind == "wrong-key"
    assert wrong.text == ""
    swapped = tmp_path / "payments.log.tpa"
    path.rename(swapped)
    found = read_service_log(swapped, KEK)
    assert found.problem is not None
    assert found.problem.kind == "header"
    assert "written for another service, not 'payments'" in found.problem.message
    assert found.text == ""
    with pytest.raises(AuditKeyError, match="no service log here"):
        read_service_log(tmp_path / "nobody.log.tpa", KEK)


def test_a_restart_keeps_the_earlier_output(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    write_log(logs / "orders.log.tpa", ["first start\n"]).close()
    write_log(logs / "orders.log.tpa", ["second start\n"]).close()
    files = service_log_files(tmp_path / "run", "orders")
    assert [p.name for p in files] == ["orders@1.log.tpa", "orders.log.tpa"]
    assert [service_of(p) for p in files] == ["orders", "orders"]
    assert [read_service_log(p, KEK).text for p in files] == ["first start\n", "second start\n"]


def test_the_pump_scrubs_and_encrypts(tmp_path: Path) -> None:
    path = tmp_path / "api.log.tpa"
    sink = ServiceLogSink(path, KEK)

    async def pump() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(
            b"Authorization: Bearer s3cr3t-t0k3n-value\n-----BEGIN PRIVATE KEY-----\n"
            b"KeyBodyLine\n-----END PRIVATE KEY-----\nafter the key\n"
        )
        reader.feed_eof()
        await _pump(reader, sink)

    asyncio.run(pump())
    sink.close()
    text = read_service_log(path, KEK).text
    assert "s3cr3t-t0k3n-value" not in text
    assert "KeyBodyLine" not in text
    assert "[REDACTED PRIVATE KEY]\nafter the key\n" in text
    assert b"after the key" not in path.read_bytes()


def test_a_log_that_cannot_be_written_drops_output_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(28, os.strerror(28))

    sink = ServiceLogSink(tmp_path / "api.log.tpa", KEK, chunk_bytes=1)
    sink._write = full  # the header is written; from now on the disk is full
    sink.write("a line\n")  # never raises: the service keeps running, its pipe drained
    sink.flush()  # the chunks' write fails (nor does this raise)
    sink.write("another\n")
    assert sink.failure is not None
    assert "No space left" in sink.failure
    assert "the service's later output is dropped" in caplog.text
    sink.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    write_log(run / "logs" / "orders.log.tpa", ["orders listening\n", "GET /orders 200\n"]).close()
    write_log(run / "logs" / "payments.log.tpa", ["payments listening\n"]).close()
    return run


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRUSTPROOF_AUDIT_KEK", base64.b64encode(KEK).decode())
    return CliRunner()


def test_audit_logs_decrypts_one_service_or_all(runner: CliRunner, run_dir: Path) -> None:
    one = runner.invoke(cli, ["audit", "logs", str(run_dir), "orders"])
    assert one.exit_code == 0, one.output
    assert one.stdout == "orders listening\nGET /orders 200\n"
    every = runner.invoke(cli, ["audit", "logs", str(run_dir)])
    assert every.exit_code == 0, every.output
    assert every.stdout.splitlines() == [
        "orders   | orders listening",
        "orders   | GET /orders 200",
        "payments | payments listening",
    ]
    listed = runner.invoke(cli, ["audit", "logs", str(run_dir), "--list"])
    assert "service log OK" in listed.stdout
    assert "payments.log.tpa" in listed.stdout
    missing = runner.invoke(cli, ["audit", "logs", str(run_dir), "nobody"])
    assert missing.exit_code == 2
    assert "no log of service 'nobody'" in missing.output
    assert "orders, payments" in missing.output


def test_audit_logs_with_a_wrong_key_exits_2(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.kek"
    other.write_text(base64.b64encode(OTHER).decode())
    other.chmod(0o600)
    result = CliRunner().invoke(
        cli, ["audit", "logs", str(run_dir), "orders", "--kek-file", str(other)]
    )
    assert result.exit_code == 2
    assert "wrong-key" in result.output
    assert "use the KEK the run was written with" in result.output
    assert "listening" not in result.output
    assert "Traceback" not in result.output


def test_audit_verify_names_a_broken_service_log(runner: CliRunner, run_dir: Path) -> None:
    EncryptedLogSink(run_dir / "audit.log", KEK).close()
    ok = runner.invoke(cli, ["audit", "verify", str(run_dir)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("service log OK") == 2
    log = run_dir / "logs" / "payments.log.tpa"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))  # closing cut
    broken = runner.invoke(cli, ["audit", "verify", str(run_dir), "--json"])
    assert broken.exit_code == 1
    report = json.loads(broken.output)
    assert report["ok"] is True  # the audit log itself is intact
    bad = [s for s in report["service_logs"] if not s["ok"]]
    assert [(s["file"], s["problem"]["kind"]) for s in bad] == [
        ("logs/payments.log.tpa", "truncated")
    ]


def test_the_data_scan_reads_service_logs_through_the_reader_or_says_it_could_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.log.tpa"
    write_log(path, ["ok\n"]).close()
    evidence = Evidence()
    count, found = scan_files(iter([path]), evidence, lambda p: read_service_log(p, KEK))
    assert (count, found) == (1, [])
    _, unread = scan_files(iter([path]), evidence)  # no reader: not called clean
    assert [f.describe() for f in unread] == [
        "orders.log.tpa: not scanned in full: an encrypted service log, and no key to read it (-)"
    ]
    _, wrong = scan_files(iter([path]), evidence, lambda p: read_service_log(p, OTHER))
    assert "does not verify (wrong-key" in wrong[0].what


def test_the_start_error_hint_reads_the_handle_s_log_decrypted(tmp_path: Path) -> None:
    path = tmp_path / "api.log.tpa"
    sink = ServiceLogSink(path, KEK, batch_seconds=60)
    for i in range(20):
        sink.write(f"step {i}\n")
    sink.write("boom: missing config\n")
    handle = Handle("api", 1, path, _log=sink)  # running: what waits is flushed, then read
    hint = asyncio.run(handle.last_lines(3))
    assert hint == "    | step 18\n    | step 19\n    | boom: missing config"
    assert b"boom" not in path.read_bytes()
    sink.close()
    assert asyncio.run(Handle("api", 1, path).last_lines()) == "    | (no log)"


def test_only_service_log_chunks_skip_the_second_scrub(tmp_path: Path) -> None:
    """The pump scrubs each line before a service log gets it; the audit log's records are
    still scrubbed as a whole (a token in one is redacted)."""
    token = "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    audit = EncryptedLogSink(tmp_path / "audit.log", KEK)
    audit.event("probe", {"note": token})
    audit.close()
    (record,) = verify((tmp_path / "audit.log").read_bytes(), KEK).contents
    assert "eyJzdWIiOiJ4In0" not in json.dumps(record.data)


def test_audit_logs_follow_prints_what_a_live_log_gains_until_it_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_cli, "FOLLOW_SECONDS", 0.01)
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    write_log(run / "logs" / "orders.log.tpa", ["first start\n"]).close()
    live = write_log(run / "logs" / "orders.log.tpa", ["second start\n"], batch_seconds=60)
    live.flush()  # the first start's log is moved aside as orders@1: printed once, first
    printed: list[str] = []

    def echo(line: str) -> None:
        printed.append(line)
        if line == "second start":  # the log gains a line, then the run ends
            live.write("stopping\n")
            live.close()

    audit_cli.follow_logs(run, "orders", KEK, echo, polls=500)
    assert printed == ["first start", "second start", "stopping"]
    printed.clear()
    audit_cli.follow_logs(run, None, KEK, printed.append, polls=1)  # closed: one round
    assert printed == ["orders | first start", "orders | second start", "orders | stopping"]


def test_audit_logs_follow_does_not_print_a_log_under_the_wrong_key(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    write_log(run / "logs" / "orders.log.tpa", ["secret-ish line\n"]).close()
    printed: list[str] = []
    with pytest.raises(AuditKeyError, match="wrong-key"):
        audit_cli.follow_logs(run, None, OTHER, printed.append, polls=3)
    assert printed == []


class RunWithLogs:
    """What `facts_of` reads of a sandbox: its audit log, its spec, its service logs."""

    def __init__(self, run: Path, audit: EncryptedLogSink) -> None:
        self.audit_log = audit
        self.run = types.SimpleNamespace(path=run)
        self.spec = load_spec(SHOP)

    def service_log(self, path: Path) -> ServiceLog:
        return read_service_log(path, KEK)


def test_a_service_log_that_does_not_verify_is_an_audit_broken_fact(run_dir: Path) -> None:
    audit = EncryptedLogSink(run_dir / "audit.log", KEK)
    sandbox = RunWithLogs(run_dir, audit)
    assert facts_of(sandbox).audit_problem is None  # type: ignore[arg-type]
    log = run_dir / "logs" / "orders.log.tpa"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([lines[0], *lines[2:]]))  # its first record deleted
    problem = facts_of(sandbox).audit_problem  # type: ignore[arg-type]
    assert problem is not None
    assert "orders.log.tpa does not verify: deleted: entry 1" in problem
    audit.close()
