"""`trustproof audit verify`, `trustproof audit show` and `trustproof audit logs`: a run's
encrypted audit log and service logs, checked and read (`trustproof.audit`). Light: no sandbox,
no aiohttp."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from trustproof import __version__
from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.files import log_file, read_log
from trustproof.audit.keys import KEK_ENV, Kek, load_kek
from trustproof.audit.ocsf import OCSF_VERSION, to_ocsf
from trustproof.audit.query import Filter, caller_of, select
from trustproof.audit.servicelog import ServiceLog, read_service_log, service_log_files, service_of
from trustproof.audit.verify import Problem, Verification
from trustproof.cli.base import friendly, out
from trustproof.errors import UsageError
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR
from trustproof.scrub import scrub

run_dir_argument = click.argument(
    "run_dir",
    metavar="RUN_DIR",
    required=False,
    default=str(DEFAULT_RUN_DIR),
    type=click.Path(path_type=Path),
)
kek_option = click.option(
    "--kek-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The key-encryption key (default: ${KEK_ENV}, the run's spec audit.kek_file, "
    "~/.config/trustproof/audit.kek).",
)


def _spec_kek_file(run_dir: Path) -> Path | None:
    """The `audit.kek_file` of the spec the run was started from (named in its state.json)."""
    try:
        state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        spec_path = Path(str(state["spec"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    from trustproof.spec import load_spec  # noqa: PLC0415 (only when the run's spec names one)

    try:
        spec = load_spec(spec_path)
    except Exception:  # a spec that no longer loads: the other sources still apply
        return None
    kek_file = spec.audit.kek_file
    return spec.resolve(kek_file) if kek_file else None


def _kek(run_dir: Path, kek_file: Path | None) -> Kek:
    spec_file = None if kek_file is not None or not run_dir.is_dir() else _spec_kek_file(run_dir)
    return load_kek(kek_file=kek_file, spec_kek_file=spec_file, run_dir=run_dir)


def _read(run_dir: Path, kek_file: Path | None) -> Verification:
    return read_log(run_dir, _kek(run_dir, kek_file).key)


@click.group()
def audit() -> None:
    """A run's encrypted, tamper-evident audit log: verify it, read it."""


@audit.command("verify")
@run_dir_argument
@kek_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly
def verify_command(run_dir: Path, kek_file: Path | None, as_json: bool) -> None:
    """Check the audit log of RUN_DIR, and each service log beside it: every record authentic,
    in order, none missing or added, every checkpoint signed by the log's key, the log closed.
    Exit 1 naming the first bad file and entry."""
    kek = _kek(run_dir, kek_file).key
    result = read_log(run_dir, kek)
    problem = result.problem
    services = [read_service_log(path, kek) for path in service_log_files(run_dir)]
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "ok": result.ok,
                    "file": str(log_file(run_dir)),
                    "run": result.run,
                    "records": result.records,
                    "checkpoints": result.checkpoints,
                    "sealed_records": result.sealed_records,
                    "closed": result.closed,
                    "problem": _problem_json(problem),
                    "service_logs": [_service_json(run_dir, found) for found in services],
                }
            )
        )
    elif problem is None:
        out.print(
            f"audit log OK: {log_file(run_dir)} (run {result.run}): {result.records} records, "
            f"{result.checkpoints} signed checkpoints, closed",
            markup=False,
        )
    else:
        out.print(f"audit log BROKEN: {log_file(run_dir)}: {problem}", markup=False)
    if not as_json:
        for found in services:
            _say_service(found)
    if problem is not None or any(found.problem is not None for found in services):
        sys.exit(1)


def _service_json(run_dir: Path, found: ServiceLog) -> dict[str, Any]:
    result, problem = found.verification, found.problem
    return {
        "file": str(found.path.relative_to(run_dir)) if run_dir.is_dir() else str(found.path),
        "service": found.service,
        "ok": problem is None,
        "records": result.records,
        "checkpoints": result.checkpoints,
        "closed": result.closed,
        "problem": _problem_json(problem),
    }


def _problem_json(problem: Problem | None) -> dict[str, Any] | None:
    """A verification problem as `audit verify --json` writes it (None: none)."""
    if problem is None:
        return None
    return {
        "kind": problem.kind,
        "entry": problem.seq,
        "line": problem.line,
        "message": problem.message,
    }


def _say_service(found: ServiceLog) -> None:
    result = found.verification
    if found.problem is None:
        out.print(
            f"service log OK: {found.path}: {result.records} records "
            f"({len(found.lines)} lines), {result.checkpoints} signed checkpoints, closed",
            markup=False,
        )
    else:
        out.print(f"service log BROKEN: {found.path}: {found.problem}", markup=False)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{name} {value!r} is not a time", "write it as RFC 3339: 2030-01-31T12:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@audit.command("show")
@run_dir_argument
@kek_option
@click.option("--service", help="Only records about this service.")
@click.option("--caller", help="Only records of this caller (name, SPIFFE ID or glob).")
@click.option("--decision", type=click.Choice(["allowed", "denied"]), help="Only these decisions.")
@click.option("--case", "case", help="Only the probe records of this case id (or glob).")
@click.option("--kind", help="Only records of this kind (decision, token.issue, probe, ...).")
@click.option("--since", help="Only records at or after this time (RFC 3339).")
@click.option("--until", help="Only records at or before this time (RFC 3339).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ocsf"]),
    default="table",
    help=f"ocsf: OCSF {OCSF_VERSION} API Activity events (class 6003), one per line.",
)
@friendly
def show(
    run_dir: Path,
    *,
    kek_file: Path | None,
    service: str | None,
    caller: str | None,
    decision: Any,
    case: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    fmt: str,
) -> None:
    """Decrypt and show the audit log of RUN_DIR (default .trustproof/run), filtered. The log is
    verified first: records past its first bad entry are not shown (a warning says so)."""
    chosen = Filter(
        service=service,
        caller=caller,
        decision=decision,
        case=case,
        kind=kind,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
    )
    result = _read(run_dir, kek_file)
    if result.problem is not None and result.problem.kind in ("wrong-key", "header"):
        raise AuditKeyError(str(result.problem))
    if result.problem is not None:
        click.echo(f"warning: {result.problem}", err=True)
    rows = select((r.data for r in result.contents), chosen)
    if fmt == "ocsf":
        for row in rows:
            event = to_ocsf(row, result.run, __version__)
            if event is not None:
                click.echo(scrub(json.dumps(event, separators=(",", ":"))))
    elif as_json or fmt == "json":
        for row in rows:
            click.echo(scrub(json.dumps(row, separators=(",", ":"))))
    else:
        _table(rows)


def _table(rows: list[Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 (only for the table)

    table = Table(box=None, pad_edge=False)
    for column in ("time", "kind", "service", "caller", "request", "result", "reason"):
        table.add_column(column)
    for row in rows:
        kind = str(row.get("kind", ""))
        if kind == "decision":
            request = f"{row.get('method', '')} {row.get('path', '')}"
            result = f"{'allowed' if row.get('allowed') else 'denied'} {row.get('status', '')}"
            reason = str(row.get("reason", ""))
        elif kind == "probe":
            request, result, reason = str(row.get("case", "")), str(row.get("verdict", "")), ""
        elif kind == "chaos":  # an experiment's step, or its verdict (`suite.chaos_audit`)
            request, result = str(row.get("case", "")), str(row.get("verdict", ""))
            reason = str(row.get("step") or row.get("summary") or "")
        else:
            request = str(row.get("audience") or row.get("case") or row.get("request_id") or "")
            result = str(row.get("status", row.get("verdict", "")))
            reason = str(row.get("error") or row.get("reason") or "")
        table.add_row(
            str(row.get("time", ""))[:23],
            kind,
            str(row.get("service", "")),
            caller_of(row),
            request,
            result,
            reason,
            style=None if kind != "decision" or row.get("allowed") else "yellow",
        )
    out.print(table)
    out.print(f"{len(rows)} records", markup=False)


@audit.command("logs")
@run_dir_argument
@click.argument("service", required=False)
@kek_option
@click.option("--list", "listing", is_flag=True, help="List the service logs and their state.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing what the services write, until every log is closed (the run ended) "
    "or Ctrl-C.",
)
@friendly
def logs(
    run_dir: Path, service: str | None, kek_file: Path | None, listing: bool, follow: bool
) -> None:
    """Decrypt the service logs of RUN_DIR (default .trustproof/run) to standard output, as plain
    text: SERVICE's alone (its earlier starts first), or every service's with its name before
    each line. Each log is verified first: a problem is a warning on standard error, and only
    what precedes it is shown. A wrong key-encryption key: exit 2."""
    if not run_dir.is_dir():
        raise AuditKeyError(
            f"{run_dir}: not a run directory", "pass a run directory (default: .trustproof/run)"
        )
    files = service_log_files(run_dir, service)
    if not files:
        known = sorted({service_of(p) for p in service_log_files(run_dir)})
        what = f"no log of service {service!r}" if service else "no service logs"
        raise UsageError(
            f"{run_dir}: {what}",
            f"services with a log: {', '.join(known)}" if known else "start a run here first",
        )
    kek = _kek(run_dir, kek_file).key
    found = [read_service_log(path, kek) for path in files]
    for one in found:
        _refuse_unreadable(one)
    if listing:
        for one in found:
            _say_service(one)
        return
    if follow:
        follow_logs(run_dir, service, kek, click.echo)
        return
    for one in found:
        problem = one.problem
        if problem is not None:  # a live run's logs are open: "truncated" says so
            click.echo(f"warning: {one.path}: {problem}", err=True)
        if service is not None:
            click.echo(one.text, nl=False)
        else:
            width = max(len(f.service) for f in found)
            for line in one.lines:
                click.echo(f"{one.service:<{width}} | {line}")


def _refuse_unreadable(one: ServiceLog) -> None:
    """A log that cannot be read at all (exit 2): the wrong KEK, or no usable header."""
    problem = one.problem
    if problem is None or one.text or problem.kind not in ("wrong-key", "header"):
        return
    raise AuditKeyError(
        f"{one.path}: {problem}",
        "use the KEK the run was written with (--kek-file, $TRUSTPROOF_AUDIT_KEK, the "
        "spec's audit.kek_file or ~/.config/trustproof/audit.kek)"
        if problem.kind == "wrong-key"
        else "",
    )


FOLLOW_SECONDS = 0.5


def follow_logs(
    run_dir: Path,
    service: str | None,
    kek: bytes,
    echo: Callable[[str], None],
    *,
    polls: int | None = None,
) -> None:
    """Print what the service logs hold, then what they gain, every `FOLLOW_SECONDS`, until every
    log is closed (or `polls` rounds). A log is known by its header's run id, so a restarted
    service's earlier log, moved aside, is not printed twice; a new run here starts afresh."""
    shown: dict[str, int] = {}  # a log's run id -> characters printed
    warned: set[str] = set()
    count = 0
    while polls is None or count < polls:
        count += 1
        found = [read_service_log(path, kek) for path in service_log_files(run_dir, service)]
        width = max((len(f.service) for f in found), default=0)
        for one in found:
            _refuse_unreadable(one)
            key = one.verification.run or str(one.path)
            new = one.text[shown.get(key, 0) :]
            shown[key] = len(one.text)
            for line in new.splitlines():
                echo(line if service is not None else f"{one.service:<{width}} | {line}")
            problem = one.problem
            if problem is not None and problem.kind != "truncated" and key not in warned:
                warned.add(key)
                click.echo(f"warning: {one.path}: {problem}", err=True)
        if found and all(one.verification.closed for one in found):
            return
        time.sleep(FOLLOW_SECONDS)


COMMANDS = (audit,)
