"""`up` in the foreground or detached, and `down` — including after the controller was SIGKILLed.

Ctrl-C (or SIGTERM) at any moment tears everything down: during start the start is cancelled
(which stops what was started), afterwards the sandbox stops in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustproof.errors import SandboxError
from trustproof.sandbox.backend import PidRegistry, kill_group
from trustproof.sandbox.control import ControlServer, ProbeHandler, controller_alive, request
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.netns import remove_recorded
from trustproof.sandbox.procinfo import group_alive
from trustproof.sandbox.readiness import last_lines
from trustproof.sandbox.reaper import remove_containers
from trustproof.sandbox.rundir import RunDir

DETACH_TIMEOUT_SECONDS = 60.0
RUN_BEGUN = "TRUSTPROOF_RUN_BEGUN"
"""Set by `start_detached` for its controller: the run directory it already began."""
DOWN_TIMEOUT_SECONDS = 20.0


def refuse_if_running(run: RunDir) -> None:
    state = run.read_state()
    if state and state.get("status") != "stopped" and controller_alive(state):
        raise SandboxError(
            f"a sandbox is already running in {run.path} "
            f"(controller pid {state['controller_pid']})",
            "stop it first with `trustproof down`, or use another --run-dir",
        )


async def run_foreground(
    spec_path: Path,
    run_dir: Path,
    on_ready: Callable[[Sandbox], None],
    on_probe: ProbeHandler | None = None,
) -> None:
    run = RunDir.create(run_dir)
    refuse_if_running(run)
    if os.environ.pop(RUN_BEGUN, "") != str(run.path):  # else `start_detached` did it for us
        run.begin()
    sandbox = Sandbox.from_file(spec_path, run_dir=run_dir)
    control = ControlServer(sandbox, on_probe)
    loop = asyncio.get_running_loop()
    starting = asyncio.create_task(sandbox.start())

    def interrupt() -> None:
        if not starting.done():
            starting.cancel()
        control.shutdown.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        try:
            await starting
        except asyncio.CancelledError:
            raise SandboxError(
                "interrupted while starting; everything started was stopped"
            ) from None
        await control.start()
        on_ready(sandbox)
        await control.shutdown.wait()
    finally:
        await control.close()
        await sandbox.stop()
        state = sandbox.run.read_state() or {}
        state["status"] = "stopped"
        sandbox.run.write_state(state)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def start_detached(spec_path: Path, run_dir: Path) -> dict[str, Any]:
    """Start a controller in the background; return its state once everything is ready."""
    run = RunDir.create(run_dir)
    refuse_if_running(run)
    run.begin()  # the last run's state and logs move to previous/: none is read as this run's
    log_path = run.log("controller")
    with run.open_log("controller") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "trustproof", "up", str(spec_path), "--run-dir", str(run.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, RUN_BEGUN: str(run.path)},
        )
    PidRegistry(run.pids).add(child.pid, "controller")
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = run.read_state()
        if state and state.get("controller_pid") == child.pid and run.control_socket.exists():
            return state
        if child.poll() is not None:
            raise SandboxError(
                f"the sandbox did not start (controller exit code {child.returncode})",
                f"controller log ({log_path}):\n{last_lines(log_path, 25)}",
            )
        time.sleep(0.05)
    kill_group(child.pid, signal.SIGTERM)
    raise SandboxError(
        f"the sandbox was not ready after {DETACH_TIMEOUT_SECONDS:.0f} s",
        f"controller log ({log_path}):\n{last_lines(log_path, 25)}",
    )


def down(run_dir: Path) -> list[str]:
    """Stop the sandbox in `run_dir`; returns what had to be killed by force."""
    run = RunDir(run_dir.absolute())
    if not run.path.is_dir():
        raise SandboxError(f"no run directory at {run.path}", "pass the --run-dir used with up")
    state = run.read_state() or {}
    controller = state.get("controller_pid")
    forced: list[str] = []
    try:
        asyncio.run(request(run.control_socket, "POST", "/shutdown", timeout=5))
        deadline = time.monotonic() + DOWN_TIMEOUT_SECONDS
        while controller_alive(state) and time.monotonic() < deadline:
            time.sleep(0.05)
    except SandboxError:
        pass  # the controller is gone or stuck: clean up by force below
    if controller_alive(state):
        assert isinstance(controller, int)  # noqa: S101 (controller_alive checked)
        os.kill(controller, signal.SIGKILL)
        forced.append(f"controller (pid {controller})")
    for pgid, name in PidRegistry(run.pids).entries():
        living = group_alive(pgid)  # before the kill: zombies awaiting init are not leftovers
        if kill_group(pgid, signal.SIGKILL) and living:
            forced.append(f"{name} (process group {pgid})")
    forced += remove_containers(run)
    run.remove_externals()
    run.remove_secrets()
    forced += [f"network namespace {name}" for name in remove_recorded(run.path)]
    if state:
        state["status"] = "stopped"
        run.write_state(state)
    return forced
