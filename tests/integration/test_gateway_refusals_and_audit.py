"""The gateway over real TLS sockets on loopback: requests its HTTP parser refuses are audited and
answered without echoing them, a body refused after the head does not hang, and a removed or
replaced audit file makes every request a 503 (fail closed)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest
from test_gateway import World, call, run, workload_token

from trustproof.audit import FanOutSink, JsonLinesSink
from trustproof.identity import Svid
from trustproof.tls import client_context

pytestmark = pytest.mark.integration
READ_TIMEOUT = 10.0  # seconds: an answer that takes longer counts as a hang


async def exchange(w: World, payload: bytes, svid: Svid | None, *, pause: bool = False) -> bytes:
    """Send `payload` over TLS (head and body apart when `pause`); all answered until close."""
    context = client_context(w.fabric.ca.bundle_pem(), svid)
    host, port = w.gateway.url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        if pause:
            head, _, body = payload.partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.3)  # the head is parsed and handed over before the body comes
            payload = body
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 20), READ_TIMEOUT)
    finally:
        writer.close()


def body_of(answer: bytes) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return parsed


def test_a_malformed_head_is_one_audit_event_and_echoes_nothing(
    shop_spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        payload = b"GET /orders HTTP/1.1\nAuthorization: Bearer " + token.encode() + b"\n\n"
        answer = await exchange(w, payload, w.storefront)
        assert answer.startswith(b"HTTP/1.0 400 ")
        assert token.encode() not in answer
        body = body_of(answer)
        assert (body["stage"], body["reason"]) == ("http", "malformed-request")
        [event] = w.sink.events()
        assert event.request_id == body["request_id"]
        assert (event.allowed, event.status, event.method, event.path) == (False, 400, "-", "-")
        assert event.peer_spiffe_id == "spiffe://shop.test/storefront"
        assert w.upstream_hits == []

    with caplog.at_level(logging.DEBUG):
        run(shop_spec_path, scenario)
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "1 malformed request refused by the HTTP parser" in text
    assert "Traceback" not in text
    assert "Authorization: Bearer" not in text


def test_a_body_refused_after_the_head_is_answered_not_left_hanging(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        payload = (
            b"POST /orders HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
        )
        answer = await exchange(w, payload, w.storefront, pause=True)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        body = body_of(answer)
        assert (body["stage"], body["reason"]) == ("http", "malformed-request")
        [event] = w.sink.events()  # the head's decision, completed with the refusal
        assert (event.status, event.reason) == (400, "malformed-request")
        assert w.upstream_hits == []  # nothing of a half-parsed body was forwarded

    run(shop_spec_path, scenario)


def test_a_well_formed_chunked_body_twin_is_forwarded(shop_spec_path: Path) -> None:
    """The twin of the test above: the same request with a valid chunk goes through."""

    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        payload = (
            b"POST /orders HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer "
            + token.encode()
            + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        answer = await exchange(w, payload, w.storefront, pause=True)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert len(w.upstream_hits) == 1

    run(shop_spec_path, scenario)


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_removed_or_replaced_audit_file_makes_every_request_a_503(
    shop_spec_path: Path, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"

    async def scenario(w: World) -> None:
        w.gateway.sink = FanOutSink(JsonLinesSink(path), w.sink)  # as the sandbox wires it
        token = await workload_token(w, w.storefront)
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert status == 200, body  # the twin: with its file in place, the request is answered
        if how == "removed":
            path.unlink()
        else:
            _replace(path)
        for _ in range(3):
            status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
            assert (status, body["reason"]) == (503, "audit-unavailable")
        answer = await exchange(w, b"GET / HTTP/1.1\nX: y\n\n", w.storefront)
        assert answer.startswith(b"HTTP/1.0 503 ")
        assert len(w.upstream_hits) == 1  # only the request before the removal

    run(shop_spec_path, scenario)
    said = [r.getMessage() for r in caplog.records if "audit" in r.getMessage()]
    said = [line for line in said if "malformed request" not in line]
    assert len(said) == 1  # once, not once per refused request
    assert f"was {how} while the run was writing it" in said[0]


def _replace(path: Path) -> None:
    impostor = path.with_name("impostor.jsonl")
    impostor.write_text("")
    os.replace(impostor, path)
