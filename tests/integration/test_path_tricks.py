"""Path and request tricks leave byte-exact and are judged by the right oracle, against real
servers on 127.0.0.1:

* a raw socket server records the request line it received: the raw writer sends ``/./x``,
  ``/a/../x``, ``/%2e/x`` and ``/%61dmin`` as written (aiohttp, the failing twin, normalises them);
* the shop behind trustproof's gateway keeps every refused variant refused;
* nginx (``examples/nginx-mtls``) keeps every refused variant refused;
* the PyJWT service of ``examples/pyjwt-mtls`` passes as shipped, and copies with one seeded
  mistake — a check keyed on the raw request line, a check deciding on
  ``X-HTTP-Method-Override`` — are caught by the trick naming the mistake.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.rawhttp import RawTarget, encode_request, send_raw
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.view import HttpAnswer

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRICKS = ("authz.path-traversal", "authz.refused-path-tricks", "authz.refused-request-tricks")
TARGETS = ("/./x", "/a/../x", "/%2e/x", "/%61dmin", "//admin", "/admin;x=1", "/zz/..;/admin")
ANSWER = b"HTTP/1.1 403 Forbidden\r\nx-served-by: recorder\r\nContent-Length: 2\r\n\r\nno"


class Recorder:
    """A raw TCP server on 127.0.0.1 that records each request head and answers 403."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.heads: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.heads.append(data.partition(b"\r\n\r\n")[0])
                conn.sendall(ANSWER)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def test_the_raw_writer_sends_every_target_byte_exact(recorder: Recorder) -> None:
    where = RawTarget("127.0.0.1", recorder.port, None, 5.0)

    async def main() -> list[HttpAnswer]:
        answers = []
        for target in TARGETS:
            raw = encode_request("GET", target, where.authority, [("X-Original-URL", "/ok")])
            answer = await send_raw(where, raw, method="GET")
            assert isinstance(answer, HttpAnswer)
            answers.append(answer)
        return answers

    answers = asyncio.run(main())
    lines = [head.split(b"\r\n")[0].decode() for head in recorder.heads]
    assert lines == [f"GET {target} HTTP/1.1" for target in TARGETS]
    assert all(b"\r\nX-Original-URL: /ok\r\n" in head for head in recorder.heads)
    assert [(a.status, a.headers["X-Served-By"], a.body) for a in answers] == [
        (403, "recorder", b"no")
    ] * len(TARGETS)


def test_the_failing_twin_aiohttp_normalises_the_same_targets(recorder: Recorder) -> None:
    """Why the raw writer exists: through aiohttp/yarl the tricks never leave as written."""

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            for target in ("/./x", "/a/../x", "/%2e/x", "/%61dmin"):
                url = f"http://127.0.0.1:{recorder.port}{target}"
                async with session.get(url) as response:
                    await response.read()

    asyncio.run(main())
    lines = [head.split(b"\r\n")[0].decode() for head in recorder.heads]
    assert lines == ["GET /x HTTP/1.1", "GET /x HTTP/1.1", "GET /x HTTP/1.1", "GET /admin HTTP/1.1"]


def test_a_server_that_closes_without_answering_is_a_transport_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def close_one() -> None:
            conn, _ = server.accept()
            conn.recv(4096)
            conn.close()

        thread = threading.Thread(target=close_one, daemon=True)
        thread.start()
        where = RawTarget("127.0.0.1", port, None, 5.0)
        answer = asyncio.run(send_raw(where, encode_request("GET", "/", "h"), method="GET"))
        thread.join(timeout=5)
    assert not isinstance(answer, HttpAnswer)
    assert answer.kind == "connection-closed"


@pytest.fixture
def nginx() -> str:
    """The nginx binary (as in test_nginx_target.py: a skip only where it cannot be installed)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        if os.geteuid() != 0:
            pytest.skip("nginx is not installed and this is not root: apt-get install -y nginx")
        pytest.fail("nginx is not installed; `make test` (scripts/bootstrap.sh) installs it")
    return found


def run_tricks(spec: Path, run_dir: Path, *, thorough: bool = False) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            cases = choose(generate(sandbox.spec, thorough=thorough), TRICKS)
            return await run_suite(sandbox, cases)

    return asyncio.run(main())


def failures(run: SuiteRun) -> list[str]:
    return [
        f"{item.verdict}: {item.case.id} -> {item.result.outcome} {item.result.reason}"
        for item in run.results
        if not item.ok
    ]


def test_the_gateway_keeps_every_refused_variant_of_the_shop_refused(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    run = run_tricks(shop_spec_path, tmp_path / "run")
    assert failures(run) == []
    assert {item.case.probe for item in run.results} == set(TRICKS)
    refused = [i for i in run.results if i.case.probe != "authz.path-traversal"]
    assert refused
    assert all(i.result.outcome.startswith("denied_") for i in refused)


def test_nginx_keeps_every_refused_variant_refused(nginx: str, tmp_path: Path) -> None:
    run = run_tricks(EXAMPLES / "nginx-mtls" / "trustproof.yaml", tmp_path / "run")
    assert failures(run) == []
    assert {item.case.probe for item in run.results} == set(TRICKS)


def pyjwt_copy(tmp_path: Path, old: str = "", new: str = "") -> Path:
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(EXAMPLES / "pyjwt-mtls", target, ignore=shutil.ignore_patterns("__pycache__"))
    if old:
        path = target / "inventory.py"
        text = path.read_text()
        assert text.count(old) == 1
        path.write_text(text.replace(old, new))
    return target / "trustproof.yaml"


CHECK = '            if not PERMISSIONS[route] & set(claims.get("roles") or ()):'


def test_the_pyjwt_service_passes_every_trick(tmp_path: Path) -> None:
    run = run_tricks(pyjwt_copy(tmp_path), tmp_path / "run")
    assert failures(run) == []


def test_a_check_keyed_on_the_raw_request_line_is_fooled_by_path_tricks(tmp_path: Path) -> None:
    seeded = CHECK.replace("if not", 'if f"{self.command} {self.path}" in PERMISSIONS and not')
    run = run_tricks(pyjwt_copy(tmp_path, CHECK, seeded), tmp_path / "run")
    over = {(i.case.probe, i.case.variant) for i in run.results if i.verdict == "over-permission"}
    # bob may only GET /items/{id}: GET /items reached by a path its check does not list but
    # its handler normalises (http.server itself collapses a leading "//"; ";x", "..;" and a
    # trailing dot match no route of its handler either)
    assert over == {
        ("authz.refused-path-tricks", variant)
        for variant in ("dot-segment", "empty-query", "encoded-dot", "encoded-letter")
    } | {("authz.refused-path-tricks", "trailing-slash")}
    assert {i.verdict for i in run.results} == {"pass", "over-permission"}


def test_a_check_deciding_on_the_rewrite_header_is_fooled(tmp_path: Path) -> None:
    """The check reads X-Original-URL (as behind a rewriting proxy); the handler serves the
    request line: bob's refused GET /items naming his allowed /items/1 gets through."""
    old = "            route = route_of(self.command, self.path)"
    new = (
        '            checked = self.headers.get("X-Original-URL") or self.path\n'
        "            route = route_of(self.command, checked)"
    )
    run = run_tricks(pyjwt_copy(tmp_path, old, new), tmp_path / "run")
    over = {(i.case.probe, i.case.variant) for i in run.results if i.verdict == "over-permission"}
    assert over == {("authz.refused-request-tricks", "x-original-url")}
