"""Finding the PostgreSQL server programs (`initdb`, `postgres`) and their version.

Debian installs them under ``/usr/lib/postgresql/<major>/bin`` and keeps that directory off
``PATH``; other systems (and CI images, Homebrew, a source build) put them on ``PATH``. ``PATH``
wins, so a user can pick a build explicitly; otherwise the highest installed major version is used.
Both programs must come from the same directory: an `initdb` of one major version makes a data
directory the `postgres` of another refuses to open.

`pg_ctl` is looked up too and reported, but nothing depends on it: the sandbox runs `postgres` in
the foreground as its own child, so that it can kill the whole process group.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trustproof.datastores.errors import INSTALL_HINT, DatastoreError

DEFAULT_ROOTS = ("/usr/lib/postgresql",)
REQUIRED = ("initdb", "postgres")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgBinaries:
    """The server programs of one PostgreSQL installation (all from `directory`)."""

    directory: Path
    initdb: Path
    postgres: Path
    pg_ctl: Path | None

    def version(self) -> str:
        """``major.minor`` of this installation, e.g. ``15.18`` (asks `postgres --version` once)."""
        return _version_of(self.postgres)


def parse_version(output: str) -> str:
    """``15.18`` from ``postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)``.

    Development builds print ``17devel``: that gives ``17``.
    """
    match = _VERSION.search(output)
    if not match:
        raise DatastoreError(
            f"could not read the PostgreSQL version from {output.strip()[:120]!r} "
            "(expected text such as 'postgres (PostgreSQL) 15.18')",
            "is the 'postgres' found first really the PostgreSQL server?",
        )
    major, minor = match.groups()
    return f"{major}.{minor}" if minor else major


@functools.lru_cache(maxsize=8)
def _version_of(postgres: Path) -> str:
    try:
        result = subprocess.run(
            [str(postgres), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatastoreError(
            f"could not run {postgres} --version: {exc}", "is the PostgreSQL installation intact?"
        ) from exc
    return parse_version(result.stdout)


def _executable(directory: Path, name: str) -> Path | None:
    candidate = directory / name
    try:
        found = candidate.is_file() and os.access(candidate, os.X_OK)
    except OSError:  # a PATH entry we may not enter (say another user's home)
        return None
    return candidate if found else None


def _complete(directory: Path) -> PgBinaries | None:
    initdb, postgres = (_executable(directory, name) for name in REQUIRED)
    if initdb is None or postgres is None:
        return None
    return PgBinaries(directory, initdb, postgres, _executable(directory, "pg_ctl"))


def _major_key(directory: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin``: numeric, so 15 beats 9.6."""
    parts = re.findall(r"\d+", directory.parent.name)
    return tuple(int(p) for p in parts) or (-1,)


def versioned_directories(roots: Sequence[str | Path]) -> list[Path]:
    """``<root>/<version>/bin`` directories under each root, highest version first."""
    found: list[Path] = []
    for root in roots:
        try:
            found.extend(p / "bin" for p in Path(root).iterdir() if (p / "bin").is_dir())
        except OSError:
            continue
    return sorted(found, key=_major_key, reverse=True)


def find_binaries(
    path: str | None = None, roots: Sequence[str | Path] = DEFAULT_ROOTS
) -> PgBinaries:
    """The first directory on `path` (default ``$PATH``) holding both `initdb` and `postgres`,
    else the highest ``<root>/<version>/bin`` holding both; `DatastoreError` if there is none.
    """
    search = os.environ.get("PATH", "") if path is None else path
    on_path = [Path(entry) for entry in search.split(os.pathsep) if entry]
    candidates = [*on_path, *versioned_directories(roots)]
    for directory in candidates:
        binaries = _complete(directory)
        if binaries is not None:
            return binaries
    seen = {name: [d for d in candidates if _executable(d, name)] for name in REQUIRED}
    missing = [name for name, where in seen.items() if not where]
    looked = f"on PATH and in {', '.join(f'{r}/*/bin' for r in roots)}"
    if len(missing) == 1:
        message = f"the PostgreSQL server program '{missing[0]}' was not found (looked {looked})"
    elif missing:
        message = (
            "the PostgreSQL server programs 'initdb' and 'postgres' were not found "
            f"(looked {looked})"
        )
    else:
        where = "; ".join(f"{name} in {', '.join(map(str, seen[name]))}" for name in REQUIRED)
        message = (
            f"'initdb' and 'postgres' were found, but never in the same directory ({where}); "
            "they must come from one PostgreSQL installation"
        )
    raise DatastoreError(message, INSTALL_HINT)
