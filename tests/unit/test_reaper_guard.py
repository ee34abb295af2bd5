"""The reaper's guard: a child still making something when the controller is SIGKILLed (an
``ip netns add`` in flight) ends before the reaper deletes what the run recorded.

Stand-in processes play the controller and the child (no namespaces, no root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from shlex import quote
from typing import Any

import pytest

from trustproof.sandbox import netns
from trustproof.sandbox.procinfo import start_time
from trustproof.sandbox.reaper import wait_for_holders
from trustproof.sandbox.rundir import RunDir


def holder(guard: int, *argv: str) -> subprocess.Popen[bytes]:
    """A process that holds `guard` (the pipe's write end) until its stdin is closed, then runs
    `argv` (if any) and exits."""
    script = "read _; " + ('exec "$@"' if argv else "exit 0")
    return subprocess.Popen(
        ["sh", "-c", script, "sh", *argv], stdin=subprocess.PIPE, pass_fds=(guard,)
    )


def release(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(30) == 0


def test_the_guard_reads_end_of_file_only_once_its_last_holder_exited() -> None:
    guard_read, guard = os.pipe()
    first, second = holder(guard), holder(guard)
    os.close(guard)  # the holders' copies are what is left
    try:
        release(first)
        assert wait_for_holders(guard_read, timeout=0.2) is False  # the twin: one still holds it
        release(second)
        assert wait_for_holders(guard_read, timeout=30) is True
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()
        os.close(guard_read)


def test_the_reaper_outwaits_a_child_still_at_work_when_the_controller_died(
    tmp_path: Path,
) -> None:
    # The child writes a key only after the controller is dead: a reaper that did not wait for
    # it would delete the keys first and leave this one behind.
    run = RunDir.create(tmp_path / "run")
    late_key = run.path / "identities" / "late.key"
    controller = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    guard_read, guard = os.pipe()
    maker = holder(
        guard,
        "sh",
        "-c",
        f"mkdir -p {quote(str(late_key.parent))} && echo k > {quote(str(late_key))}",
    )
    started = start_time(controller.pid)
    assert started is not None
    reaper = subprocess.Popen(
        [
            *(sys.executable, "-m", "trustproof.sandbox.reaper"),
            *(str(run.path), str(controller.pid), started, str(guard_read)),
        ],
        stdout=subprocess.PIPE,
        pass_fds=(guard_read,),
    )
    os.close(guard_read)
    os.close(guard)
    try:
        controller.kill()
        controller.wait()
        with pytest.raises(subprocess.TimeoutExpired):
            reaper.wait(0.5)  # the controller is gone, but the maker still holds the guard
        release(maker)
        out, _ = reaper.communicate(timeout=30)
        assert reaper.returncode == 0
        assert b"ended without stopping the sandbox" in out
        assert not late_key.exists()
    finally:
        for process in (controller, maker, reaper):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_the_reaper_refuses_a_command_line_without_its_guard(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trustproof.sandbox.reaper", str(tmp_path), "1", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage:")


def test_ip_netns_add_holds_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(netns, "run_ip", lambda args, **kw: calls.append((args, kw)) or "")
    netns.NetNamespace.create("tp-0123abcd-api", lo=False, guard=7)
    netns.NetNamespace.create("tp-0123abcd-db", lo=False)
    assert [(args, kw.get("pass_fds")) for args, kw in calls] == [
        (["netns", "add", "tp-0123abcd-api"], (7,)),
        (["netns", "add", "tp-0123abcd-db"], ()),
    ]
