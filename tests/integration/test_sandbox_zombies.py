"""A zombie is not a leftover: an orphaned process stays one until init reaps it (later under
load), and `down` must not report it, or wait for it, as a process still running."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from trustproof.sandbox.procinfo import group_alive, running

pytestmark = pytest.mark.integration


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_zombie_and_its_group_do_not_count_as_running() -> None:
    child = subprocess.Popen(["true"], start_new_session=True)  # not reaped: it becomes a zombie
    try:
        deadline = time.monotonic() + 10
        while state_of(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state_of(child.pid) == "Z"
        assert not running(child.pid)
        assert not group_alive(child.pid)  # the group still "exists" for killpg(pgid, 0)
    finally:
        child.wait()


def test_the_twin_a_running_process_and_its_group_count() -> None:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert running(child.pid)
        assert group_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not running(child.pid)
    assert not group_alive(child.pid)
