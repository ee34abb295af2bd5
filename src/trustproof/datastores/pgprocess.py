"""The `postgres` process: spawning it, knowing when it is ready, reloading it, stopping it.

`postgres` runs in the foreground as our child, in its own session (so its process group holds
the postmaster and every backend it forks), its output appended to the run's log file, and dies
with the thread that spawned it (see `trustproof.parentdeath`). Readiness
is read from ``postmaster.pid`` — the postmaster writes ``ready`` on its 8th line once it accepts
connections, which is what `pg_ctl -w` waits for too — so waiting costs no connection attempts.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import IO, LiteralString

import psycopg

from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgaccount import ServerAccount
from trustproof.datastores.pgbinaries import PgBinaries
from trustproof.parentdeath import die_with_parent

POLL = 0.005
RELOAD_PROBLEMS = re.compile(r"was not reloaded|contains errors|could not (load|open|access)")
"""Log lines by which the postmaster says a reload failed (it then keeps the old settings)."""


def free_port(host: str) -> int:
    """A port the kernel says is free on `host` now (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def spawn(
    binaries: PgBinaries, account: ServerAccount, data: Path, conf: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``postgres -D data -c config_file=conf`` as `account`, in a new session, output to `log`.

    The postmaster gets SIGKILL when the thread that spawns it ends (`die_with_parent`), so a
    SIGKILLed controller does not leave it listening; its backends notice the postmaster's death
    and exit. The account switch happens before the signal is set, so it holds for ``postgres``.
    """
    command = [str(binaries.postgres), "-D", str(data), "-c", f"config_file={conf}"]
    return subprocess.Popen(
        die_with_parent(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data.parent,
        start_new_session=True,  # its own process group: terminate() can kill every backend
        **account.popen_options(),
    )


def wait_ready(
    process: subprocess.Popen[bytes], data: Path, log: Path, timeout: float, port_hint: str
) -> None:
    """Return once the postmaster reports ``ready``; `DatastoreError` (quoting the log) if it
    exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while (code := process.poll()) is None:
        if postmaster_status(data / "postmaster.pid") == "ready":
            return
        if time.monotonic() > deadline:
            raise DatastoreError(
                f"PostgreSQL was not ready after {timeout:g} s; its log ends with:\n{tail(log)}",
                f"the whole log is {log}",
            )
        time.sleep(POLL)
    raise DatastoreError(
        f"PostgreSQL exited with code {code} while starting; its log ends with:\n{tail(log)}",
        port_hint,
    )


def postmaster_status(pidfile: Path) -> str:
    """Line 8 of postmaster.pid: ``starting``, ``ready``, ``stopping`` or ``standby``."""
    try:
        lines = pidfile.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return "absent"
    return lines[7].strip() if len(lines) >= 8 else "starting"


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT (PostgreSQL's "fast" shutdown) to the postmaster; if it has not exited after
    `timeout` seconds, SIGKILL its whole process group. Always reaps it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        # Not reaped yet, so the group id cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def reload_and_confirm(dsn: str, log: Path, timeout: float, what: str) -> None:
    """``pg_reload_conf()``, then wait until the postmaster has reloaded; raise if it logged that
    it refused the new files.

    A backend inherits ``pg_conf_load_time()`` from the postmaster when forked, and the postmaster
    forks only between signal handlers; so once a fresh connection reports a newer load time, the
    reload (SSL context included) is complete, and one more connection makes sure of it.
    """
    offset = log.stat().st_size
    before = load_time(dsn)
    query_one(dsn, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + timeout
    while load_time(dsn) <= before:
        if time.monotonic() > deadline:
            raise DatastoreError(
                f"PostgreSQL did not reload {what} within {timeout:g} s",
                f"see the PostgreSQL log {log}",
            )
        time.sleep(POLL)
    query_one(dsn, "SELECT 1")
    with log.open("rb") as handle:
        handle.seek(offset)
        added = handle.read().decode("utf-8", "replace")
    problems = [line for line in added.splitlines() if RELOAD_PROBLEMS.search(line)]
    if problems:
        raise DatastoreError(
            f"PostgreSQL refused {what} and keeps the previous one:\n" + "\n".join(problems),
            "check that the certificate and key match and that the files are PEM",
        )


def load_time(dsn: str) -> datetime:
    """When the configuration was last loaded, as a newly forked backend sees it."""
    loaded = query_one(dsn, "SELECT pg_conf_load_time()")
    if not isinstance(loaded, datetime):
        raise DatastoreError(f"pg_conf_load_time() returned {loaded!r}, expected a timestamp")
    return loaded


def query_one(dsn: str, query: LiteralString) -> object:
    """The first column of the first row of `query`, on a fresh admin connection."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        raise DatastoreError(
            f"the admin connection over the unix socket failed: {str(exc).strip()}",
            "see the PostgreSQL log in the run directory",
        ) from exc
    return row[0] if row else None


def tail(log: Path, lines: int = 12) -> str:
    """The last `lines` lines of `log`, indented, for an error message (scrubbed by it)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"    (the log {log} cannot be read: {exc.strerror})"
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])
