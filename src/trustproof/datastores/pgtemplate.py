"""A cached, freshly-initdb'd data directory, copied per run: cold start without `initdb`.

`initdb` takes about half a second; copying its result takes a tenth of that. So `initdb` runs
once per (PostgreSQL version, initdb options) into the user's cache::

    $XDG_CACHE_HOME/trustproof/pg-template-<version>-<hash of the options>/   (or ~/.cache/...)

and every run copies it (`copy_template`) into its own directory. The template holds no secret:
the admin role has no password, and TLS material and access rules are written per run, outside it.

Creation is atomic and safe under concurrency: `initdb` writes into a uniquely named staging
directory beside the final one, which is then renamed into place. Two creators racing both run
`initdb`; the first rename wins and the loser deletes its copy. A reader therefore sees either no
template or a complete one, never a half-written one.

When the controller is root, `initdb` runs as ``postgres`` in a scratch directory that account
can reach (the cache under root's home is closed to it), and the controller copies the result into
its cache; only the controller ever reads the cache, and each per-run copy is handed to the server
account.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgaccount import ServerAccount, scratch_root
from trustproof.datastores.pgbinaries import PgBinaries
from trustproof.datastores.pgconfig import ADMIN_ROLE

INITDB_OPTIONS: tuple[str, ...] = (
    f"--username={ADMIN_ROLE}",
    "--encoding=UTF8",
    "--locale=C",  # deterministic sorting and messages, and no locale package needed
    "--auth-local=trust",  # replaced per run by our own pg_hba.conf (hba_file)
    "--auth-host=reject",
    "--wal-segsize=1",  # 1 MB WAL segments instead of 16 MB: less to copy per run
    "--no-sync",  # a cache entry: should a crash corrupt it, delete the cache directory
    "--no-instructions",
)
INITDB_TIMEOUT = 120.0


@dataclass(frozen=True)
class Template:
    """A ready template directory; `seconds` is what creating it cost (0.0 when reused)."""

    path: Path
    created: bool
    seconds: float


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/trustproof``, or ``~/.cache/trustproof`` (XDG Base Directory spec)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "trustproof"


def template_name(version: str, options: tuple[str, ...] = INITDB_OPTIONS) -> str:
    """The cache key: a different version or different initdb options is a different template."""
    digest = hashlib.sha256("\0".join(options).encode()).hexdigest()[:12]
    return f"pg-template-{version}-{digest}"


def is_complete(path: Path) -> bool:
    """Whether `path` looks like a whole data directory (a rename only ever publishes whole ones;
    this catches a cache someone pruned by hand)."""
    return (path / "PG_VERSION").is_file() and (path / "global" / "pg_control").is_file()


def ensure_template(
    binaries: PgBinaries, account: ServerAccount, cache: Path | None = None
) -> Template:
    """The template for `binaries`' version, created (once) if the cache does not have it."""
    cache = cache if cache is not None else cache_root()
    final = cache / template_name(binaries.version())
    if is_complete(final):
        return Template(final, created=False, seconds=0.0)
    started = time.perf_counter()
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        if final.exists():  # incomplete: move it aside first, so the rename below can succeed
            _discard(final, cache)
        staging = cache / f".{final.name}.{secrets.token_hex(6)}.tmp"
        try:
            _initdb_into(staging, binaries, account)
            _publish(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise DatastoreError(
            f"could not create the PostgreSQL template in {cache}: {exc.strerror or exc}",
            "is the cache directory writable? Set XDG_CACHE_HOME to move it.",
        ) from exc
    return Template(final, created=True, seconds=time.perf_counter() - started)


def copy_template(template: Path, data: Path, account: ServerAccount) -> None:
    """Copy the template to `data` (which must not exist) and hand it to the server account."""
    try:
        shutil.copytree(template, data, symlinks=True)
        account.own_tree(data)
        os.chmod(data, 0o700)  # PostgreSQL refuses a data directory others can read
    except OSError as exc:
        raise DatastoreError(
            f"could not copy the PostgreSQL template {template} to {data}: {exc.strerror or exc}",
            "is the run directory on a local, writable disk with some free space?",
        ) from exc


def _initdb_into(staging: Path, binaries: PgBinaries, account: ServerAccount) -> None:
    """Run initdb so that its result ends up at `staging`, owned by the controller."""
    if not account.switch:
        _run_initdb(staging, binaries, account, cwd=staging.parent)
        return
    scratch = account.scratch_dir("trustproof-initdb-", scratch_root())
    try:
        _run_initdb(scratch / "data", binaries, account, cwd=scratch)
        shutil.copytree(scratch / "data", staging, symlinks=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_initdb(data: Path, binaries: PgBinaries, account: ServerAccount, cwd: Path) -> None:
    command = [str(binaries.initdb), "-D", str(data), *INITDB_OPTIONS]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=INITDB_TIMEOUT,
            check=False,
            **account.popen_options(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatastoreError(
            f"could not run {binaries.initdb}: {exc}", "is the PostgreSQL installation intact?"
        ) from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise DatastoreError(
            f"initdb failed (exit code {result.returncode}) creating the PostgreSQL template:\n"
            f"{tail}",
            "run the command by hand to see the whole output: " + " ".join(command),
        )


def _publish(staging: Path, final: Path) -> None:
    """Rename `staging` to `final`; if another creator got there first, theirs stands."""
    try:
        os.rename(staging, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not is_complete(final):
            raise


def _discard(path: Path, cache: Path) -> None:
    aside = cache / f".{path.name}.{secrets.token_hex(6)}.broken"
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, aside)
    shutil.rmtree(aside, ignore_errors=True)
