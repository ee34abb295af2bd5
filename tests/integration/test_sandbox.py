"""The sandbox for real: processes, ports, teardown after failures, Ctrl-C and SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from trustproof.clock import ManualClock
from trustproof.errors import SandboxError, UsageError
from trustproof.sandbox.backend import FakeBackend
from trustproof.sandbox.controller import Sandbox

pytestmark = pytest.mark.integration

SERVICE = (
    "import http.server, os, signal, subprocess, sys\n"
    "if os.environ.get('SPAWN_CHILD'):  # a child in the service's process group\n"
    "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "signal.signal(signal.SIGHUP, lambda *a: print('reloaded certificates', flush=True))\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['TRUSTPROOF_SERVICE'].encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): print('request', *a, flush=True)\n"
    "print('token in a log line: Authorization: Bearer s3cr3t-t0k3n', flush=True)\n"
    "print('-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIKeyBodyLineOne\\nKeyBodyLineTwo\\n"
    "-----END EC PRIVATE KEY-----\\nafter the key', flush=True)\n"
    "http.server.HTTPServer((os.environ['TRUSTPROOF_HOST'], int(os.environ['TRUSTPROOF_PORT'])),"
    " H).serve_forever()\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(
    tmp_path: Path,
    *,
    broken: bool = False,
    reload: str = "none",
    datastore: bool = False,
    grandchild: bool = False,
) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "schema.sql").write_text("CREATE TABLE items (id integer PRIMARY KEY);\n")
    (tmp_path / "app.cedar").write_text(
        '@id("w")\npermit (principal == Workload::"worker", action == Action::"GET", '
        'resource == Route::"api /");\n'
    )
    api_cmd = (
        "[python, -c, 'import sys; print(\"boom: missing config\"); sys.exit(3)']"
        if broken
        else "[python, svc.py]"
    )
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "services:\n"
        f"  api: {{command: {api_cmd}, port: {free_port()}, routes: [GET /], reload: {reload}}}\n"
        f"  worker: {{command: [python, svc.py], port: {free_port()}, routes: [GET /],"
        f" calls: [api], env: {{SPAWN_CHILD: '{'1' if grandchild else ''}'}}}}\n"
        "policies: {files: [app.cedar]}\n"
        "access: {services: {api: {worker: [GET /]}}}\n"
    )
    if datastore:
        with spec.open("a") as handle:
            handle.write(
                "datastores: {db: {schema: schema.sql, roles: {worker: {items: [select]}}}}\n"
                "access: {services: {api: {worker: [GET /]}},"
                " datastores: {db: {worker: {items: [select]}}}}\n"
            )
        text = spec.read_text().replace("access: {services: {api: {worker: [GET /]}}}\n", "", 1)
        spec.write_text(text)
    return spec


def listening_ports() -> set[int]:
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip()}


def ports_of(state: dict[str, Any]) -> set[int]:
    """Every port the run listened on, from its state (gateways, services, egress, fabric)."""
    urls = []
    for endpoint in state["endpoints"].values():
        urls += [endpoint["url"], endpoint["direct_url"], *endpoint["egress"].values()]
    return {int(url.rsplit(":", 1)[1].split("/")[0]) for url in urls if url}


def assert_closed(ports: set[int]) -> None:
    deadline = time.monotonic() + 5
    while listening_ports() & ports and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_ports() & ports == set()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_up_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    ports: set[int] = set()

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            assert set(sandbox.endpoints) == {"token-service", "api", "worker"}
            ports.update(ports_of(sandbox.state()))
            assert len(ports) == 6
            assert ports <= listening_ports()
            assert children_of(os.getpid())  # the services run as our children
            log = sandbox.service_log("api").text  # decrypted in memory
            assert "s3cr3t-t0k3n" not in log  # logs are scrubbed
            assert "Authorization: Bearer [REDACTED]" in log
            assert "KeyBodyLine" not in log  # a multi-line key is dropped whole
            assert "[REDACTED PRIVATE KEY]\nafter the key" in log
        assert children_of(os.getpid()) == []

    asyncio.run(scenario())
    assert_closed(ports)
    assert not (tmp_path / "run" / "identities").exists()


def test_a_service_that_exits_is_named_with_its_log_and_everything_stops(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, broken=True)

    async def scenario() -> None:
        sandbox = Sandbox.from_file(spec, run_dir=tmp_path / "run")
        with pytest.raises(SandboxError) as info:
            await sandbox.start()
        assert "service 'api' exited before it was ready (exit code 3)" in info.value.message
        assert "boom: missing config" in info.value.hint

    asyncio.run(scenario())
    assert children_of(os.getpid()) == []


def test_port_in_use_is_a_clear_error_and_nothing_starts(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    port = int(spec.read_text().split("port: ")[1].split(",")[0])
    backend = FakeBackend()

    async def scenario() -> None:
        holder = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        try:
            sandbox = Sandbox.from_file(spec, run_dir=tmp_path / "run", backend=backend)
            with pytest.raises(SandboxError) as info:
                await sandbox.start()
            assert (
                info.value.message == f"service 'api': port {port} on 127.0.0.1 is already in use"
            )
        finally:
            holder.close()
            await holder.wait_closed()

    asyncio.run(scenario())
    assert backend.started == []


def test_a_start_failure_stops_what_was_started(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    backend = FakeBackend(fail=frozenset({"worker"}), listen=True)

    async def scenario() -> None:
        sandbox = Sandbox.from_file(spec, run_dir=tmp_path / "run", backend=backend)
        with pytest.raises(SandboxError) as info:
            await sandbox.start()
        assert "cannot start worker (fake failure)" in info.value.message
        assert sandbox.handles == {}

    asyncio.run(scenario())
    assert [s.name for s in backend.started] == ["api"]
    assert backend.stopped == ["api"]


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet collected by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def recorded(run: Path) -> dict[int, str]:
    """The process groups the run recorded: pgid -> name."""
    lines = (run / "pids").read_text().splitlines()
    return {int(line.split(" ", 2)[0]): line.split(" ", 2)[2] for line in lines}


def key_files(run: Path) -> list[Path]:
    """Every private key of the run: identities, admin, datastore client keys, PostgreSQL's own
    (in its home outside the run directory), gateway-proof keys."""
    externals = run / "externals"
    roots = (
        [run, *(Path(p) for p in externals.read_text().split())] if externals.exists() else [run]
    )
    return [
        path
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.is_file() and (path.name == "key.pem" or path.suffix == ".key")
    ]


def wait_until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def leaves_nothing(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path`, and after the test: `down` if anything the run recorded still runs (a failed
    assertion must not leave a detached sandbox behind)."""
    yield tmp_path
    if (tmp_path / "run" / "pids").exists() and any(
        alive(pid) for pid in recorded(tmp_path / "run")
    ):
        trustproof("down", "--run-dir", "run", cwd=tmp_path)


def detached(tmp_path: Path, **options: bool) -> dict[str, Any]:
    spec = write_spec(tmp_path, **options)
    up = trustproof("up", str(spec), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    status = trustproof("status", "--json", "--run-dir", "run", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    state: dict[str, Any] = json.loads(status.stdout)
    return state


def test_status_json_says_the_token_service_runs_while_it_serves(leaves_nothing: Path) -> None:
    tmp_path = leaves_nothing
    state = detached(tmp_path)
    token_service = state["endpoints"]["token-service"]
    assert state["controller_running"] is True
    assert token_service["pid"] == state["controller_pid"]  # it is served by the controller
    assert token_service["running"] is True
    assert token_service["healthy"] is True  # it answered discovery over TLS just now
    # a name the spec does not know is a usage error (2), not an environment failure (3)
    for args in (("token", "worker", "--aud", "nosuch"), ("token", "nobody", "--aud", "api")):
        refused = trustproof(*args, "--run-dir", "run", cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert "unknown" in refused.stderr
    assert (
        trustproof("cert", "nobody", "--out", "c", "--run-dir", "run", cwd=tmp_path).returncode == 2
    )
    down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    stopped = trustproof("status", "--json", "--run-dir", "run", cwd=tmp_path)
    assert stopped.returncode == 3  # the last state is shown, but nothing runs
    after = json.loads(stopped.stdout)
    assert after["controller_running"] is False
    assert after["endpoints"]["token-service"]["running"] is False  # and not once stopped


def test_a_sigkilled_controller_takes_its_processes_and_keys_with_it(leaves_nothing: Path) -> None:
    tmp_path = leaves_nothing
    state = detached(tmp_path, datastore=True, grandchild=True)
    run = tmp_path / "run"
    controller = state["controller_pid"]
    endpoints = state["endpoints"]
    grandchildren = children_of(endpoints["worker"]["pid"])
    assert len(grandchildren) == 1  # the worker's own child, in the worker's process group
    backends = children_of(endpoints["db"]["pid"])  # PostgreSQL's own processes
    pids = {pid for pid in recorded(run) if pid != controller} | {*grandchildren, *backends}
    assert {endpoints[name]["pid"] for name in ("api", "worker", "db")} <= pids
    assert all(alive(pid) for pid in pids)
    ports = ports_of(state)
    assert ports <= listening_ports()
    keys = key_files(run)
    assert len(keys) == 6  # admin, api, worker, their 2 gateway-proof keys, PostgreSQL's
    os.kill(controller, signal.SIGKILL)
    wait_until(
        lambda: (
            not any(alive(p) for p in pids) and not listening_ports() & ports and not key_files(run)
        )
    )
    assert [pid for pid in pids if alive(pid)] == []
    assert listening_ports() & ports == set()
    assert key_files(run) == []
    assert "ended without stopping the sandbox" in (run / "logs" / "reaper.log").read_text()
    down = trustproof("down", "--run-dir", "run", cwd=tmp_path)  # nothing left to do, still fine
    assert down.returncode == 0, down.stderr
    assert "killed leftover" not in down.stderr


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_down_cleans_up_when_the_controller_and_its_reaper_were_sigkilled(
    leaves_nothing: Path,
) -> None:
    tmp_path = leaves_nothing
    state = detached(tmp_path, datastore=True, grandchild=True)
    run = tmp_path / "run"
    assert state["endpoints"]["api"]["healthy"] is True
    assert state["endpoints"]["api"]["running"] is True
    grandchild = children_of(state["endpoints"]["worker"]["pid"])[0]
    postmaster = state["endpoints"]["db"]["pid"]
    if os.geteuid() == 0:  # PostgreSQL runs as `postgres`: the signal must survive the switch
        assert uid_of(postmaster) != 0
    ports = ports_of(state)
    reaper = next(pid for pid, name in recorded(run).items() if name == "reaper")
    os.kill(reaper, signal.SIGKILL)
    wait_until(lambda: not alive(reaper))
    os.kill(state["controller_pid"], signal.SIGKILL)
    direct = [state["endpoints"][name]["pid"] for name in ("api", "worker", "db")]
    wait_until(lambda: not any(alive(pid) for pid in direct))
    # Only the kernel's parent-death signal can have ended them: the reaper is gone.
    assert [pid for pid in direct if alive(pid)] == []
    assert alive(grandchild)  # ...and it reaches only the direct child
    assert key_files(run) != []  # nobody removed the keys
    down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "killed leftover worker" in down.stderr
    wait_until(lambda: not alive(grandchild))
    assert not alive(grandchild)
    assert_closed(ports)
    assert key_files(run) == []
    assert not (run / "identities").exists()


def test_ctrl_c_during_up_tears_down(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "trustproof", "up", str(spec), "--run-dir", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "run" / "control.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        ports = ports_of(state)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert_closed(ports)
    assert children_of(process.pid) == []
    assert not (tmp_path / "run" / "identities").exists()


def test_the_synchronous_api_for_tests(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
        ports = ports_of(sandbox.state())
        assert ports <= listening_ports()
        assert sandbox.token("worker", "api").count(".") == 2
        assert str(sandbox.cert("worker").spiffe_id) == "spiffe://t.test/worker"
        with pytest.raises(UsageError) as info:  # a name the spec does not know: exit 2
            sandbox.token("mallory", "api")
        assert info.value.message == "unknown caller 'mallory'"
        with pytest.raises(UsageError, match="unknown audience 'nosuch': a token is for a service"):
            sandbox.token("worker", "nosuch")
    assert_closed(ports)
    assert children_of(os.getpid()) == []


def test_rotation_reloads_the_service_with_sighup(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, reload="sighup")
    clock = ManualClock(datetime.now(UTC))

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run", clock=clock) as sandbox:
            before = sandbox.rotators["api"].current.serial
            clock.advance(timedelta(minutes=3))  # past half of the 5-minute lifetime
            deadline = time.monotonic() + 5

            def log() -> str:
                return sandbox.service_log("api").text

            while "reloaded certificates" not in log() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert "reloaded certificates" in log()
            assert sandbox.rotators["api"].current.serial != before
            assert "reloaded" not in sandbox.service_log("worker").text

    asyncio.run(scenario())


def test_everything_the_sandbox_opens_stays_in_the_ports_range(tmp_path: Path) -> None:
    """Token service, gateways, egress proxy and PostgreSQL in `ports:`; the twin without a
    range takes the kernel's ports (outside it)."""
    spec = write_spec(tmp_path, datastore=True)
    first = 31000 + os.getpid() % 500  # below the ephemeral range; two runs rarely share it
    with spec.open("a") as handle:
        handle.write(f"ports: {{first: {first}, last: {first + 9}}}\n")
    wanted = range(first, first + 10)
    with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
        state = sandbox.state()
        opened = [
            urlsplit(state["discovery_url"]).port,
            *(urlsplit(sandbox.endpoints[n].url).port for n in ("api", "worker")),
            *(urlsplit(proxy.url).port for proxy in sandbox.egress.values()),
            sandbox.datastores.servers["db"].port,
        ]
        assert len(opened) == 5
        assert all(port in wanted for port in opened), opened
        assert len(set(opened)) == 5
        assert sandbox.token("worker", "api").count(".") == 2  # and it works


def test_a_full_ports_range_is_a_clear_error_and_nothing_is_left(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with spec.open("a") as handle:
            handle.write(f"ports: {{first: {port}, last: {port}}}\n")
        refused = f"no free port left on 127.0.0.1 in {port}-{port}"
        with (
            pytest.raises(SandboxError, match=refused),
            Sandbox.from_file(spec, run_dir=tmp_path / "run"),
        ):
            pass
    assert children_of(os.getpid()) == []
