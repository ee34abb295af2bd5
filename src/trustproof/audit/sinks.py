"""Audit sinks beside the durable log: `MemorySink` merges decisions and completions by request
id (the probes look requests up there); `JsonLinesSink` appends both to a plaintext file, one JSON
object per line, scrubbed, and refuses every record (fails closed) once that file was removed or
replaced under it (the sandbox writes the encrypted log of `trustproof.audit.store` instead);
`FanOutSink` gives every record to several sinks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

from trustproof.audit.records import AuditCompletion, AuditEvent, AuditSink
from trustproof.errors import TrustproofError
from trustproof.scrub import scrub

log = logging.getLogger("trustproof.audit")


class MemorySink:
    """Events in memory, bounded (oldest dropped first). Completions are kept beside their
    decision and merged when read: the write path (every request) stays two dict stores."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._events: OrderedDict[str, AuditEvent] = OrderedDict()
        self._completions: dict[str, AuditCompletion] = {}
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        with self._lock:
            self._events[event.request_id] = event
            while len(self._events) > self.limit:
                dropped, _ = self._events.popitem(last=False)
                self._completions.pop(dropped, None)

    def complete(self, completion: AuditCompletion) -> None:
        with self._lock:
            if completion.request_id in self._events:
                self._completions[completion.request_id] = completion

    def get(self, request_id: str) -> AuditEvent | None:
        with self._lock:
            event = self._events.get(request_id)
            completion = self._completions.get(request_id)
        return _merged(event, completion) if event is not None else None

    def events(self) -> tuple[AuditEvent, ...]:
        with self._lock:
            pairs = [(e, self._completions.get(e.request_id)) for e in self._events.values()]
        return tuple(_merged(event, completion) for event, completion in pairs)

    def __len__(self) -> int:
        return len(self._events)


def _merged(event: AuditEvent, completion: AuditCompletion | None) -> AuditEvent:
    if completion is None:
        return event
    timings = replace(
        event.timings, upstream_us=completion.upstream_us, total_us=completion.total_us
    )
    return replace(
        event, status=completion.status, stage="done", reason=completion.reason, timings=timings
    )


class AuditUnavailable(TrustproofError):
    """The durable audit log cannot take records: the gateway refuses requests (503)."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n    hint: {hint}" if hint else message)


FileProblem = Literal["removed", "replaced"]


def file_problem(opened: tuple[int, int], at_path: os.stat_result | None) -> FileProblem | None:
    """Whether the file a sink opened, known by its (device, inode), is still the one at its path:
    `at_path` is ``os.stat(path, follow_symlinks=False)``, or None when nothing is there.

    Records written after ``rm audit.jsonl`` land in an unlinked inode nobody will read, and
    after a replacement (``mv other audit.jsonl``, a symlink) in a file that is not the log: both
    are a lost audit trail, so both count. The path still naming the opened inode implies a link
    count above zero, so one `stat` of the path is the whole check."""
    if at_path is None:
        return "removed"
    if (at_path.st_dev, at_path.st_ino) != opened:
        return "replaced"
    return None


class JsonLinesSink:
    """Append-only JSON lines (0600), each line scrubbed; decision and completion records.

    Fails closed for good when its file is removed or replaced under it, checked before every
    write (one `stat` of the path, a few µs; `benchmarks/audit.py` measures it): from then on
    every `record` raises `AuditUnavailable`, so gateways refuse every request (503) instead of
    answering with no audit trail. The first failure is logged as an error (the run's log says
    so); `failure` says what happened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a file left by an earlier run keeps its mode otherwise
            opened = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._opened = (opened.st_dev, opened.st_ino)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self.failure: str | None = None

    def _check(self) -> None:
        """Raise `AuditUnavailable` unless the opened file is still the one at `path`."""
        if self.failure is None:
            try:
                at_path: os.stat_result | None = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                at_path = None
            problem = file_problem(self._opened, at_path)
            if problem is None:
                return
            self.failure = f"the audit log {self.path} was {problem} while the run was writing it"
            log.error("%s; refusing every request from now on (fail closed)", self.failure)
        raise AuditUnavailable(
            self.failure, "the audit trail of this run is incomplete: stop it and start a new one"
        )

    def _write(self, data: dict[str, object]) -> None:
        line = scrub(json.dumps(data, separators=(",", ":"), sort_keys=True))
        with self._lock:
            self._check()
            self._file.write(line + "\n")

    def record(self, event: AuditEvent) -> None:
        self._write({"kind": "decision", **event.to_json()})

    def complete(self, completion: AuditCompletion) -> None:
        self._write({"kind": "completion", **asdict(completion)})

    def close(self) -> None:
        with self._lock:
            self._file.close()


class FanOutSink:
    """Every event to several sinks; if any refuses, the request is refused."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    def record(self, event: AuditEvent) -> None:
        for sink in self.sinks:
            sink.record(event)

    def complete(self, completion: AuditCompletion) -> None:
        for sink in self.sinks:
            sink.complete(completion)
