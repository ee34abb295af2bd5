"""`image:` services as containers, through the Docker Engine API (`sandbox.engine`).

    backend = ContainerBackend(run, registry)
    handle = await backend.start(process_spec)     # process_spec.image is set
    await backend.stop(handle)                     # stopped and removed
    backend.close()                                # the engine (a Podman service this run began)

Each container:

* is named ``tp-<run id>-<service>`` and labelled ``io.trustproof.run=<run id>`` (`run_id`: a
  digest of the run directory's path) and ``io.trustproof.service=<service>``;
* is recorded in ``<run>/containers`` (the engine, then its id) *before* it is started, so the
  reaper and `trustproof down` remove it after a SIGKILLed controller (`remove_recorded`); a
  leftover of an earlier run in the same directory is removed before a new one is created;
* uses the network the `ProcessSpec` says: ``netns_path`` (a named network namespace, on the
  isolated backend: ``network_mode="ns:<path>"``, which Podman's compatible API accepts and
  Docker's does not, with ``nameserver 127.0.0.1`` — the namespace's resolver — in its
  ``/etc/resolv.conf`` instead of the host's) or, on the local backend, the host's network,
  where the service listens on its ``host:port`` as a process would;
* sees the directories in ``mounts`` (its identity directory: SVID, key, bundle, CRL, JWKS,
  gateway-proof key — rotated in place — and its rendered templates) read-only at the same
  paths, so every ``TRUSTPROOF_*`` path of its environment is valid inside;
* gets the service's environment without the host's ``PATH``/``HOME``/... (the image's own);
* has its output copied through the scrubber into its encrypted log (``logs/<service>.log.tpa``),
  like a process's;
* has its main process recorded in the pid registry too (a last resort for the reaper).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustproof.errors import SandboxError
from trustproof.sandbox.backend import (
    STOP_GRACE_SECONDS,
    Handle,
    LogKey,
    PidRegistry,
    ProcessSpec,
    _pump,
    open_service_log,
)
from trustproof.sandbox.engine import Engine, connect, podman_conf, podman_env
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import PASSED_THROUGH

if TYPE_CHECKING:
    from trustproof.audit.servicelog import ServiceLogSink

RUN_LABEL = "io.trustproof.run"
SERVICE_LABEL = "io.trustproof.service"
RECORD_FILE = "containers"
HOST_ONLY = frozenset({*PASSED_THROUGH, "PATH"})
"""Variables of the service environment that describe the host, not the container."""


def run_id(run: RunDir) -> str:
    """The run directory's id in container names and labels (12 hex digits of its path)."""
    return hashlib.sha256(str(run.path).encode()).hexdigest()[:12]


def container_name(run: RunDir, service: str) -> str:
    return f"tp-{run_id(run)}-{service}"


def container_env(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in HOST_ONLY}


def network_mode(netns_path: Path | None) -> str:
    return "host" if netns_path is None else f"ns:{netns_path}"


def mounts_of(paths: tuple[Path, ...]) -> dict[str, dict[str, str]]:
    return {str(path): {"bind": str(path), "mode": "ro"} for path in paths}


def _record(run: RunDir, entry: Mapping[str, str]) -> None:
    fd = os.open(run.path / RECORD_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(entry), sort_keys=True) + "\n")


def recorded(run: RunDir) -> list[dict[str, str]]:
    """What `ContainerBackend` wrote to ``<run>/containers``: engine lines and container lines."""
    try:
        text = (run.path / RECORD_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append({str(k): str(v) for k, v in entry.items()})
    return entries


class ContainerBackend:
    """Services as containers; connects to the engine at the first start."""

    def __init__(self, run: RunDir, registry: PidRegistry, log_key: LogKey) -> None:
        self.run = run
        self.registry = registry
        self.log_key = log_key
        self.engine: Engine | None = None
        self._lock = asyncio.Lock()
        self._live: set[str] = set()  # containers created and not removed yet

    async def _engine(self) -> Engine:
        async with self._lock:
            if self.engine is None:
                self.engine = await asyncio.to_thread(connect, self.run, self.registry)
                _record(self.run, {"engine": self.engine.kind, "url": self.engine.url})
            return self.engine

    async def start(self, spec: ProcessSpec) -> Handle:
        if spec.image is None:
            raise SandboxError(f"service {spec.name!r} has no image to run")
        engine = await self._engine()
        if spec.netns_path is not None and engine.kind != "podman":
            raise SandboxError(
                f"service {spec.name!r}: the isolated backend joins containers to a network "
                f"namespace, which only Podman's engine API accepts (this is {engine.kind})",
                "use Podman (unset DOCKER_HOST), or run with --backend local",
            )
        log = open_service_log(spec, self.log_key)
        container: Any = None
        try:
            container = await asyncio.to_thread(self._create, engine, spec)
            pid = await self._run(container, spec, log)
        except BaseException:
            await asyncio.to_thread(log.close)
            if container is not None:  # created: removed again, nothing half-started is left
                await asyncio.to_thread(_remove, engine, container.id)
                self._live.discard(container.id)
            raise
        self.registry.add(pid, f"{spec.name} (container)")
        handle = Handle(spec.name, pid, spec.log_file, _log=log, container_id=container.id)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16)
        exited: Future[int] = Future()
        for target, args, what in (
            (_follow, (container, loop, reader), "logs"),
            (_wait, (container, exited), "wait"),
        ):
            threading.Thread(
                target=target, args=args, daemon=True, name=f"{what}-{spec.name}"
            ).start()
        pump = asyncio.create_task(_pump(reader, log))
        handle._pumps = [pump, asyncio.create_task(_exit_code(handle, exited, pump))]
        return handle

    async def _run(self, container: Any, spec: ProcessSpec, log: ServiceLogSink) -> int:
        """Start the created container; its main process's pid (also its process group). One
        that ended at once gets its output copied and its exit code said, as a process's."""
        try:
            await asyncio.to_thread(container.start)
            await asyncio.to_thread(container.reload)
        except Exception as exc:
            raise SandboxError(
                f"service {spec.name!r}: the engine could not start its container: {exc}",
                "check the image and its command (args:)",
            ) from None
        pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        if pid > 0:
            return pid
        # It already ended (the engine says pid 0): never signal group 0 (our own)
        code = (await asyncio.to_thread(container.wait)).get("StatusCode")
        reader = asyncio.StreamReader()
        reader.feed_data(await asyncio.to_thread(container.logs))
        reader.feed_eof()
        await _pump(reader, log)
        raise SandboxError(
            f"service {spec.name!r} exited before it was ready (exit code {code})",
            f"its last log lines ({spec.log_file}):\n{await asyncio.to_thread(log.tail)}",
        )

    def _create(self, engine: Engine, spec: ProcessSpec) -> Any:
        import docker.errors  # noqa: PLC0415 (see engine._client)

        name = container_name(self.run, spec.name)
        with contextlib.suppress(docker.errors.NotFound):  # an earlier run's leftover
            engine.client.containers.get(name).remove(force=True)
        try:
            container = engine.client.containers.create(
                spec.image,
                command=list(spec.argv) or None,
                name=name,
                labels={RUN_LABEL: run_id(self.run), SERVICE_LABEL: spec.name},
                environment=container_env(spec.env),
                network_mode=network_mode(spec.netns_path),
                # in a namespace, the sandbox's resolver on 127.0.0.1:53 (not the host's)
                dns=None if spec.netns_path is None else ["127.0.0.1"],
                volumes=mounts_of(spec.mounts),
                detach=True,
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"service {spec.name!r}: the image {spec.image!r} is not in the {engine.kind} "
                "engine",
                f"build or pull it first ({engine.kind} images lists what there is)",
            ) from None
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"service {spec.name!r}: the engine refused to create its container: "
                f"{exc.explanation or exc}"
            ) from None
        _record(self.run, {"container": container.id, "service": spec.name})
        self._live.add(container.id)
        return container

    async def stop(self, handle: Handle) -> None:
        engine = self.engine
        if engine is not None and handle.container_id is not None:
            await asyncio.to_thread(_remove, engine, handle.container_id)
            self._live.discard(handle.container_id)
        for pump in handle._pumps:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, 2.0)
        if handle._log is not None:
            await asyncio.to_thread(handle._log.close)
        if handle.returncode is None:
            handle.returncode = -9

    def signal(self, handle: Handle, signum: int) -> None:
        """Send `signum` to the container's main process (``reload: sighup``)."""
        if self.engine is not None and handle.container_id is not None:
            with contextlib.suppress(Exception):
                self.engine.client.containers.get(handle.container_id).kill(signal=signum)

    def close(self) -> None:
        """Close the engine (after every container was stopped): nothing is left to remove."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
            if not self._live:  # else the reaper or `down` still has something to remove
                with contextlib.suppress(FileNotFoundError):
                    (self.run.path / RECORD_FILE).unlink()


def _remove(engine: Engine, container_id: str) -> None:
    import docker.errors  # noqa: PLC0415 (see engine._client)

    try:
        container = engine.client.containers.get(container_id)
        with contextlib.suppress(docker.errors.APIError):
            container.stop(timeout=int(STOP_GRACE_SECONDS))
        container.remove(force=True)
    except docker.errors.NotFound:
        return


def _follow(container: Any, loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader) -> None:
    """Copy the container's output (stdout and stderr) into `reader`, until it ends."""
    try:
        # an exception: the container was removed under the stream, its output has ended
        with contextlib.suppress(Exception):
            chunks: Iterator[bytes] = container.logs(stream=True, follow=True)
            for chunk in chunks:
                loop.call_soon_threadsafe(reader.feed_data, chunk)
    finally:
        with contextlib.suppress(RuntimeError):  # the loop closed first
            loop.call_soon_threadsafe(reader.feed_eof)


def _wait(container: Any, exited: Future[int]) -> None:
    """The container's exit code, once its main process ended."""
    try:
        result = container.wait()
        exited.set_result(int(result.get("StatusCode", -1)))
    except Exception:  # removed, or the engine went away: it no longer runs
        exited.set_result(-9)


async def _exit_code(handle: Handle, exited: Future[int], pump: asyncio.Task[None]) -> None:
    """Say the container ended only once its output is in the log (readiness shows the last
    lines of a service that exited)."""
    code = await asyncio.wrap_future(exited)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(pump), 2.0)
    handle.returncode = code


def remove_recorded(run: RunDir) -> list[str]:
    """Remove every container of this run (recorded in ``<run>/containers`` or labelled with
    its id); for the reaper and `trustproof down` after the controller died. Returns what was
    removed, for their logs."""
    entries = recorded(run)
    ids = [e["container"] for e in entries if "container" in e]
    engines = [e for e in entries if "engine" in e]
    if not engines:
        return []
    engine = engines[-1]
    if engine["engine"] == "podman":
        return _remove_with_podman(run, ids)
    return _remove_with_sdk(run, engine["url"], ids)


def _remove_with_podman(run: RunDir, ids: list[str]) -> list[str]:
    """With the ``podman`` command (the run's Podman service may be gone with its controller)."""
    env = podman_env(podman_conf(run))
    label = f"label={RUN_LABEL}={run_id(run)}"
    try:
        listed = subprocess.run(
            ["podman", "ps", "-aq", "--no-trunc", "--filter", label],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.split()
        found = sorted({*listed, *ids})
        if not found:
            return []
        done = subprocess.run(
            ["podman", "rm", "-f", "-t", "0", "--ignore", *found],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [f"container {cid[:12]}" for cid in done]


def _remove_with_sdk(run: RunDir, url: str, ids: list[str]) -> list[str]:
    try:
        import docker  # noqa: PLC0415 (see engine._client)

        client = docker.DockerClient(base_url=url, timeout=30)
    except Exception:
        return []
    removed = []
    try:
        labelled = client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={run_id(run)}"}, sparse=True
        )
        for cid in sorted({*ids, *(c.id for c in labelled)}):
            with contextlib.suppress(Exception):
                client.containers.get(cid).remove(force=True)
                removed.append(f"container {cid[:12]}")
    except Exception:
        return removed
    finally:
        client.close()
    return removed
