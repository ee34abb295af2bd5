"""``data.unscrubbed-value``: after seeding, no original value of a sensitive column and no
personal data the masks did not produce is found in the datastores (every text column of every
table), nor any original in the run's logs and audit file or in the case results the reports and
``results.json`` are written from (this scenario runs last; the scenario results before it are
made of scrubbed summaries). Evidence and search: `trustproof.data.proof`.

The scan needs the evidence the sandbox kept while it seeded, so it runs against a live sandbox of
this process (`trustproof run`); elsewhere it is skipped, saying why. Findings show where and a
masked rendering of the value, never the value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.servicelog import SUFFIX, ServiceLog
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.data.proof import Evidence, Finding

TEXT_COLUMNS = """SELECT n.nspname, c.relname, a.attname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'json'::regtype,
                     'jsonb'::regtype)
ORDER BY 1, 2, a.attnum"""
MAX_FINDINGS = 20
MAX_FILE_BYTES = 64 * 1024 * 1024
ReadLog = Callable[[Path], ServiceLog]
"""Verifies and decrypts one service log (`Sandbox.service_log`)."""


def scan_database(name: str, dsn: str, evidence: Evidence) -> tuple[int, list[Finding]]:
    """Every value of every text column of `dsn`'s user tables; (values scanned, findings)."""
    found: list[Finding] = []
    scanned = 0
    with psycopg.connect(dsn, autocommit=False, connect_timeout=10) as conn:
        conn.read_only = True
        columns: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in conn.execute(TEXT_COLUMNS).fetchall():
            columns.setdefault((schema, table), []).append(column)
        for (schema, table), names in columns.items():
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in names),
                sql.Identifier(schema, table),
            )
            for number, row in enumerate(conn.execute(query), 1):
                for column, value in zip(names, row, strict=True):
                    if value is None:
                        continue
                    scanned += 1
                    where = f"datastore {name}, {schema}.{table}.{column}, row {number}"
                    found += evidence.scan(value, where, detectors=True)
    return scanned, found


def scan_files(
    paths: Iterator[Path], evidence: Evidence, read: ReadLog | None = None
) -> tuple[int, list[Finding]]:
    """Originals in the run's logs and audit file (line by line); the encrypted service logs
    are decrypted in memory by `read` (without it, or when one does not verify, a finding says
    so: what cannot be read is not called clean)."""
    found: list[Finding] = []
    count = 0
    for path in paths:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        count += 1
        if path.name.endswith(SUFFIX):
            text, unreadable = _service_log_text(path, read)
            if unreadable:
                found.append(Finding(path.name, f"not scanned in full: {unreadable}", "-"))
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            found += evidence.scan(line, f"{path.name}:{number}", detectors=False)
    return count, found


def scan_results(env: ScenarioEnv, evidence: Evidence) -> list[Finding]:
    """Originals in what the reports and results.json are made of: every case's result (reason,
    detail, evidence: all of it, as its repr shows it)."""
    found: list[Finding] = []
    for item in env.case_results:
        found += evidence.scan(repr(item), f"results: case {item.case.id}", detectors=False)
    return found


def _service_log_text(path: Path, read: ReadLog | None) -> tuple[str, str]:
    """(text, why it could not be read in full — empty when it could)."""
    if read is None:
        return "", "an encrypted service log, and no key to read it"
    try:
        log = read(path)
    except AuditKeyError as exc:
        return "", exc.message
    problem = log.problem
    if problem is None or (problem.kind == "truncated" and not log.verification.closed):
        return log.text, ""  # intact (an open log ends without its closing checkpoint)
    return log.text, f"does not verify ({problem})"


def _run_files(run_path: Path) -> Iterator[Path]:
    logs = run_path / "logs"
    if logs.is_dir():
        yield from sorted(logs.iterdir())
    yield run_path / "audit.jsonl"


async def unscrubbed_value(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    data = env.spec.data
    if data is None or not data.samples:
        return rec.finish("skip", "the spec has no data samples to check")
    sandbox: Any = getattr(env.view, "sandbox", None)
    seeding = getattr(getattr(sandbox, "datastores", None), "seeding", None)
    if sandbox is None or seeding is None:
        return rec.finish("skip", "needs the sandbox that seeded the data, in this process")
    evidence: Evidence = seeding.evidence
    rec.figure("originals", len(evidence.originals))
    findings: list[Finding] = []
    for name, server in sandbox.datastores.servers.items():
        scanned, found = await asyncio.to_thread(
            scan_database, name, server.admin_settings(), evidence
        )
        rec.event(f"scanned {scanned} text values in datastore {name}: {len(found)} findings")
        rec.figure(f"values.{name}", scanned)
        findings += found
    flush = getattr(sandbox, "flush_service_logs", None)
    if flush is not None:
        flush()  # what the services printed last is in the files
    read = getattr(sandbox, "service_log", None)  # without it, a service log is a finding
    files, found = await asyncio.to_thread(scan_files, _run_files(sandbox.run.path), evidence, read)
    rec.event(f"scanned {files} log and audit files: {len(found)} findings")
    findings += found
    found = scan_results(env, evidence)
    rec.event(f"scanned {len(env.case_results)} case results: {len(found)} findings")
    findings += found
    for finding in findings[:MAX_FINDINGS]:
        rec.note(finding.describe())
    rec.figure("findings", len(findings))
    if findings:
        first = "; ".join(f.describe() for f in findings[:3])
        return rec.verdict(False, f"{len(findings)} unscrubbed values: {first}")
    return rec.verdict(
        True,
        f"no original of {len(evidence.originals)} sensitive values and no unmasked personal "
        "data in the datastores, logs or audit file",
    )
