"""Log files in the run directory: 0600 from the moment they exist, whatever the umask; and runs
that never mix (`RunDir.begin`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustproof.sandbox.rundir import RunDir, open_private_log


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave a plainly created file world-readable (0644) or worse."""
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_log_is_created_0600(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    with run.open_log("controller") as log:
        assert mode(run.log("controller")) == 0o600  # already while open, before any write
        log.write(b"line\n")
    assert mode(run.path) == mode(run.logs) == 0o700


@pytest.mark.usefixtures("permissive_umask")
def test_the_plain_way_twin_would_be_world_readable(tmp_path: Path) -> None:
    """The twin: what `Path.open("ab")` (the old way) gives under the same umask."""
    path = tmp_path / "controller.log"
    with path.open("ab"):
        assert mode(path) & 0o044


def test_a_log_left_world_readable_is_set_back_to_0600_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "service.log"
    path.write_bytes(b"earlier\n")
    path.chmod(0o644)
    with open_private_log(path) as log:
        log.write(b"later\n")
    assert mode(path) == 0o600
    assert path.read_bytes() == b"earlier\nlater\n"


def test_a_symlink_in_place_of_a_log_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "service.log").symlink_to(target)
    with pytest.raises(OSError, match="symbolic links"):
        open_private_log(tmp_path / "service.log")


def _last_run(run: RunDir, words: str) -> None:
    with run.open_log("orders") as log:
        log.write(f"{words}\n".encode())
    run.audit.write_text(f'{{"run": "{words}"}}\n')
    (run.path / "results.json").write_text("{}")
    run.write_state({"status": "stopped"})


def test_a_new_run_moves_the_last_runs_evidence_aside(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    _last_run(run, "Traceback of the first run")
    moved = run.begin()
    assert sorted(moved) == ["audit.jsonl", "logs", "results.json", "state.json"]
    assert list(run.logs.iterdir()) == []  # the new run's logs start empty
    assert not run.audit.exists()
    assert run.read_state() is None
    assert (run.previous / "logs" / "orders.log").read_text() == "Traceback of the first run\n"
    assert mode(run.previous) == 0o700


def test_only_the_run_before_is_kept(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    _last_run(run, "first")
    run.begin()
    _last_run(run, "second")
    run.begin()
    assert (run.previous / "logs" / "orders.log").read_text() == "second\n"
    assert run.begin() == []  # nothing of a run here: nothing moved, previous kept
    assert (run.previous / "logs" / "orders.log").read_text() == "second\n"


def test_without_begin_a_log_appends_across_runs(tmp_path: Path) -> None:
    """The failing twin: what a run saw before `begin` existed (the last run's traceback)."""
    run = RunDir.create(tmp_path / "run")
    _last_run(run, "first")
    _last_run(run, "second")
    assert run.log("orders").read_text() == "first\nsecond\n"
