"""Files a spec refers to (policies, Cedar schema, SQL, templates, working directories): where they
may be and how much of them is read.

A referenced file must be a regular file (not `/dev/zero`, a FIFO or a socket), no larger than
`Limits.file_bytes`, and inside the spec's directory once every symlink is followed — or inside a
directory listed in ``TRUSTPROOF_ALLOW_PATHS`` (absolute paths separated by ``:``), for files kept
outside the project on purpose. Reads go through `read_bounded`, which checks the same on the open
file, so a file swapped after validation is still never read past the bound.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from trustproof.errors import TrustproofError
from trustproof.spec.limits import LIMITS, size

ALLOW_ENV = "TRUSTPROOF_ALLOW_PATHS"
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class FileRefusal(TrustproofError):
    """Why a referenced file cannot be used: `message` (what) and `hint` (what to do)."""

    def __init__(self, message: str, hint: str = "", *, missing: bool = False) -> None:
        super().__init__(message, hint)
        self.missing = missing


def allowed_dirs(environ: dict[str, str] | os._Environ[str] | None = None) -> tuple[Path, ...]:
    """The extra directories named in ``TRUSTPROOF_ALLOW_PATHS`` (absolute ones only)."""
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p and os.path.isabs(p))


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def locate(
    base: Path, relative: str, allowed: Sequence[Path] = (), directory: bool = False
) -> Path:
    """The file `relative` names (relative to `base`, the spec's directory), checked: it exists, is
    of the right kind, lies under `base` or an allowed directory, and is not too large.

    Raises `FileRefusal`, never `OSError`.
    """
    try:
        target = (base / relative).resolve()
        if not any(target.is_relative_to(root) for root in (base.resolve(), *allowed)):
            raise FileRefusal(
                f"{relative!r} is outside the spec's directory (it resolves to {target})",
                "keep the files a spec uses next to it, or list their directory in "
                f"{ALLOW_ENV} (absolute paths separated by ':')",
            )
        info = target.stat()
    except FileNotFoundError:
        raise FileRefusal(
            f"{relative!r} does not exist (looked for {base / relative})",
            "paths are relative to the directory of the spec file",
        ) from None
    except OSError as exc:
        reason = "the path is too long" if exc.errno == errno.ENAMETOOLONG else exc.strerror
        raise FileRefusal(
            f"{_short(relative)}: {reason}",
            "paths are relative to the directory of the spec file",
        ) from None
    except (RuntimeError, ValueError) as exc:  # a symlink loop; a path Python cannot represent
        raise FileRefusal(f"{_short(relative)}: {exc}") from None
    if directory:
        if not stat.S_ISDIR(info.st_mode):
            raise FileRefusal(f"{relative!r} is not a directory ({target})")
        return target
    if not stat.S_ISREG(info.st_mode):
        raise FileRefusal(
            f"{relative!r} is {_kind(info.st_mode)} ({target}), not a regular file",
            "refer to a file with the content itself",
        )
    if info.st_size > LIMITS.file_bytes:
        raise FileRefusal(
            f"{relative!r} is {size(info.st_size)} (at most {size(LIMITS.file_bytes)} is read)",
            "a spec's policies, schemas and templates are small text files",
        )
    return target


def _short(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text):,} characters)"


def read_bounded(path: Path, limit: int = LIMITS.file_bytes, name: str = "") -> bytes:
    """The bytes of regular file `path`, at most `limit` of them; `FileRefusal` otherwise (whose
    message calls the file `name`, by default its path).

    Opened without blocking (a FIFO swapped in does not hang) and checked on the open descriptor.
    """
    name = name or _short(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefusal(f"{name} does not exist", missing=True) from None
    except OSError as exc:
        reason = "the path is too long" if exc.errno == errno.ENAMETOOLONG else exc.strerror
        raise FileRefusal(f"cannot read {name}: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefusal(
                f"{name} is {_kind(info.st_mode)}, not a regular file",
                "refer to a file with the content itself",
            )
        if info.st_size > limit:
            raise FileRefusal(f"{name} is {size(info.st_size)} (at most {size(limit)})")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileRefusal(f"{name} grew past {size(limit)} while being read")
        return b"".join(chunks)
    except OSError as exc:
        raise FileRefusal(f"cannot read {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
