"""`read_capped`, the one reader of encrypted logs from disk (the run's audit log and the
service logs): a clear `AuditKeyError` for a missing, unreadable or oversized file, never an
``OSError`` traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.files import read_capped, read_log
from trustproof.audit.servicelog import read_service_log


def test_the_bytes_of_a_file_within_the_limit(tmp_path: Path) -> None:
    file = tmp_path / "audit.log"
    file.write_bytes(b"12345")
    assert read_capped(file, 5, "audit log", "a hint") == b"12345"


@pytest.mark.parametrize(("what", "article"), [("audit log", "an"), ("service log", "a")])
def test_a_file_over_the_limit_is_refused(tmp_path: Path, what: str, article: str) -> None:
    file = tmp_path / "big.log"
    file.write_bytes(b"123456")
    with pytest.raises(AuditKeyError, match=f"larger than 5 bytes: not {article} {what}$"):
        read_capped(file, 5, what, "a hint")


def test_a_missing_file_names_what_was_expected_with_the_hint(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="no audit log here") as raised:
        read_log(tmp_path / "nothing-here", None)
    assert "hint: pass a run directory" in str(raised.value)
    with pytest.raises(AuditKeyError, match="no service log here") as raised:
        read_service_log(tmp_path / "orders.log.tpa", None)
    assert "trustproof audit logs RUN_DIR --list" in str(raised.value)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "orders.log.tpa"
    folder.mkdir()  # a directory where the file should be: reading it fails
    with pytest.raises(AuditKeyError, match="cannot read it"):
        read_service_log(folder, None)
