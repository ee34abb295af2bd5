"""The durable audit log of a run: `EncryptedLogSink` writes what `LogWriter` builds to one file.

Write and fsync policy (what a crash can cost):

* records are encrypted and chained as they come, and kept in memory until a *batch* is written
  with one ``write``: when `batch_records` records wait, or `batch_seconds` after the first one
  (a flusher thread), whichever comes first. A process killed with SIGKILL loses at most the
  records of the batch not yet written; what was written is in the kernel and survives;
* every checkpoint (each `checkpoint_every` records) is written at once with its batch and
  ``fsync``-ed right after by the flusher thread (the request that completed it does not wait for
  the disk); the final one at `close` is written and fsync-ed before `close` returns. A machine
  crash or power loss loses at most what came after the last synced checkpoint. No record is
  fsync-ed on its own.

Fail closed: a write or fsync that fails (a full disk, an I/O error, a read-only file system), or
the file removed or replaced under the run (checked before each record, one ``stat``), makes the
sink refuse every later record with `AuditUnavailable` — gateways then answer 503 — and the
first failure is logged as an error (the run's log says so); `failure` says what happened.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trustproof.audit.records import AuditCompletion, AuditEvent
from trustproof.audit.sinks import AuditUnavailable, file_problem
from trustproof.audit.verify import Verification, verify
from trustproof.audit.writer import LogWriter, utc_now

log = logging.getLogger("trustproof.audit")

AUDIT_LOG = "audit.log"


class EncryptedLogSink:
    """The run's encrypted, hash-chained, checkpointed audit log (an `AuditSink`)."""

    def __init__(
        self,
        path: Path,
        kek: bytes,
        *,
        run: str | None = None,
        checkpoint_every: int = 256,
        batch_records: int = 64,
        batch_seconds: float = 0.05,
        write: Callable[[int, bytes], int] = os.write,
        fsync: Callable[[int], None] = os.fsync,
        sync_header: bool = True,
    ) -> None:
        self.path = path
        self.batch_records = max(1, batch_records)
        self.batch_seconds = batch_seconds
        self._write, self._fsync = write, fsync
        self.writer = LogWriter(kek, run=run, checkpoint_every=checkpoint_every)
        self._kek = kek  # to verify what it wrote (`verify_so_far`); never written anywhere
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o600)
        try:
            os.fchmod(self._fd, 0o600)
            opened = os.fstat(self._fd)
            self._opened = (opened.st_dev, opened.st_ino)
            self._write_all(self.writer.header_line + b"\n")
            if sync_header:  # a service log does not: it opens as its service starts
                self._fsync(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_records = 0
        self._sync_due = False
        self.failure: str | None = None
        self.written_records = 0
        self.synced_checkpoints = 0
        self._closed = False
        self._wake = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_forever, name="trustproof-audit-flush", daemon=True
        )
        self._flusher.start()

    def __repr__(self) -> str:
        return f"EncryptedLogSink({str(self.path)!r}, run={self.writer.run!r})"

    @property
    def run(self) -> str:
        return self.writer.run

    @property
    def signing_key(self) -> bytes:
        """The public key the log's checkpoints verify under (also in its header)."""
        return self.writer.header.signing_key

    # -- the AuditSink protocol, and other kinds -------------------------------------------------

    def record(self, event: AuditEvent) -> None:
        self.add({"kind": "decision", **event.to_json()})

    def complete(self, completion: AuditCompletion) -> None:
        self.add({"kind": "completion", "time": utc_now(), **asdict(completion)})

    def event(self, kind: str, fields: Mapping[str, Any]) -> None:
        """A record of another kind (`records.EVENT_KINDS`): token-service events, probes, ..."""
        self.add({"kind": kind, "time": utc_now(), **fields})

    def add(self, record: Mapping[str, Any]) -> None:
        """Chain and encrypt one record; raise `AuditUnavailable` when the log cannot take it."""
        with self._lock:
            self._add_locked(record)

    def _add_locked(self, record: Mapping[str, Any]) -> None:
        self._check()
        lines = self.writer.append(record, scrubbed=self.prescrubbed)
        self._pending.extend(lines)
        self._pending_records += 1
        if len(lines) > 1:  # a checkpoint came with it: written now, fsync-ed by the flusher
            self._sync_due = True
            self._write_pending()
            self._wake.set()
        elif self._pending_records >= self.batch_records:
            self._write_pending()
        if self.failure is not None:
            raise self._unavailable()

    def flush(self) -> None:
        """Write what waits, and fsync if a checkpoint is due, now (tests, the end of a run)."""
        with self._lock:
            self._gather()
            self._write_pending()
            sync, self._sync_due = self._sync_due, False
        if sync:
            self._sync()

    def verify_so_far(self) -> Verification:
        """Flush, then verify and decrypt what the file holds now (an open log is not closed
        yet: its problem is ``truncated`` until `close`)."""
        self.flush()
        with open(self.path, "rb") as handle:
            return verify(handle.read(), self._kek)

    def close(self) -> None:
        """The closing checkpoint, written and fsync-ed; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._flusher.join(timeout=5)
        with self._lock:
            self._gather(closing=True)
            if self.failure is None:
                self._pending.append(self.writer.checkpoint(final=True))
                self._write_pending()
            if self.failure is None:
                try:
                    self._fsync(self._fd)
                except OSError as exc:
                    self._fail(f"the audit log {self.path} cannot be synced ({exc.strerror})")
            os.close(self._fd)

    # -- inside ----------------------------------------------------------------------------------

    prescrubbed = False
    """Whether what `add` gets was scrubbed already (`ServiceLogSink`: the log pump's lines)."""
    consequence = "refusing every request from now on (fail closed)"
    """What the first failure means, for the error it logs (`ServiceLogSink` says its own)."""

    def _gather(self, *, closing: bool = False) -> None:
        """Under the lock, before what waits is written: a subclass turns what it buffered into
        records here (`trustproof.audit.servicelog`). Nothing to do for the audit log."""

    def _unavailable(self) -> AuditUnavailable:
        return AuditUnavailable(
            self.failure or "the audit log is closed",
            "the audit trail of this run is incomplete: free space or fix the file, then start "
            "a new run",
        )

    def _fail(self, what: str) -> None:
        if self.failure is None:
            self.failure = what
            log.error("%s; %s", what, self.consequence)

    def _check(self) -> None:
        if self._closed and self.failure is None:
            self.failure = f"the audit log {self.path} is closed"
        if self.failure is not None:
            raise self._unavailable()
        try:
            at_path: os.stat_result | None = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            at_path = None
        problem = file_problem(self._opened, at_path)
        if problem is not None:
            self._fail(f"the audit log {self.path} was {problem} while the run was writing it")
            raise self._unavailable()

    def _write_all(self, data: bytes) -> None:
        while data:
            written = self._write(self._fd, data)
            data = data[written:]

    def _write_pending(self) -> None:
        """Write the records that wait (under the lock; one ``write``)."""
        if not self._pending or self.failure is not None:
            self._pending.clear()
            self._pending_records = 0
            return
        data = b"\n".join(self._pending) + b"\n"
        records = self._pending_records
        self._pending.clear()
        self._pending_records = 0
        try:
            self._write_all(data)
        except OSError as exc:
            self._fail(
                f"the audit log {self.path} cannot be written ({os.strerror(exc.errno or 0)}"
                f" [{exc.errno}]); {records} records are lost"
            )
            return
        self.written_records += records

    def _sync(self) -> None:
        """fsync outside the lock: records keep coming meanwhile."""
        try:
            self._fsync(self._fd)
        except OSError as exc:
            with self._lock:
                self._fail(f"the audit log {self.path} cannot be synced ({exc.strerror})")
        else:
            self.synced_checkpoints += 1

    def _flush_forever(self) -> None:
        """Every `batch_seconds` (or when a checkpoint is due): write what waits, fsync if due."""
        while not self._closed:
            self._wake.wait(self.batch_seconds)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                self._gather()
                self._write_pending()
                sync, self._sync_due = self._sync_due, False
            if sync:
                self._sync()
