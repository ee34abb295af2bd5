"""Reading a run's audit log from disk: the file I/O around `verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trustproof.audit.crypto import AuditKeyError
from trustproof.audit.verify import Verification, verify

LOG_NAME = "audit.log"
MAX_LOG_BYTES = 2 * 1024**3  # refused beyond: a run's log is far smaller


def log_file(path: Path) -> Path:
    """The log of a run directory, or `path` itself when it names a file."""
    return path / LOG_NAME if path.is_dir() else path


def read_log(path: Path, kek: bytes | None) -> Verification:
    """Verify (and with `kek`, decrypt) the log at `path` (a run directory or the file)."""
    file = log_file(path)
    data = read_capped(
        file, MAX_LOG_BYTES, "audit log", "pass a run directory (default: .trustproof/run)"
    )
    return verify(data, kek)


def read_capped(file: Path, limit: int, what: str, hint: str) -> bytes:
    """The bytes of `file`, an encrypted log (`what`: "audit log", "service log"); a clear
    `AuditKeyError` when it is missing (with `hint`), unreadable, or larger than `limit`."""
    try:
        if file.stat().st_size > limit:
            article = "an" if what[:1] in "aeiou" else "a"
            raise AuditKeyError(f"{file}: larger than {limit} bytes: not {article} {what}")
        return file.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(f"{file}: no {what} here", hint) from None
    except OSError as exc:
        raise AuditKeyError(f"{file}: cannot read it: {exc.strerror}") from None


def records(path: Path, kek: bytes) -> list[dict[str, Any]]:
    """The decrypted records of the intact part of a log (whether or not it is closed)."""
    return [dict(r.data) for r in read_log(path, kek).contents]
