"""`image:` services for real, under Podman (or the Docker engine DOCKER_HOST names): the example's
notes image, built offline from this machine's Debian Python, behind trustproof's gateway.

Passing: every generated case passes, answers are marked as served by the container, its
identity directory is mounted read-only (it can read its key; its output is scrubbed), and
nothing of the run is left in the engine after the stop. Failing twin: the same image run with
``--trust-headers`` (no gateway proof checked) is caught by the bypass probes. And the container
goes also when the controller is SIGKILLed: removed by the reaper, or by `down` when the reaper
was killed too."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trustproof.audit.keys import load_kek
from trustproof.audit.servicelog import read_service_log
from trustproof.errors import SandboxError
from trustproof.sandbox.backend import PidRegistry, ProcessSpec
from trustproof.sandbox.containers import RUN_LABEL, ContainerBackend, run_id
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.engine import Engine, connect
from trustproof.sandbox.pyimage import build_image
from trustproof.sandbox.rundir import RunDir
from trustproof.spec import load_spec
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "containers"
REPOSITORY = "localhost/trustproof-test-notes"


def _why_no_engine() -> str | None:
    if os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists():
        return None
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "no container engine: apt-get install -y podman runc (scripts/bootstrap.sh does)"
    if os.geteuid() != 0:
        return "image: services run under Podman as root here; these tests are not root"
    return None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    reason = _why_no_engine()
    if reason is not None:
        pytest.skip(reason)
    run = RunDir.create(tmp_path_factory.mktemp("engine"))
    connected = connect(run, PidRegistry(run.pids))
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    reference: str = build_image(engine.client, EXAMPLE / "app", REPOSITORY)
    return reference


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def example(tmp_path: Path, image: str, args: list[str] | None = None) -> Path:
    """The example, on a free port, with the image built for this test run (and `args`)."""
    target = tmp_path / "containers"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "app"))
    spec = target / "trustproof.yaml"
    text = spec.read_text()
    text = text.replace("image: localhost/trustproof-example-notes:latest", f"image: {image}")
    text = text.replace("port: 18401", f"port: {free_port()}")
    if args is not None:
        text = text.replace(
            "    # args: [python3, /srv/app/notes.py]", f"    args: {json.dumps(args)}"
        )
    spec.write_text(text)
    return spec


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...] = ()) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def containers_of(engine: Engine, run_dir: Path) -> list[Any]:
    label = f"{RUN_LABEL}={run_id(RunDir(run_dir.absolute()))}"
    found: list[Any] = engine.client.containers.list(
        all=True, filters={"label": label}, sparse=True
    )
    return found


def service_log(run_dir: Path, name: str) -> str:
    """A service's encrypted log, decrypted in memory (the KEK: tests/conftest.py's)."""
    return read_service_log(run_dir / "logs" / f"{name}.log.tpa", load_kek().key).text


def failures(run: SuiteRun) -> set[tuple[str, str, str]]:
    return {(i.verdict, i.case.boundary, i.case.probe) for i in run.results if not i.ok}


# The container prints the private key it reads from its read-only mount, then runs the service.
PRINTS_ITS_KEY = [
    "python3",
    "-c",
    "import os, runpy, sys; "
    "print(open(os.environ['TRUSTPROOF_KEY_FILE']).read(), flush=True); "
    "open(os.environ['TRUSTPROOF_KEY_FILE'], 'a')",  # read-only: this raises, the service ends
]


def test_an_image_service_passes_every_case_and_leaves_nothing(
    tmp_path: Path, engine: Engine, image: str
) -> None:
    run_dir = tmp_path / "run"
    run = run_on(example(tmp_path, image), run_dir)
    assert failures(run) == set()
    assert {i.case.boundary for i in run.results} == {"notes"}
    served = {i.result.evidence.served_by for i in run.results if i.result.outcome == "allowed"}
    assert served == {"notes"}
    log = service_log(run_dir, "notes")
    assert "notes listening on 127.0.0.1" in log  # its output, through the log pump
    assert "GET /notes" in log
    assert containers_of(engine, run_dir) == []
    assert not (run_dir / "containers").exists()  # nothing left for the reaper to remove


def test_an_image_service_runs_isolated_in_its_namespace_and_its_egress_is_checked(
    tmp_path: Path, engine: Engine, image: str
) -> None:
    """The container joins the service's network namespace on the isolated backend: every
    case passes, the egress cases included (made from inside that namespace)."""
    from trustproof.sandbox.choice import isolation_missing  # noqa: PLC0415

    if (missing := isolation_missing()) is not None:
        pytest.skip(f"the isolated backend cannot run here: {missing}")
    run_dir = tmp_path / "run"

    async def main() -> SuiteRun:
        spec = example(tmp_path, image)
        async with Sandbox.from_file(spec, run_dir=run_dir, backend_choice="isolated") as box:
            assert box.backend_kind == "isolated"
            return await run_suite(box, generate(box.spec, backend="isolated"))

    run = asyncio.run(main())
    assert failures(run) == set()
    egress = {i.case.probe for i in run.results if i.case.probe.startswith("egress.")}
    assert {"egress.undeclared-tcp", "egress.undeclared-dns", "egress.observed"} <= egress
    assert containers_of(engine, run_dir) == []


def test_the_twin_that_trusts_headers_is_caught(tmp_path: Path, image: str) -> None:
    twin = example(tmp_path, image, ["python3", "/srv/app/notes.py", "--trust-headers"])
    found = failures(run_on(twin, tmp_path / "run", ("bypass.*", "authz.inside-matrix")))
    assert ("over-permission", "notes", "bypass.direct-port") in found
    assert ("not-served", "notes", "authz.inside-matrix") not in found  # it serves, unsafely


def test_its_identity_is_mounted_read_only_and_its_output_scrubbed(
    tmp_path: Path, engine: Engine, image: str
) -> None:
    spec = example(tmp_path, image, PRINTS_ITS_KEY)
    run_dir = tmp_path / "run"
    sandbox = Sandbox.from_file(spec, run_dir=run_dir)
    with pytest.raises(SandboxError, match="exited before it was ready") as refused, sandbox:
        pass
    assert "Read-only file system" in str(refused.value)  # its last log lines are in the error
    log = service_log(run_dir, "notes")
    assert "[REDACTED PRIVATE KEY]" in log  # it could read the key; the log does not keep it
    assert "PRIVATE KEY-----" not in log.replace("[REDACTED PRIVATE KEY]", "")
    assert containers_of(engine, run_dir) == []


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def detached(tmp_path: Path, engine: Engine, image: str) -> Iterator[dict[str, Any]]:
    """A detached sandbox with the image service running; `down` afterwards whatever happened."""
    spec = example(tmp_path, image)
    up = trustproof("up", str(spec), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    state: dict[str, Any] = json.loads((tmp_path / "run" / "state.json").read_text())
    assert len(containers_of(engine, tmp_path / "run")) == 1
    try:
        yield state
    finally:
        trustproof("down", "--run-dir", "run", cwd=tmp_path)


def test_the_reaper_removes_the_container_of_a_sigkilled_controller(
    tmp_path: Path, engine: Engine, detached: dict[str, Any]
) -> None:
    run_dir = tmp_path / "run"
    os.kill(detached["controller_pid"], signal.SIGKILL)
    wait_until(lambda: containers_of(engine, run_dir) == [])
    assert containers_of(engine, run_dir) == []
    wait_until(lambda: "ended without" in (run_dir / "logs" / "reaper.log").read_text())
    assert "container" in (run_dir / "logs" / "reaper.log").read_text()


def test_down_removes_the_container_when_controller_and_reaper_were_sigkilled(
    tmp_path: Path, engine: Engine, detached: dict[str, Any]
) -> None:
    run_dir = tmp_path / "run"
    pids = {
        line.split(" ", 2)[2]: int(line.split(" ", 1)[0])
        for line in (run_dir / "pids").read_text().splitlines()
    }
    os.kill(pids["reaper"], signal.SIGKILL)
    wait_until(lambda: not alive(pids["reaper"]))
    os.kill(detached["controller_pid"], signal.SIGKILL)
    wait_until(lambda: not alive(detached["controller_pid"]))
    assert len(containers_of(engine, run_dir)) == 1  # nobody removed it: only `down` can
    down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "killed leftover container" in down.stderr
    assert containers_of(engine, run_dir) == []


def test_a_container_joins_a_named_network_namespace(tmp_path: Path, engine: Engine) -> None:
    """What the isolated backend asks for (`ProcessSpec.netns_path`): the container listens on
    127.0.0.1:port inside a namespace this test made (loopback only, no link anywhere), and the
    host's 127.0.0.1:port has nothing behind it."""
    if shutil.which("ip") is None:
        pytest.skip("no iproute2 (ip) to make a network namespace")
    image_ref = build_image(engine.client, EXAMPLE / "app", REPOSITORY)
    name = f"tpc-{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        port = free_port()
        answer, host = asyncio.run(
            _serve_in(tmp_path, image_ref, Path("/run/netns") / name, port, name)
        )
        assert answer == "notes-in-namespace"
        assert "nameserver 127.0.0.1" in service_log(tmp_path / "run", "notes")
        assert host != 0  # the host's loopback: nothing listens there (connect_ex's errno)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


async def _serve_in(
    tmp_path: Path, image_ref: str, netns: Path, port: int, name: str
) -> tuple[str, int]:
    run = RunDir.create(tmp_path / "run")
    backend = ContainerBackend(run, PidRegistry(run.pids), lambda: load_kek().key)
    env = {"TRUSTPROOF_SERVICE": "notes-in-namespace", "TRUSTPROOF_HOST": "127.0.0.1"}
    spec = ProcessSpec(
        "notes",
        (
            "python3",
            "-c",
            "import runpy, sys; print(open('/etc/resolv.conf').read(), flush=True); "
            "sys.argv = ['notes.py', '--trust-headers']; "
            "runpy.run_path('/srv/app/notes.py', run_name='__main__')",
        ),
        tmp_path,
        {**env, "TRUSTPROOF_PORT": str(port)},
        run.service_log("notes"),
        image=image_ref,
        netns_path=netns,
    )
    handle = await backend.start(spec)
    try:
        client = (
            "import sys, time, urllib.request\n"
            "for _ in range(200):\n"
            "    try:\n"
            f"        r = urllib.request.urlopen('http://127.0.0.1:{port}/notes', timeout=2)\n"
            "        print(r.headers['X-Served-By']); sys.exit(0)\n"
            "    except OSError:\n"
            "        time.sleep(0.05)\n"
            "sys.exit(1)\n"
        )
        done = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", name, sys.executable, "-c", client],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        with socket.socket() as probe:
            host = probe.connect_ex(("127.0.0.1", port))
        return done.stdout.strip() or done.stderr, host
    finally:
        await backend.stop(handle)
        await asyncio.to_thread(backend.close)


def test_an_image_the_engine_lacks_is_a_clear_error_and_nothing_is_left(
    tmp_path: Path, engine: Engine, image: str
) -> None:
    spec = example(tmp_path, image)
    spec.write_text(spec.read_text().replace(image, "localhost/trustproof-missing:1"))
    run_dir = tmp_path / "run"
    with (
        pytest.raises(SandboxError, match="image 'localhost/trustproof-missing:1' is not in"),
        Sandbox(load_spec(spec), run_dir=run_dir),
    ):
        pass
    assert containers_of(engine, run_dir) == []
