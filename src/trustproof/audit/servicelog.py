"""Service logs at rest: each service's output (stdout and stderr, scrubbed line by line by the
log pump, `trustproof.sandbox.backend`) kept like the audit log, one file per service,
``<run>/logs/<service>.log.tpa``.

The file is an audit log (`trustproof.audit.chain`) of its own: its own data key, wrapped by the
run's KEK; records hash-chained, each AES-256-GCM encrypted and bound to its place; Ed25519
checkpoints and a closing one. A record is a *chunk* of output, not a line: lines are gathered in
memory and sealed together when `chunk_bytes` wait, or every `batch_seconds` (the sink's flusher
thread), or when a reader asks (`flush`, `tail`) — so a service that logs a lot costs one
encryption per chunk, not per line (`benchmarks/audit.py` measures it). A SIGKILLed writer loses
at most the output of the last `batch_seconds`; what was written still verifies up to there.
fsync: every `checkpoint_every` chunks (by the flusher thread) and at close, as the audit log;
not the header (it is written as the service starts, where an fsync costs milliseconds).

The header's ``run`` names the service by a digest (``<random>:<digest of the name>``: nothing
readable), bound into every record's authenticated data: a file renamed to another service's
name fails to verify.

Reading goes through one function, `read_service_log` (the start-error hints, the data scan,
``trustproof audit logs``/``verify``, tests): it verifies, decrypts in memory and returns the
text of the intact part, with the first problem if there is one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.files import read_capped
from trustproof.audit.sinks import AuditUnavailable
from trustproof.audit.store import EncryptedLogSink
from trustproof.audit.verify import Problem, Verification, verify
from trustproof.audit.writer import utc_now

SUFFIX = ".log.tpa"
LOGS_DIR = "logs"
MAX_BYTES = 2 * 1024**3  # refused beyond, as the audit log
CHUNK_BYTES = 16 * 1024
CHECKPOINT_EVERY = 64  # chunks: a fsync (by the flusher thread) every ~1 MiB of output at most


EARLIER = "@"  # not in a spec name: ``orders@1.log.tpa`` is the output of orders' first start


def name_tag(service: str) -> str:
    """What a log's header says of its service: a digest, not the name."""
    return hashlib.sha256(b"trustproof service log\0" + service.encode()).hexdigest()[:16]


def service_log_path(logs_dir: Path, service: str) -> Path:
    return logs_dir / f"{service}{SUFFIX}"


def _parts(path: Path) -> tuple[str, int]:
    """(service, start): ``orders@2.log.tpa`` -> ("orders", 2); the latest start sorts last."""
    name = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    service, _, number = name.partition(EARLIER)
    return service, int(number) if number.isdigit() else 2**31


def service_of(path: Path) -> str:
    """The service a log file is named after (``orders.log.tpa``, ``orders@1.log.tpa`` ->
    ``orders``)."""
    return _parts(path)[0]


def service_log_files(run_dir: Path, service: str | None = None) -> list[Path]:
    """The encrypted service logs of a run directory (of one service: its earlier starts first)."""
    logs = run_dir / LOGS_DIR
    if not logs.is_dir():
        return []
    found = [p for p in logs.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    if service is not None:
        found = [p for p in found if service_of(p) == service]
    return sorted(found, key=_parts)


def keep_earlier(path: Path) -> None:
    """Before a service starts again in the same run (a restart), move its last log aside as
    ``<service>@<n>.log.tpa`` (a log is closed once written: it is never continued)."""
    if not path.exists() and not path.is_symlink():
        return
    service = service_of(path)
    number = 1 + sum(1 for p in path.parent.glob(f"{service}{EARLIER}*{SUFFIX}"))
    while (target := path.parent / f"{service}{EARLIER}{number}{SUFFIX}").exists():
        number += 1
    path.replace(target)


class ServiceLogSink(EncryptedLogSink):
    """One service's encrypted log; `write` takes scrubbed text (whole lines)."""

    consequence = "the service's later output is dropped (it keeps running)"
    prescrubbed = True  # `write` takes lines the log pump scrubbed (`sandbox.backend._pump`)

    def __init__(
        self,
        path: Path,
        kek: bytes,
        service: str | None = None,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        batch_seconds: float = 0.05,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.service = service or service_of(path)
        self.chunk_bytes = max(1, chunk_bytes)
        self._text: list[str] = []
        self._text_bytes = 0
        self._text_since = ""
        keep_earlier(path)
        super().__init__(
            path,
            kek,
            run=f"{secrets.token_hex(8)}:{name_tag(self.service)}",
            checkpoint_every=checkpoint_every,
            batch_records=8,
            batch_seconds=batch_seconds,
            sync_header=False,  # ~4-40 ms on a busy disk, on the service's start path
        )

    def __repr__(self) -> str:
        return f"ServiceLogSink({str(self.path)!r})"

    def write(self, text: str) -> None:
        """Keep `text` for the next chunk; never raises: a log that cannot be written drops the
        output from then on (the first failure is logged as an error). `text` must be scrubbed
        already (the log pump scrubs each line, and drops private-key blocks whole): it is
        encrypted as it is."""
        with self._lock:
            if self.failure is not None or self._closed:
                return
            if not self._text:
                self._text_since = utc_now()
            self._text.append(text)
            self._text_bytes += len(text)
            if self._text_bytes >= self.chunk_bytes:
                self._gather()

    def tail(self, count: int = 15) -> str:
        """The last `count` lines, decrypted in memory (what waits is written first), indented
        for an error's hint; a broken or unreadable log says so instead."""
        if not self._closed:
            self.flush()
        try:
            found = read_service_log(self.path, self._kek)
        except AuditKeyError as exc:
            return f"    | ({exc.message})"
        return indented_tail(found, count)

    def _gather(self, *, closing: bool = False) -> None:
        if not self._text:
            return
        record = {"time": self._text_since, "text": "".join(self._text)}
        self._text.clear()
        self._text_bytes = 0
        if closing:  # `close` seals it next; the file was checked with every chunk before
            if self.failure is None:
                self._pending.extend(self.writer.append(record, scrubbed=True))
                self._pending_records += 1
            return
        try:
            self._add_locked(record)
        except AuditUnavailable:
            return  # logged once by `_fail`; this chunk and what follows are dropped


@dataclass(frozen=True)
class ServiceLog:
    """A service log read back: the text of its intact part, and how far it verified."""

    path: Path
    service: str
    text: str
    verification: Verification

    @property
    def problem(self) -> Problem | None:
        return self.verification.problem

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def read_service_log(path: Path, kek: bytes | None) -> ServiceLog:
    """Verify, and with `kek` decrypt, the service log at `path`: the one reader of service logs.

    Raises `AuditKeyError` when the file is missing or unreadable; a wrong KEK, an edited,
    truncated or misnamed file is `verification.problem` (the text is what precedes it)."""
    service = service_of(path)
    hint = "list them with: trustproof audit logs RUN_DIR --list"
    result = verify(read_capped(path, MAX_BYTES, "service log", hint), kek)
    if result.run and result.run.partition(":")[2] != name_tag(service):
        result = replace(
            result,
            contents=(),
            problem=Problem(
                "header",
                None,
                1,
                f"this log was written for another service, not {service!r} (renamed or swapped)",
            ),
        )
    text = "".join(_text(record.data) for record in result.contents)
    return ServiceLog(path, service, text, result)


def indented_tail(found: ServiceLog, count: int = 15) -> str:
    """The last lines of a service log as an error's hint shows them."""
    lines = [f"    | {line}" for line in found.lines[-count:]] or ["    | (the log is empty)"]
    problem = found.problem
    if problem is not None and not (problem.kind == "truncated" and not found.verification.closed):
        lines.append(f"    | (the log is broken: {problem})")
    return "\n".join(lines)


def _text(data: Any) -> str:
    text = data.get("text") if hasattr(data, "get") else None
    return text if isinstance(text, str) else ""
