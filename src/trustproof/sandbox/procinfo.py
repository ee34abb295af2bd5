"""Which processes still run, read from /proc — standard library only, so that `trustproof
status` and the reaper can ask without importing the rest of the sandbox.

A pid plus its kernel start time names one process for good: pids are reused, start times are
not.
"""

from __future__ import annotations

import os
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone.

    A pid plus its start time names one process for good: pids are reused, start times are not.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def group_alive(pgid: int) -> bool:
    """Whether process group `pgid` has a member that still runs. A zombie does not count: an
    orphan stays one until init reaps it, and signalling its group "succeeds" meanwhile."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return any(pgrp == pgid and state not in _DEAD for pgrp, state in _processes())


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in _DEAD


_DEAD = ("Z", "X")  # /proc/PID/stat states of a process that has ended


def _processes() -> list[tuple[int, str]]:
    """(process group, state) of every process /proc shows."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        found.append((int(fields[2]), fields[0]))
    return found


def group_members(pgid: int) -> frozenset[int]:
    """The live processes of group `pgid` other than its leader: a server's worker processes
    (nginx's workers under its master), empty for a server that is one process."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[2]) == pgid and fields[0] not in _DEAD:
            found.add(int(entry.name))
    return frozenset(found)
