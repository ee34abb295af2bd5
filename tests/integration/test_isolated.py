"""The isolated backend for real: namespaces, firewall, canary, relays, and cleanup after SIGKILL.

Root only (network namespaces and nftables): skipped with the reason otherwise. Every connection
goes to loopback or between namespaces these tests create; the documentation address
192.0.2.10 lives on the sandbox's own hub namespace, never on the host's network.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trustproof.errors import SandboxError
from trustproof.sandbox import firewall, surface
from trustproof.sandbox.choice import isolation_missing
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.firewall import DropCount
from trustproof.sandbox.netns import NETNS_ETC, NETNS_RUN
from trustproof.tls import client_context, load_svid

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(isolation_missing() is not None, reason=f"{isolation_missing()}"),
]

ISOLATED = "isolated"  # over TRUSTPROOF_BACKEND (the suite's conftest sets local)

# A service that, on SIGHUP, tries 192.0.2.10:443 itself and prints what happened.
SERVICE = (
    "import errno, http.server, os, signal, socket\n"
    "def attempt(*_):\n"
    "    s = socket.socket(); s.settimeout(3)\n"
    "    try:\n"
    "        s.connect(('192.0.2.10', 443)); print('egress: connected', flush=True)\n"
    "    except OSError as e:\n"
    "        print('egress:', errno.errorcode.get(e.errno, e), flush=True)\n"
    "    finally:\n"
    "        s.close()\n"
    "signal.signal(signal.SIGHUP, attempt)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['TRUSTPROOF_SERVICE'].encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer((os.environ['TRUSTPROOF_HOST'], int(os.environ['TRUSTPROOF_PORT'])),"
    " H).serve_forever()\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "app.cedar").write_text(
        '@id("w")\npermit (principal == Workload::"worker", action == Action::"GET", '
        'resource == Route::"api /");\n'
    )
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "backend: isolated\n"
        "services:\n"
        f"  api: {{command: [python, svc.py], port: {free_port()}, routes: [GET /]}}\n"
        f"  worker: {{command: [python, svc.py], port: {free_port()}, routes: [GET /],"
        " calls: [api]}\n"
        "policies: {files: [app.cedar]}\n"
        "access: {services: {api: {worker: [GET /]}}}\n"
    )
    return spec


def wait_until(condition: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def namespaces_named(prefix: str) -> list[str]:
    found = [p.name for p in NETNS_RUN.glob(f"{prefix}*")] if NETNS_RUN.exists() else []
    found += [p.name for p in NETNS_ETC.glob(f"{prefix}*")] if NETNS_ETC.exists() else []
    return sorted(set(found))


def ns_exec(ns: str, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        **kwargs,
    )


def egress_lines(sandbox: Sandbox, name: str) -> list[str]:
    log = sandbox.service_log(name).text
    return [line for line in log.splitlines() if line.startswith("egress:")]


def attempt_from_service(sandbox: Sandbox, name: str) -> str:
    """SIGHUP the service (it tries 192.0.2.10:443) and return the line it printed."""
    before = len(egress_lines(sandbox, name))
    os.killpg(sandbox.handles[name].pid, signal.SIGHUP)
    assert wait_until(lambda: len(egress_lines(sandbox, name)) > before), "no attempt logged"
    return egress_lines(sandbox, name)[-1]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.from_file(
        write_spec(tmp_path), run_dir=tmp_path / "run", backend_choice=ISOLATED
    ) as running:
        yield running
    assert namespaces_named(f"tp-{running.network.run8 if running.network else 'x'}") == []


def test_a_service_cannot_reach_an_undeclared_address_and_the_attempt_is_counted(
    sandbox: Sandbox,
) -> None:
    assert sandbox.backend_kind == "isolated"
    assert sandbox.network is not None
    assert sandbox.network.hub is not None
    assert attempt_from_service(sandbox, "api") == "egress: ECONNREFUSED"  # refused at once
    assert sandbox.network.hub.hits() == ()  # nothing reached the canary
    drops = sandbox.egress_drops()["api"]
    assert DropCount("tcp", "192.0.2.10", 443, 1) in drops
    assert sandbox.egress_drops()["worker"] == ()  # counted per service


def test_the_twin_without_the_firewall_the_canary_records_the_attempt(sandbox: Sandbox) -> None:
    assert sandbox.network is not None
    assert sandbox.network.hub is not None
    ns = sandbox.namespaces["api"].name
    flushed = ns_exec(ns, "nft", "flush", "ruleset")
    assert flushed.returncode == 0, flushed.stderr
    assert attempt_from_service(sandbox, "api") == "egress: connected"
    assert wait_until(lambda: bool(sandbox.network and sandbox.network.hub.hits()))  # type: ignore[union-attr]
    (hit,) = sandbox.network.hub.hits()
    assert (hit.proto, hit.address, hit.port) == ("tcp", "192.0.2.10", 443)
    assert hit.source == sandbox.network.addresses["api"]


def gateway_get(sandbox: Sandbox, caller: str, service: str) -> int:
    """GET / through `service`'s gateway as workload `caller` (mTLS + bound token)."""
    svid = sandbox.cert(caller)
    context: ssl.SSLContext = client_context(sandbox.fabric.ca.bundle_pem())  # type: ignore[union-attr]
    load_svid(context, svid)
    token = sandbox.token(caller, service, cnf_x5t_s256=svid.x5t_s256)
    request = urllib.request.Request(  # noqa: S310 (https on loopback)
        sandbox.endpoints[service].url + "/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310
        return int(answer.status)


def test_the_service_port_is_refused_on_the_host_while_the_gateway_serves(
    sandbox: Sandbox,
) -> None:
    port = sandbox.spec.services["api"].port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
    with socket.socket() as squatter:  # and no other server can take the port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError, match="in use"):
            squatter.bind(("127.0.0.1", int(port)))
    assert gateway_get(sandbox, "worker", "api") == 200  # the gateway reaches it inside


def test_inside_a_namespace_only_the_declared_peers_answer(sandbox: Sandbox) -> None:
    """From the worker's namespace: its egress proxy (a relay to the host) answers; the api's
    port around its gateway, and the gateway itself, do not exist there."""
    ns = sandbox.namespaces["worker"].name
    egress = sandbox.egress[("worker", "api")].url
    fetch = (
        "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read())"
    )
    through = ns_exec(ns, sys.executable, "-c", fetch, egress + "/")
    assert through.returncode == 0, through.stderr
    assert "b'api'" in through.stdout
    around = ns_exec(ns, sys.executable, "-c", fetch, sandbox.endpoints["api"].direct_url + "/")
    assert around.returncode != 0
    assert "Connection refused" in around.stderr
    gateway = ns_exec(ns, sys.executable, "-c", fetch, sandbox.endpoints["api"].url + "/")
    assert gateway.returncode != 0
    # names are asked of the sandbox's resolver on the namespace's own loopback, nobody else
    resolv = ns_exec(ns, "cat", "/etc/resolv.conf")
    assert resolv.stdout.splitlines()[0] == "nameserver 127.0.0.1"


def trustproof(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_down_removes_the_namespaces_after_the_controller_and_reaper_were_sigkilled(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path)
    up = trustproof(
        "up", str(spec), "--detach", "--backend", ISOLATED, "--run-dir", "run", cwd=tmp_path
    )
    assert up.returncode == 0, up.stderr
    run = tmp_path / "run"
    state: dict[str, Any] = json.loads((run / "state.json").read_text())
    try:
        assert state["backend"] == "isolated"
        names = sorted(state["namespaces"].values())
        prefix = names[0].rsplit("-", 1)[0]
        assert namespaces_named(prefix) == sorted([*names, f"{prefix}-hub"])
        assert (NETNS_ETC / names[0] / "resolv.conf").read_text().startswith("nameserver 127.0.0.1")
        pids = dict(line.split(" ", 2)[::2] for line in (run / "pids").read_text().splitlines())
        reaper = int(next(pid for pid, name in pids.items() if name.strip() == "reaper"))
        os.kill(reaper, signal.SIGKILL)
        assert wait_until(lambda: not alive(reaper))
        os.kill(state["controller_pid"], signal.SIGKILL)
        assert wait_until(lambda: not alive(state["controller_pid"]))
        time.sleep(0.2)
        assert namespaces_named(prefix) != []  # nobody cleaned up yet: `down` must
    finally:
        down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert f"network namespace {prefix}-hub" in down.stderr
    assert namespaces_named(prefix) == []
    assert not (run / "netns").exists()


def test_the_reaper_removes_the_namespaces_when_the_controller_is_sigkilled(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path)
    up = trustproof(
        "up", str(spec), "--detach", "--backend", ISOLATED, "--run-dir", "run", cwd=tmp_path
    )
    assert up.returncode == 0, up.stderr
    run = tmp_path / "run"
    state: dict[str, Any] = json.loads((run / "state.json").read_text())
    prefix = next(iter(state["namespaces"].values())).rsplit("-", 1)[0]
    try:
        assert len(namespaces_named(prefix)) == 3
        os.kill(state["controller_pid"], signal.SIGKILL)
        assert wait_until(lambda: namespaces_named(prefix) == [], 20)
        assert "network namespace" in (run / "logs" / "reaper.log").read_text()
    finally:
        trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert namespaces_named(prefix) == []


def test_listeners_are_read_inside_the_namespace_and_tried_for_tls_there(
    sandbox: Sandbox,
) -> None:
    roots = {name: handle.pid for name, handle in sandbox.handles.items()}
    inside = {ns.inode(): ns.connect for ns in sandbox.namespaces.values()}
    port = int(sandbox.spec.services["api"].port)
    (found,) = asyncio.run(surface.listeners(roots, "api", connectors=inside))
    assert (found.port, found.address, found.transport) == (port, "127.0.0.1", "tcp")
    assert found.pid == roots["api"]
    assert found.speaks_tls is False  # a ClientHello sent inside got a plain HTTP answer
    # the twin: from the host's namespace alone, whether it speaks TLS cannot be known
    (outside,) = asyncio.run(surface.listeners(roots, "api"))
    assert outside.speaks_tls is None


def test_a_firewall_that_does_not_load_stops_the_start_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: no service runs without its firewall, and nothing of the network stays."""
    monkeypatch.setattr(firewall, "ruleset", lambda: "table inet trustproof { chain x { nonsense")
    sandbox = Sandbox.from_file(
        write_spec(tmp_path), run_dir=tmp_path / "run", backend_choice=ISOLATED
    )
    assert sandbox.network is not None
    prefix = f"tp-{sandbox.network.run8}"
    refused = "cannot load the firewall of network namespace"
    with pytest.raises(SandboxError, match=refused) as err, sandbox:
        pass
    assert "nft failed" in err.value.message
    assert sandbox.handles == {}  # no service was started
    assert namespaces_named(prefix) == []
    assert not (tmp_path / "run" / "netns").exists()


def test_the_twin_with_its_firewall_the_same_spec_starts(tmp_path: Path) -> None:
    with Sandbox.from_file(
        write_spec(tmp_path), run_dir=tmp_path / "run", backend_choice=ISOLATED
    ) as sandbox:
        assert sandbox.network is not None
        assert set(sandbox.handles) == {"api", "worker"}
        assert len(namespaces_named(f"tp-{sandbox.network.run8}")) == 3


def test_a_gateway_none_service_is_reached_on_its_port_through_a_relay(tmp_path: Path) -> None:
    """Its own port is its ingress: on the host, that port leads into its namespace."""
    (tmp_path / "svc.py").write_text(SERVICE)
    port = free_port()
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "backend: isolated\n"
        "services:\n"
        f"  edge: {{command: [python, svc.py], port: {port}, routes: [GET /],"
        " ingress: {gateway: none}}\n"
    )
    with Sandbox.from_file(spec, run_dir=tmp_path / "run", backend_choice=ISOLATED) as sandbox:
        assert sandbox.gateways == {}
        url = f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read() == b"edge"
        # and the service itself still reaches nothing but loopback
        assert attempt_from_service(sandbox, "edge") == "egress: ECONNREFUSED"


SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"


def test_the_shop_passes_every_case_isolated_its_direct_ports_refused_by_the_network(
    tmp_path: Path,
) -> None:
    run = ("run", str(SHOP), "--backend", ISOLATED, "--run-dir", "run", "--no-scenarios")
    result = trustproof(*run, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "(isolated backend)" in result.stderr
    cases = json.loads((tmp_path / "run" / "results.json").read_text())["cases"]
    assert len(cases) > 1000
    assert {case["verdict"] for case in cases} == {"pass"}
    direct = [case for case in cases if case["probe"] == "bypass.direct-port"]
    assert direct
    # nothing behind the port on the host: the network refuses, no service had to
    assert {(case["outcome"], case["reason"]) for case in direct} == {
        ("unreachable", "connection-refused")
    }
    listeners = [case for case in cases if case["probe"] == "surface.undeclared-listener"]
    assert len(listeners) == 3  # read inside each namespace
    assert all("plaintext" in case["evidence"]["detail"] for case in listeners)


PHONE_HOME = """

def _phone_home() -> None:  # a change nobody declared: the isolated backend must catch it
    import socket

    for _ in range(3):
        try:
            socket.create_connection(("192.0.2.10", 443), timeout=1).close()
        except OSError:
            pass
    try:
        socket.getaddrinfo("telemetry.vendor.example", 443)
    except OSError:
        pass


_phone_home()
"""


def test_a_service_changed_to_call_an_undeclared_address_fails_the_run_with_its_attempts(
    tmp_path: Path,
) -> None:
    """Issue 14's done-when: orders, changed to phone home at start, fails `egress.observed`
    — the only failing case — and the reports say what it tried, how often, and that it was
    stopped. (The twin, the unchanged shop, passes every case: the test above.)"""
    shop = tmp_path / "shop"
    shutil.copytree(SHOP.parent, shop, ignore=shutil.ignore_patterns("trustproof-reports"))
    orders = shop / "services" / "orders.py"
    orders.write_text(
        orders.read_text().replace("\nMAX_ITEMS = 50\n", PHONE_HOME + "\nMAX_ITEMS = 50\n")
    )
    run = ("run", "--backend", ISOLATED, "--run-dir", "run", "--no-scenarios")
    result = trustproof(*run, "--select", "egress.*", cwd=shop, timeout=600)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    cases = json.loads((shop / "run" / "results.json").read_text())["cases"]
    failed = {(case["probe"], case["boundary"]) for case in cases if case["verdict"] != "pass"}
    assert failed == {("egress.observed", "orders")}
    report = (shop / "trustproof-reports" / "report.md").read_text()
    assert "- orders tried 192.0.2.10:443 (tcp) 3 times — blocked" in report
    assert "- orders looked up telemetry.vendor.example" in report
    assert "storefront tried" not in report  # counted per service, the probes' own excluded
