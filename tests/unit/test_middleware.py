"""The ready-made middleware (`trustproof.middleware`): ASGI and WSGI apps called in memory with
requests signed as a gateway signs them — and their failing twins (unsigned, forged, replayed onto
another path), which must never reach the app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from trustproof.gateway.proof import PROOF_HEADER, new_key, sign_proof
from trustproof.middleware import asgi, wsgi
from trustproof.middleware.contract import Caller, Contract, ContractError

KEY = new_key()
NOW = 1_800_000_000.0
IDENTITY = [
    ("X-Trustproof-Request-Id", "req-1"),
    ("X-Trustproof-Principal", "alice"),
    ("X-Trustproof-Principal-Kind", "persona"),
    ("X-Trustproof-Roles", "user,admin"),
    ("X-Trustproof-Route", "GET /orders/{id}"),
]


def contract(key: bytes | None = KEY) -> Contract:
    return Contract("orders", key, clock=lambda: NOW)


def signed(method: str, target: str, *, key: bytes = KEY) -> list[tuple[str, str]]:
    return [*IDENTITY, (PROOF_HEADER, sign_proof(key, method, target, IDENTITY, NOW))]


# -- ASGI -------------------------------------------------------------------------------------


def run_asgi(
    middleware: asgi.TrustproofMiddleware, path: str, query: bytes, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, str], bytes, list[Any]]:
    seen: list[Any] = []
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(n.lower().encode(), v.encode()) for n, v in headers],
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(asgi.caller_of(scope))
        status = 404 if path == "/missing" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware.app = app
    asyncio.run(middleware(scope, receive, send))
    start = sent[0]
    got = {n.decode(): v.decode() for n, v in start["headers"]}
    return start["status"], got, b"".join(m.get("body", b"") for m in sent[1:]), seen


def asgi_middleware(key: bytes | None = KEY) -> asgi.TrustproofMiddleware:
    return asgi.TrustproofMiddleware(lambda *_: None, contract=contract(key))  # type: ignore[arg-type,return-value]


def test_asgi_a_signed_request_reaches_the_app_with_its_caller_and_is_marked() -> None:
    status, headers, body, seen = run_asgi(
        asgi_middleware(), "/orders/1", b"x=1", signed("GET", "/orders/1?x=1")
    )
    assert (status, body) == (200, b"ok")
    assert headers["x-served-by"] == "orders"
    assert seen == [
        Caller("alice", "persona", ("user", "admin"), "GET /orders/{id}", None, "req-1")
    ]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (IDENTITY, "missing"),  # forged identity headers, no proof: the direct-port bypass
        (signed("GET", "/orders/2"), "bad-signature"),  # a proof replayed onto another path
        (signed("GET", "/orders/1", key=new_key()), "bad-signature"),  # another gateway's key
    ],
)
def test_asgi_the_failing_twins_never_reach_the_app(
    headers: list[tuple[str, str]], reason: str
) -> None:
    status, got, body, seen = run_asgi(asgi_middleware(), "/orders/1", b"", headers)
    assert status == 401
    assert json.loads(body) == {"error": "not from the gateway", "reason": reason}
    assert got["x-served-by"] == "orders"  # the service itself refused (the suite reads that)
    assert seen == []


def test_asgi_no_marker_where_no_handler_matched() -> None:
    status, headers, _, _ = run_asgi(asgi_middleware(), "/missing", b"", signed("GET", "/missing"))
    assert status == 404
    assert "x-served-by" not in headers


# -- WSGI -------------------------------------------------------------------------------------


def run_wsgi(
    environ: dict[str, Any], key: bytes | None = KEY
) -> tuple[str, dict[str, str], bytes, list[Any]]:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get(wsgi.CALLER_KEY))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    answer: list[Any] = []
    middleware = wsgi.TrustproofMiddleware(app, contract=contract(key))
    body = b"".join(middleware(environ, lambda status, headers: answer.extend([status, headers])))
    return answer[0], dict(answer[1]), body, seen


def environ_of(target: str, headers: list[tuple[str, str]], **extra: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query}
    environ.update({"HTTP_" + n.upper().replace("-", "_"): v for n, v in headers})
    environ.update(extra)
    return environ


def test_wsgi_a_signed_request_reaches_the_app_and_is_marked() -> None:
    status, headers, body, seen = run_wsgi(environ_of("/orders/1", signed("GET", "/orders/1")))
    assert (status, body) == ("200 OK", b"ok")
    assert headers["X-Served-By"] == "orders"
    assert seen[0].principal == "alice"


def test_wsgi_the_raw_target_is_what_was_signed() -> None:
    """PATH_INFO is percent-decoded: the signed raw target comes from RAW_URI (gunicorn)."""
    target = "/orders/a%2Fb"
    environ = environ_of("/orders/a/b", signed("GET", target), RAW_URI=target)
    assert run_wsgi(environ)[0] == "200 OK"
    decoded_only = environ_of("/orders/a/b", signed("GET", target))
    assert run_wsgi(decoded_only)[0] == "401 Unauthorized"  # refused, never let in


def test_wsgi_forged_headers_are_refused_before_the_app() -> None:
    status, headers, body, seen = run_wsgi(environ_of("/orders/1", IDENTITY))
    assert status == "401 Unauthorized"
    assert json.loads(body)["reason"] == "missing"
    assert headers["X-Served-By"] == "orders"
    assert seen == []


def test_gateway_none_only_marks() -> None:
    status, headers, _, seen = run_wsgi(environ_of("/orders/1", IDENTITY), key=None)
    assert status == "200 OK"
    assert headers["X-Served-By"] == "orders"
    assert seen == [None]  # no caller: nobody verified one


# -- the contract from the environment --------------------------------------------------------


def test_from_env_reads_the_service_and_its_key(tmp_path: Path) -> None:
    key_file = tmp_path / "gateway-proof.key"
    key_file.write_bytes(KEY)
    env = {"TRUSTPROOF_SERVICE": "orders", "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE": str(key_file)}
    made = Contract.from_env(env)
    assert (made.service, made.key) == ("orders", KEY)
    assert KEY.hex() not in repr(made)


def test_from_env_fails_closed_at_start(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="TRUSTPROOF_SERVICE is not set"):
        Contract.from_env({})
    with pytest.raises(ContractError, match="require_proof=False"):
        Contract.from_env({"TRUSTPROOF_SERVICE": "orders"})
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 5)
    env = {"TRUSTPROOF_SERVICE": "orders", "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE": str(short)}
    with pytest.raises(ContractError, match="32-byte key"):
        Contract.from_env(env)
    assert Contract.from_env({"TRUSTPROOF_SERVICE": "a"}, require_proof=False).key is None
