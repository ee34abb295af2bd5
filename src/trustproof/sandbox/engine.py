"""The container engine a sandbox runs `image:` services on, reached through the Docker Engine API
(the `docker` Python SDK).

    engine = connect(run, registry)     # DOCKER_HOST, else /var/run/docker.sock, else Podman
    engine.client.containers.create(...)
    engine.close()                      # stops the Podman service this run started, if any

Discovery, in order: ``DOCKER_HOST`` (as the docker CLI reads it); the Docker socket
``/var/run/docker.sock``; else Podman's Docker-compatible service, started by this run as a
child (``podman system service --time=0 unix://…/podman.sock``) and stopped at teardown. The
Podman service gets its own ``containers.conf`` (through ``CONTAINERS_CONF``) with the settings
measured to work as root on hosts like CI runners: the ``runc`` runtime (crun fails on hybrid
cgroup layouts), ``cgroupfs`` (no systemd needed), no default ulimits (setting them fails with
EPERM in an unprivileged container), logs in files (``k8s-file``: what the API streams back) and
events in a file (no journald). With none of the three: one `SandboxError` naming what to install.

The service is recorded in the run's pid registry (the reaper and `trustproof down` kill it after
a SIGKILLed controller). The containers themselves do not depend on it (each has its own
``conmon``): `trustproof.sandbox.containers` removes them through the engine, or, when the
service is gone, through the ``podman`` command with the same configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trustproof.errors import SandboxError
from trustproof.parentdeath import die_with_parent
from trustproof.sandbox.backend import PidRegistry, kill_group
from trustproof.sandbox.rundir import RunDir, private_dir

DOCKER_SOCKET = Path("/var/run/docker.sock")
PODMAN_START_TIMEOUT_SECONDS = 20.0
API_TIMEOUT_SECONDS = 60
PODMAN_API_VERSION = "1.41"  # Podman 4's Docker-compatible API
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin
PODMAN_CONF = """\
# Written by trustproof for the Podman service it starts (CONTAINERS_CONF).
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
INSTALL_HINT = (
    "install Podman with runc (Debian: apt-get install -y podman runc) or Docker, "
    "or point DOCKER_HOST at a running engine"
)
EngineKind = Literal["docker", "podman"]


@dataclass
class Engine:
    """A connected engine: `client` is a ``docker.DockerClient``."""

    kind: EngineKind
    url: str
    client: Any = field(repr=False)
    conf: Path | None = None  # the containers.conf of a Podman service this run started
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Close the client; stop the Podman service this run started (its whole group)."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid, signal.SIGKILL)
                self.process.wait()


def podman_dir(run: RunDir) -> Path:
    return run.path / "podman"


def podman_conf(run: RunDir) -> Path:
    return podman_dir(run) / "containers.conf"


def socket_path(run: RunDir) -> Path:
    """``<run>/podman/podman.sock``, or ``/run/trustproof-<hash>/podman.sock`` when the run
    directory's path is too long for a unix socket."""
    inside = podman_dir(run) / "podman.sock"
    if len(str(inside)) <= SOCKET_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(run.path).encode()).hexdigest()[:12]
    return Path("/run") / f"trustproof-{digest}" / "podman.sock"


def podman_env(conf: Path) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def write_podman_conf(run: RunDir) -> Path:
    private_dir(podman_dir(run))
    path = podman_conf(run)
    path.write_text(PODMAN_CONF, encoding="utf-8")
    return path


def _client(url: str, version: str = "auto") -> tuple[Any, str | None]:
    """A client of the engine at `url` that answered a ping, or (None, why not). With "auto"
    the client asks the engine for its API version as it is made (Podman takes 1.5 s to say)."""
    import docker  # noqa: PLC0415 (only sandboxes with `image:` services need it)

    try:
        client = docker.DockerClient(base_url=url, version=version, timeout=API_TIMEOUT_SECONDS)
    except Exception as exc:  # the SDK raises requests', urllib3's and its own errors
        return None, f"{type(exc).__name__}: {exc}"
    try:
        client.ping()
    except Exception as exc:
        client.close()
        return None, f"{type(exc).__name__}: {exc}"
    return client, None


def connect(run: RunDir, registry: PidRegistry) -> Engine:
    """The engine for this run (see the module docstring); `SandboxError` when there is none."""
    configured = os.environ.get("DOCKER_HOST", "")
    if configured:
        return _existing("docker", configured, "DOCKER_HOST")
    if DOCKER_SOCKET.exists():
        return _existing("docker", f"unix://{DOCKER_SOCKET}", str(DOCKER_SOCKET))
    podman = shutil.which("podman")
    if podman is None:
        raise SandboxError("no container engine for the spec's image: services", INSTALL_HINT)
    if os.geteuid() != 0:
        raise SandboxError(
            "image: services run under Podman as root here, and this process is not root",
            "run trustproof as root, or point DOCKER_HOST at an engine you may use",
        )
    if shutil.which("runc") is None:
        raise SandboxError("Podman is installed but runc is not", INSTALL_HINT)
    return _start_podman(run, registry, podman)


def _existing(kind: EngineKind, url: str, where: str) -> Engine:
    client, failure = _client(url)
    if client is None:
        raise SandboxError(
            f"the container engine at {url} (from {where}) does not answer: {failure}",
            "start it, or unset DOCKER_HOST to use Podman",
        )
    return Engine(kind, url, client)


def _start_podman(run: RunDir, registry: PidRegistry, podman: str) -> Engine:
    conf = write_podman_conf(run)
    sock = socket_path(run)
    private_dir(sock.parent)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    url = f"unix://{sock}"
    log = run.open_log("podman")
    try:
        process = subprocess.Popen(
            die_with_parent([podman, "system", "service", "--time=0", url]),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=podman_env(conf),
            start_new_session=True,
        )
    finally:
        log.close()
    registry.add(process.pid, "podman-service")
    deadline = time.monotonic() + PODMAN_START_TIMEOUT_SECONDS
    failure: str | None = "its socket never appeared"
    while time.monotonic() < deadline and process.poll() is None:
        if sock.exists():
            client, failure = _client(url, PODMAN_API_VERSION)
            if client is not None:
                return Engine("podman", url, client, conf, process)
        time.sleep(0.05)
    Engine("podman", url, None, conf, process).close()
    raise SandboxError(
        f"the Podman service did not start ({failure}; exit code {process.returncode})",
        f"see {run.log('podman')}; {INSTALL_HINT}",
    )
