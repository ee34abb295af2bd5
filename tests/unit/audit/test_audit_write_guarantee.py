"""What a gateway's `record` guarantees about the write (README, "The audit log"): with the
default batch a decision is accepted into memory and its request forwarded before the write that
may fail; with `audit: {batch_records: 1}` the write happens inside `record`, so a failing write
refuses that very request (the gateway answers 503 and forwards nothing)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from trustproof.audit import AuditUnavailable
from trustproof.audit.store import EncryptedLogSink

KEK = bytes(range(32))


class Disk:
    """os.write until `full`, then ENOSPC."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: bytes) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def test_with_a_batch_a_record_accepted_before_a_failing_write_is_not_refused(
    tmp_path: Path,
) -> None:
    disk = Disk()
    sink = EncryptedLogSink(
        tmp_path / "audit.log", KEK, batch_records=3, batch_seconds=60, write=disk.write
    )
    sink.event("probe", {"case": "c0"})
    disk.full = True
    sink.event("probe", {"case": "c1"})  # accepted: its request would be forwarded
    with pytest.raises(AuditUnavailable):  # the batch's write fails with the third record
        sink.event("probe", {"case": "c2"})
    assert sink.written_records == 0  # c0 and c1 were accepted, and are lost
    sink.close()


def test_with_batch_records_1_the_record_whose_write_fails_is_refused(tmp_path: Path) -> None:
    disk = Disk()
    sink = EncryptedLogSink(
        tmp_path / "audit.log", KEK, batch_records=1, batch_seconds=60, write=disk.write
    )
    sink.event("probe", {"case": "c0"})
    assert sink.written_records == 1  # in the file (the kernel's) when `record` returns
    disk.full = True
    with pytest.raises(AuditUnavailable, match="cannot be written"):
        sink.event("probe", {"case": "c1"})  # this request is refused, not forwarded
    assert sink.written_records == 1
    sink.close()
