"""The store around the log: batches, its fsync policy, fail-closed refusals; and the KEK."""

from __future__ import annotations

import base64
import errno
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from trustproof.audit import AuditUnavailable
from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.files import records
from trustproof.audit.keys import KEK_ENV, default_kek_path, load_kek
from trustproof.audit.store import EncryptedLogSink
from trustproof.audit.verify import verify

KEK = bytes(range(32))


def test_records_wait_for_their_batch_and_checkpoints_are_fsynced(tmp_path: Path) -> None:
    synced: list[int] = []
    sink = EncryptedLogSink(
        tmp_path / "audit.log",
        KEK,
        checkpoint_every=5,
        batch_records=3,
        batch_seconds=60,
        fsync=synced.append,
    )
    sink.event("probe", {"case": "c0"})
    sink.event("probe", {"case": "c1"})
    assert sink.written_records == 0  # in memory: this is what a kill -9 could lose
    sink.event("probe", {"case": "c2"})
    assert sink.written_records == 3  # one batch, one write
    assert len(synced) == 1  # the header only: no record is fsynced on its own
    sink.event("probe", {"case": "c3"})
    sink.event("probe", {"case": "c4"})  # the 5th record: a checkpoint, written at once
    assert sink.written_records == 5
    for _ in range(500):  # and fsynced by the flusher, not by the caller (bounded: ~5 s)
        if len(synced) == 2:
            break
        time.sleep(0.01)
    assert len(synced) == 2
    sink.close()
    assert len(synced) == 3  # the closing checkpoint
    path = tmp_path / "audit.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r["case"] for r in records(path, KEK)] == [f"c{i}" for i in range(5)]
    assert verify(path.read_bytes(), KEK).ok


def test_the_flusher_writes_a_batch_within_its_time(tmp_path: Path) -> None:
    sink = EncryptedLogSink(tmp_path / "audit.log", KEK, batch_records=1000, batch_seconds=0.01)
    sink.event("probe", {"case": "c0"})
    for _ in range(500):  # bounded: at most ~5 s
        if sink.written_records:
            break
        time.sleep(0.01)
    assert sink.written_records == 1
    sink.close()


def test_a_full_disk_refuses_every_later_record_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = False

    def write(fd: int, data: bytes) -> int:
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    sink = EncryptedLogSink(tmp_path / "audit.log", KEK, batch_records=2, write=write)
    sink.event("probe", {"case": "c0"})
    sink.event("probe", {"case": "c1"})  # written
    full = True
    sink.event("probe", {"case": "c2"})  # waits in its batch
    with caplog.at_level(logging.ERROR), pytest.raises(AuditUnavailable) as refused:
        sink.event("probe", {"case": "c3"})  # its batch cannot be written
    assert "No space left on device" in str(refused.value)
    assert sink.failure is not None
    with pytest.raises(AuditUnavailable):  # and every one after it
        sink.event("probe", {"case": "c4"})
    assert caplog.text.count("cannot be written") == 1
    sink.close()
    result = verify((tmp_path / "audit.log").read_bytes(), KEK)
    assert result.problem is not None
    assert result.problem.kind == "truncated"  # never closed: the written part still verifies
    assert [r.data["case"] for r in result.contents] == ["c0", "c1"]


def test_the_twin_a_working_disk_takes_every_record(tmp_path: Path) -> None:
    sink = EncryptedLogSink(tmp_path / "audit.log", KEK, batch_records=2)
    for i in range(5):
        sink.event("probe", {"case": f"c{i}"})
    assert sink.failure is None
    sink.close()


def test_a_removed_log_refuses_records(tmp_path: Path) -> None:
    sink = EncryptedLogSink(tmp_path / "audit.log", KEK)
    sink.event("probe", {"case": "c0"})
    (tmp_path / "audit.log").unlink()
    with pytest.raises(AuditUnavailable, match="was removed"):
        sink.event("probe", {"case": "c1"})
    sink.close()


def test_the_kek_comes_from_the_environment_then_the_spec_then_the_user_file(
    tmp_path: Path,
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    assert load_kek(env={KEK_ENV: key}).key == base64.b64decode(key)
    spec_file = tmp_path / "spec.kek"
    spec_file.write_text(base64.b64encode(KEK).decode())
    spec_file.chmod(0o600)
    assert load_kek(spec_kek_file=spec_file, env={}).key == KEK
    assert load_kek(spec_kek_file=spec_file, env={KEK_ENV: key}).source == f"${KEK_ENV}"
    assert load_kek(kek_file=spec_file, env={KEK_ENV: key}).key == KEK  # --kek-file first

    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    with pytest.raises(AuditKeyError, match="no audit key-encryption key"):
        load_kek(env=env)  # reading a log never makes a key
    made = load_kek(env=env, create=True)
    path = default_kek_path(env)
    assert path == tmp_path / "config" / "trustproof" / "audit.kek"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_kek(env=env, create=True).key == made.key  # made once
    assert "key=" not in repr(made)


def test_a_kek_file_in_the_run_dir_readable_by_others_or_malformed_is_refused(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    inside = run / "audit.kek"
    inside.write_text(base64.b64encode(KEK).decode())
    inside.chmod(0o600)
    with pytest.raises(AuditKeyError, match="inside the run directory"):
        load_kek(kek_file=inside, run_dir=run, env={})
    loose = tmp_path / "loose.kek"
    loose.write_text(base64.b64encode(KEK).decode())
    loose.chmod(0o644)
    with pytest.raises(AuditKeyError, match="readable by others"):
        load_kek(kek_file=loose, env={})
    with pytest.raises(AuditKeyError, match="expected the base64 of 32 bytes"):
        load_kek(env={KEK_ENV: "c2hvcnQ="})
