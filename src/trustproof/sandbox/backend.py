"""Where the user's services run: the extension point `Backend` (start / stop), the local-process
backend used today, and the in-memory fake beside it for unit tests of the controller.

The local backend starts each service as a child process in its own process group (so stopping it
stops everything it spawned) that gets SIGKILL if the controller dies (`trustproof.parentdeath`;
the reaper then kills the rest of its group), records the group in the run's pid registry *before*
anything else can fail (so the reaper and `trustproof down` can clean up after a SIGKILLed
controller), and copies stdout/stderr line by line through the scrubber into the service's
log, encrypted at rest under the run's key-encryption key (`trustproof.audit.servicelog`:
``logs/<service>.log.tpa``; read it back with ``trustproof audit logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from trustproof.parentdeath import die_with_parent
from trustproof.sandbox.procinfo import start_time
from trustproof.scrub import scrub

if TYPE_CHECKING:  # imported where used: the reaper imports this module and must start fast
    from trustproof.audit.servicelog import ServiceLogSink

STOP_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class ProcessSpec:
    """What to run for one service."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    log_file: Path  # encrypted: `trustproof.audit.servicelog` (``RunDir.service_log``)
    image: str | None = None  # a container image to run (`argv`: its command, or empty)
    netns_path: Path | None = None  # the network namespace to run in (isolated backend)
    mounts: tuple[Path, ...] = ()  # directories a container sees read-only at the same path


@dataclass
class Handle:
    """A started service. `pid` is also its process-group id."""

    name: str
    pid: int
    log_file: Path
    returncode: int | None = None
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _log: ServiceLogSink | None = field(default=None, repr=False)
    container_id: str | None = None  # set by the container backend

    def running(self) -> bool:
        return self.exit_code is None

    async def last_lines(self, count: int = 15) -> str:
        """The last lines of its log, decrypted in memory, for an error's hint: once it has
        exited, after its remaining output was copied (up to a second)."""
        if not self.running() and self._pumps:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*self._pumps)), 1.0)
        if self._log is None:
            return "    | (no log)"
        return await asyncio.to_thread(self._log.tail, count)

    def flush_log(self) -> None:
        """Write the output that waits in memory (for a reader of the file)."""
        if self._log is not None:
            self._log.flush()

    @property
    def exit_code(self) -> int | None:
        if self._process is not None:
            return self._process.returncode
        return self.returncode


class Backend(Protocol):
    async def start(self, spec: ProcessSpec) -> Handle: ...

    async def stop(self, handle: Handle) -> None: ...


class PidRegistry:
    """One line per process group this run started (``pgid starttime name``), appended as soon
    as the process exists. The reaper and `trustproof down` read it when the controller is gone.

    A group may be signalled while its leader is still the very process recorded (same start
    time) — or while its leader is gone but members may remain (a service's children after the
    service died with the controller): Linux does not hand out a number still in use as a process
    group id, so as long as the group exists it is ours. A live process with that pid and another
    start time means the number was reused: never signalled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, pgid: int, name: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{pgid} {start_time(pgid) or '-'} {name}\n")

    def entries(self) -> list[tuple[int, str]]:
        """Recorded groups that can only hold this run's processes, if any: the leader is the
        recorded process, or gone (see the class docstring)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            pgid, started, name = [*line.split(" ", 2), "", ""][:3]
            if pgid.isdigit() and started != "-" and start_time(int(pgid)) in (started, None):
                out.append((int(pgid), name))
        return out

    def clear(self) -> None:
        """Forget every entry (after a clean stop: nothing is left to kill)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


LogKey = Callable[[], bytes]
"""The run's key-encryption key, asked for when a service starts (the sandbox loads it first)."""


def open_service_log(spec: ProcessSpec, log_key: LogKey) -> ServiceLogSink:
    """The encrypted log a service's output goes to (0600, a symlink in its place refused)."""
    from trustproof.audit.servicelog import ServiceLogSink  # noqa: PLC0415 (see the imports)

    return ServiceLogSink(spec.log_file, log_key(), spec.name)


class LocalProcessBackend:
    """Services as child processes on this machine."""

    def __init__(self, registry: PidRegistry, log_key: LogKey) -> None:
        self.registry = registry
        self.log_key = log_key

    async def start(self, spec: ProcessSpec) -> Handle:
        log = open_service_log(spec, self.log_key)
        try:
            process = await asyncio.create_subprocess_exec(
                *die_with_parent(spec.argv),
                cwd=spec.cwd,
                env=dict(spec.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError:
            log.close()
            raise
        self.registry.add(process.pid, spec.name)
        handle = Handle(spec.name, process.pid, spec.log_file, _process=process, _log=log)
        if process.stdout is None or process.stderr is None:  # impossible with PIPE
            raise RuntimeError("the child's output pipes are missing")
        handle._pumps = [
            asyncio.create_task(_pump(process.stdout, log)),
            asyncio.create_task(_pump(process.stderr, log)),
        ]
        return handle

    async def stop(self, handle: Handle) -> None:
        process = handle._process
        if process is None:
            return
        if process.returncode is None:
            kill_group(handle.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
            except TimeoutError:
                kill_group(handle.pid, signal.SIGKILL)
                await process.wait()
        # Whatever the service itself spawned goes with its group.
        kill_group(handle.pid, signal.SIGKILL)
        handle.returncode = process.returncode
        for pump in handle._pumps:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, 1.0)
        if handle._log is not None:
            await asyncio.to_thread(handle._log.close)


async def _pump(stream: asyncio.StreamReader, log: ServiceLogSink) -> None:
    """Copy a child's output into its log, scrubbed, a line at a time (the log gathers lines
    into encrypted chunks: `trustproof.audit.servicelog`).

    A private key printed over several lines is dropped from its BEGIN line through its END
    line (scrubbing line by line would keep the base64 body); an over-long line is cut, not
    allowed to stop the copying (a child whose pipe is never read would hang).
    """
    in_key = False
    while True:
        try:
            line = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            line = exc.partial
        except asyncio.LimitOverrunError as exc:
            line = await stream.read(exc.consumed) + b" [line cut]\n"
        if not line:
            return
        text = line.decode("utf-8", "replace")
        if _PEM_BEGIN.search(text):
            in_key = not _PEM_END.search(text)
            text = "[REDACTED PRIVATE KEY]\n"
        elif in_key:
            in_key = not _PEM_END.search(text)
            continue
        log.write(scrub(text))


_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")


class FakeBackend:
    """Stand-in for the controller's tests: records starts and stops, can be told to fail, and
    with `listen=True` opens a trivial listener on the service's port so health checks pass."""

    def __init__(self, fail: frozenset[str] = frozenset(), *, listen: bool = False) -> None:
        self.fail = fail
        self.listen = listen
        self.started: list[ProcessSpec] = []
        self.stopped: list[str] = []
        self._servers: dict[str, asyncio.Server] = {}
        self._next_pid = 10_000

    async def start(self, spec: ProcessSpec) -> Handle:
        if spec.name in self.fail:
            raise OSError(f"cannot start {spec.name} (fake failure)")
        self.started.append(spec)
        if self.listen:
            self._servers[spec.name] = await asyncio.start_server(
                _answer_ok, spec.env["TRUSTPROOF_HOST"], int(spec.env["TRUSTPROOF_PORT"])
            )
        self._next_pid += 1
        return Handle(spec.name, self._next_pid, spec.log_file)

    async def stop(self, handle: Handle) -> None:
        self.stopped.append(handle.name)
        handle.returncode = 0
        server = self._servers.pop(handle.name, None)
        if server is not None:
            server.close()
            await server.wait_closed()


async def _answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The fake service: any request gets an empty 200 (enough for a health check)."""
    await reader.readline()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()
