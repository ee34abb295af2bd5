"""``Expect: 100-continue`` through a real gateway in front of a real service, with real curl
(`curl --cacert ... --cert ... -H 'Expect: 100-continue' --data-binary @2KiB-file`) on loopback.
curl's ``--trace-ascii`` gives the order of what it received and what it sent: an allowed request
has its ``100 Continue`` before curl sends the body, a refused one has its final answer and no body
sent at all. The twin, a gateway whose server side waits for the body before deciding (what the
code did before), is caught by the same check (curl sends its body after its 1 s wait, unasked).
Another expectation is a 417 on the head, audited like any malformed request. No timing is
asserted."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from test_gateway import World, run, workload_token
from test_gateway_refusals_and_audit import body_of, exchange

from trustproof.gateway.h1server import GatewayConnection
from trustproof.identity.rotation import write_svid_files

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]
CURL_TIMEOUT = 20.0  # seconds for one curl run, its 1 s expect wait included
BODY = b"0123456789abcdef" * 128  # 2 KiB: curl expects 100-continue from 1 KiB on


async def curl(w: World, tmp: Path, path: str) -> tuple[int, str, str]:
    """POST `BODY` to the gateway with curl; its status, its ``--trace-ascii`` text and
    ``-w``'s total time (for the note, never asserted)."""
    files = write_svid_files(tmp / "svid", w.storefront, w.fabric.ca.bundle_pem())
    token = await workload_token(w, w.storefront)
    headers = tmp / "headers"  # the token is read from a 0600 file, never on a command line
    headers.touch(mode=0o600)
    headers.write_text(f"Authorization: Bearer {token}\nExpect: 100-continue\n")
    (tmp / "body").write_bytes(BODY)
    process = await asyncio.create_subprocess_exec(
        "curl",
        "--silent",
        "--http1.1",
        "--noproxy",
        "*",
        "--cacert",
        str(files.bundle),
        "--cert",
        str(files.cert),
        "--key",
        str(files.key),
        "-H",
        f"@{headers}",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        f"@{tmp / 'body'}",
        "--trace-ascii",
        str(tmp / "trace"),
        "--output",
        "/dev/null",
        "--max-time",
        "15",
        "-w",
        "%{http_code} %{time_total}",
        f"{w.gateway.url}{path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), CURL_TIMEOUT)
    status, _, total = out.decode().partition(" ")
    return int(status), (tmp / "trace").read_text(errors="replace"), total


def received_before_body(trace: str) -> str | None:
    """The status line curl received before it sent any body byte, or None."""
    sent = trace.find("=> Send data")
    head = trace.find("<= Recv header")
    if head < 0 or (0 <= sent < head):
        return None
    return trace[head:].split("\n", 2)[1].partition(": ")[2].strip()


def test_an_allowed_post_gets_100_before_curl_sends_its_body(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    async def scenario(w: World) -> None:
        status, trace, total = await curl(w, tmp_path, "/orders")
        print(f"allowed, 100-continue answered by the gateway: curl time_total {total} s")
        assert status == 200
        assert received_before_body(trace) == "HTTP/1.1 100 Continue"
        assert f"=> Send data, {len(BODY)} bytes" in trace
        [hit] = w.upstream_hits
        assert hit["method"] == "POST"
        assert "Expect" not in hit["headers"]  # met by the gateway, not asked of the service
        assert hit["headers"]["Content-Length"] == str(len(BODY))
        [event] = w.sink.events()  # decided once, on the head
        assert (event.allowed, event.method, event.path) == (True, "POST", "/orders")

    run(shop_spec_path, scenario)


def test_a_refused_post_is_answered_before_curl_sends_its_body(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    async def scenario(w: World) -> None:
        status, trace, _ = await curl(w, tmp_path, "/orders/1")  # storefront may not POST here
        assert status == 403
        assert (received_before_body(trace) or "").startswith("HTTP/1.1 403")
        assert "=> Send data" not in trace  # the body never left curl
        assert w.upstream_hits == []
        [event] = w.sink.events()
        assert (event.allowed, event.status, event.stage) == (False, 403, "policy")

    run(shop_spec_path, scenario)


def test_twin_a_gateway_that_waits_for_the_body_is_caught(
    shop_spec_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GatewayConnection, "_expectation", lambda self: None)

    async def scenario(w: World) -> None:
        status, trace, total = await curl(w, tmp_path, "/orders")
        print(f"twin, curl waits for a 100 that never comes: curl time_total {total} s")
        assert status == 200  # served in the end ...
        assert received_before_body(trace) is None  # ... but the body went unasked
        assert "HTTP/1.1 100 Continue" not in trace

    run(shop_spec_path, scenario)


def test_another_expectation_is_a_417_refusal_audited_without_the_request(
    shop_spec_path: Path,
) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        head = (
            b"POST /orders HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\nContent-Length: 2048\r\nExpect: 200-ok\r\n\r\n"
        )
        answer = await exchange(w, head, w.storefront)  # no body sent: answered on the head
        assert answer.startswith(b"HTTP/1.1 417 Expectation Failed\r\n")
        assert b"Connection: close\r\n" in answer
        assert token.encode() not in answer
        body = body_of(answer)
        assert (body["stage"], body["reason"]) == ("http", "malformed-request")
        assert "100-continue" in str(body["detail"])
        [event] = w.sink.events()
        assert (event.status, event.method, event.path) == (417, "-", "-")
        assert w.upstream_hits == []

    run(shop_spec_path, scenario)
