"""The reaper: a small process that outlives the controller and cleans up if the controller dies.

    reaper = Reaper.spawn(run, registry)     # at the start of a sandbox, before any key exists
    ...
    reaper.dismiss()                         # after a clean stop: nothing is left to do

It runs ``python -m trustproof.sandbox.reaper RUN_DIR PID START_TIME GUARD_FD`` in its own session
(so nothing aimed at the controller's process group reaches it) and waits for the controller — that
pid with that kernel start time — to end, by a pidfd (no polling). Then it waits for the guard: the
read end of a pipe whose write end (`Reaper.guard`) the controller holds and hands to each child
that makes something the reaper must delete by name (``ip netns add``, see `netns.NetNamespace`).
A child in flight when the controller is SIGKILLed would otherwise make its namespace just after
the reaper looked for it, and leave it behind with no ledger line left to find it by: the pipe
reads end-of-file only once the last holder has exited (bounded by `GUARD_TIMEOUT_SECONDS`, for a
process that forked without exec and kept the pipe). If the controller ends without
dismissing it (SIGKILL, a crash, the OOM killer), the reaper does what `trustproof down` would:
SIGKILL every process group the run recorded (never one whose number now names another process;
see `PidRegistry`), remove the run's containers (`sandbox.containers.remove_recorded`), delete
the directories the run owns outside the run directory (PostgreSQL homes, with their server
keys) and every key the run wrote. Then it exits. Services and PostgreSQL
also die on their own with the controller (`trustproof.parentdeath`); the reaper catches what that
does not reach: what they spawned, and the key files.

A dismissed reaper (SIGTERM) exits at once without touching anything: the controller's `stop`
already cleaned up, and the run directory may be about to be reused. What the reaper did goes to
``logs/reaper.log``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from trustproof.sandbox.backend import PidRegistry, kill_group
from trustproof.sandbox.netns import remove_recorded
from trustproof.sandbox.procinfo import start_time
from trustproof.sandbox.rundir import RunDir

DISMISS_TIMEOUT_SECONDS = 5.0
GUARD_TIMEOUT_SECONDS = 15.0  # longer than any `ip` call the controller waits for (netns)
PREVIOUS_TIMEOUT_SECONDS = 15.0
NAME = "reaper"


@dataclass
class Reaper:
    """The controller's handle on its reaper. `guard`: the write end of the reaper's guard pipe
    (see the module docstring), to pass (``pass_fds``) to children the reaper must outwait."""

    process: subprocess.Popen[bytes]
    guard: int

    @classmethod
    def spawn(cls, run: RunDir, registry: PidRegistry) -> Reaper:
        """Start the reaper for this process (the controller) and record it in the registry
        (so `down` can end it too)."""
        me = os.getpid()
        started = start_time(me)
        if started is None:  # /proc is how every pid check here works; without it, no reaper
            raise OSError("cannot read this process's start time from /proc")
        log = run.log(NAME)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        guard_read, guard = os.pipe()  # both close-on-exec: only the children named get one
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "trustproof.sandbox.reaper",
                    str(run.path),
                    str(me),
                    started,
                    str(guard_read),
                ],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,  # not in the controller's group, no parent-death signal
                close_fds=True,  # nothing of the controller's (listening sockets) stays open
                pass_fds=(guard_read,),
            )
        except BaseException:
            os.close(guard)
            raise
        finally:
            os.close(fd)
            os.close(guard_read)
        registry.add(process.pid, NAME)
        return cls(process, guard)

    @property
    def pid(self) -> int:
        return self.process.pid

    def dismiss(self) -> None:
        """Tell the reaper the controller stopped cleanly; wait for it to exit."""
        if self.guard >= 0:
            os.close(self.guard)
            self.guard = -1
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DISMISS_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_previous(run: RunDir, timeout: float = PREVIOUS_TIMEOUT_SECONDS) -> None:
    """Wait until no reaper recorded in `run` runs any more: a new sandbox in the same run
    directory must not start while the reaper of a controller that died there is still cleaning
    (it would delete the new run's keys). `OSError` if one is still at work after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        working = [
            pid
            for pid, name in PidRegistry(run.pids).entries()
            if name == NAME and pid != os.getpid() and _running(pid)
        ]
        if not working:
            return
        if time.monotonic() > deadline:
            raise OSError(
                f"the reaper of an earlier sandbox in {run.path} (pid {working[0]}) is still "
                "cleaning up; run `trustproof down` there, or use another run directory"
            )
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reaper whose parent died waits to be collected by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_exit(pid: int, started: str) -> None:
    """Return once the process `pid` that started at `started` has ended (at once if it has
    already, or if the pid now names another process)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if start_time(pid) != started:  # gone before the pidfd was opened, pid reused
            return
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll():
            pass
    finally:
        os.close(pidfd)


def wait_for_holders(guard: int, timeout: float = GUARD_TIMEOUT_SECONDS) -> bool:
    """Return once every process holding the guard pipe's write end has exited (end-of-file on
    `guard`, its read end), or after `timeout`; whether they all had. Nobody writes to it."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(guard, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        if poller.poll(left * 1000) and not os.read(guard, 512):
            return True
    return False


def reap(run: RunDir) -> list[str]:
    """Kill what the run recorded, delete its outside directories and its keys; returns what
    was killed (for the log)."""
    killed = []
    me = os.getpid()
    for pgid, name in PidRegistry(run.pids).entries():
        if pgid != me and kill_group(pgid, signal.SIGKILL):
            killed.append(f"{name} (process group {pgid})")
    killed += remove_containers(run)
    run.remove_externals()
    run.remove_secrets()
    killed += [f"network namespace {name}" for name in remove_recorded(run.path)]
    return killed


def remove_containers(run: RunDir) -> list[str]:
    """Remove the run's containers (`sandbox.containers`), if it recorded any."""
    if not (run.path / "containers").exists():
        return []
    from trustproof.sandbox.containers import remove_recorded  # noqa: PLC0415 (rarely needed)

    return remove_recorded(run)


def _dismissed(signum: int, _: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or not argv[1].isdigit() or not argv[3].isdigit():
        print(
            "usage: python -m trustproof.sandbox.reaper RUN_DIR PID START_TIME GUARD_FD",
            file=sys.stderr,
        )
        return 2
    run, pid, started, guard = RunDir(Path(argv[0])), int(argv[1]), argv[2], int(argv[3])
    signal.signal(signal.SIGTERM, _dismissed)
    wait_for_exit(pid, started)
    if not wait_for_holders(guard):
        print(
            f"a process still held the reaper's guard after {GUARD_TIMEOUT_SECONDS:g} s; "
            "cleaning up anyway",
            flush=True,
        )
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on, finish the job
    killed = reap(run)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    what = ", ".join(killed) if killed else "no process was left"
    print(
        f"{stamp} the controller (pid {pid}) ended without stopping the sandbox; "
        f"killed: {what}; removed the run's key material",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
