"""How answers of real servers are read (`trustproof.probes.answers`), without sockets: the pages
nginx, HAProxy, uvicorn/Starlette and an application's own authorization layer really send, each
classified and judged, next to its twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from trustproof.probes.answers import Context, header, resolve_pointer, unmet_expect
from trustproof.probes.http import classify, result_of
from trustproof.probes.model import BoundaryKind, Case, Expectation, Verdict, judge
from trustproof.spec import parse_spec
from trustproof.spec.answers import HeaderRule, JsonRule, StatusCodes
from trustproof.spec.model import Refuses, Served
from trustproof.view import HttpAnswer

NGINX_400 = (
    "<html>\r\n<head><title>400 {page}</title></head>\r\n<body>\r\n"
    "<center><h1>400 Bad Request</h1></center>\r\n<center>{page}</center>\r\n"
    "<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)
NGINX_403 = (
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n"
    "</body>\r\n</html>\r\n"
)
NGINX_404 = NGINX_403.replace("403 Forbidden", "404 Not Found")
PLAIN = "The plain HTTP request was sent to HTTPS port"
HAPROXY_400 = (
    "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
)
HAPROXY_403 = (
    "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n"
    "</body></html>\n"
)
HAPROXY_PLAIN = (
    "<html><body><h1>400 Bad request</h1>\nThe plain HTTP request was sent to HTTPS port\n"
    "</body></html>\n"
)
HAPROXY_503 = (
    "<html><body><h1>503 Service Unavailable</h1>\n"
    "No server is available to handle this request.\n</body></html>\n"
)
STARLETTE = [("content-type", "application/json"), ("x-served-by", "inventory")]
FASTAPI_401 = b'{"detail":"Not authenticated"}'
UVICORN_500 = b"Internal Server Error"

# (what, status, headers, body, outcome, stage) from a server trustproof did not write
REAL = [
    ("nginx no cert", 400, [], NGINX_400.format(page="No required SSL certificate was sent"),
     "denied_tls", "tls"),
    ("nginx bad cert", 400, [], NGINX_400.format(page="The SSL certificate error"),
     "denied_tls", "tls"),
    ("nginx plain HTTP", 400, [], NGINX_400.format(page=PLAIN), "denied_tls", "tls"),
    ("nginx bad request", 400, [], NGINX_400.format(page="Bad Request"), "denied_authz", "request"),
    ("nginx 403", 403, [], NGINX_403, "denied_authz", "policy"),
    ("nginx 404", 404, [], NGINX_404, "denied_authz", "route"),
    ("HAProxy plain HTTP", 400, [], HAPROXY_PLAIN, "denied_tls", "tls"),
    ("HAProxy 400", 400, [], HAPROXY_400, "denied_authz", "request"),
    ("HAProxy 403", 403, [], HAPROXY_403, "denied_authz", "policy"),
    ("HAProxy 503", 503, [], HAPROXY_503, "inconclusive", ""),
    ("Starlette lower-case marker", 200, STARLETTE, '{"items": []}', "allowed", ""),
    ("Starlette 404 of its handler", 404, STARLETTE, '{"detail": "no such item"}', "allowed", ""),
    ("FastAPI 401 of its own authz", 401, [("www-authenticate", "Bearer")], FASTAPI_401,
     "denied_authn", "token"),
    ("a 421", 421, [], "<h1>Misdirected Request</h1>", "denied_authz", "host"),
    ("uvicorn 500", 500, [("content-type", "text/plain")], UVICORN_500, "inconclusive", ""),
    ("a 418", 418, [], "I'm a teapot", "inconclusive", ""),
    ("a 101", 101, [], "", "inconclusive", ""),
    ("a redirect", 302, [("location", "/login")], "", "allowed", ""),
]  # fmt: skip


def body_of(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


@pytest.mark.parametrize(
    ("status", "headers", "text", "outcome", "stage"),
    [row[1:] for row in REAL],
    ids=[row[0] for row in REAL],
)
def test_answers_of_real_servers(
    status: int, headers: list[tuple[str, str]], text: str, outcome: str, stage: str
) -> None:
    ctx = Context(service="inventory")
    got = classify(status, CIMultiDict(headers), body_of(text), context=ctx)
    assert got[:2] == (outcome, stage)
    # a plain dict with the server's own spelling reads the same (field names: any case)
    assert classify(status, dict(headers), body_of(text), context=ctx)[:2] == (outcome, stage)


def test_the_marker_counts_in_any_case_but_only_naming_the_service() -> None:
    assert header({"x-served-by": "inventory"}, "X-Served-By") == "inventory"
    assert header({"X-SERVED-BY": "inventory"}, "x-served-by") == "inventory"
    ctx = Context(service="inventory")
    assert classify(404, {"x-served-by": "inventory"}, b"", context=ctx)[0] == "allowed"
    # another service's handler is no evidence this one ran (and no refusal either)
    assert classify(404, {"x-served-by": "other"}, b"", context=ctx)[0] == "inconclusive"


def test_through_the_gateway_a_lower_case_marker_is_served() -> None:
    answer = HttpAnswer(200, {"x-served-by": "orders"}, b"{}")
    result = result_of(answer, "GET /orders", 1.0, from_gateway=True)
    assert (result.outcome, result.evidence.served_by) == ("allowed", "orders")
    case = Case("authz.inside-matrix", "orders", "gateway", "bob", "GET /orders",
                Expectation.allow("orders"))  # fmt: skip
    assert judge(case, result) == "pass"
    twin = result_of(HttpAnswer(200, {"x-other": "orders"}, b"{}"), "", 1.0, from_gateway=True)
    assert judge(case, twin) == "not-served"


@pytest.mark.parametrize(
    ("status", "headers", "outcome"),
    [
        (502, {"X-Trustproof-Decision": "deny"}, "inconclusive"),  # upstream unavailable
        (503, {"x-trustproof-decision": "deny"}, "inconclusive"),  # not ready
        (400, {"X-Trustproof-Decision": "deny"}, "denied_authz"),  # malformed request
        (500, {"X-Served-By": "orders"}, "inconclusive"),  # forwarded; the handler failed
        (500, {}, "inconclusive"),
        (421, {}, "allowed"),  # forwarded: the service's own answer, no gateway refusal
    ],
)
def test_behind_the_gateway(status: int, headers: dict[str, str], outcome: str) -> None:
    payload = json.dumps({"stage": "http", "reason": "x"}).encode()
    assert classify(status, headers, payload, from_gateway=True)[0] == outcome


def self_case(expect: Expectation, kind: BoundaryKind = "self") -> Case:
    return Case("tls.untrusted-ca", "inventory", kind, "ann", "GET /items", expect)


def judged(case: Case, status: int, text: bytes, ctx: Context) -> Verdict:
    answer = HttpAnswer(status, CIMultiDict([("www-authenticate", "Bearer")]), text)
    return judge(case, result_of(answer, "GET /items", 1.0, from_gateway=False, context=ctx))


def test_an_app_layer_401_where_tls_was_expected_is_a_pass_with_the_stage_as_evidence() -> None:
    case = self_case(Expectation.refuse("denied_tls"))
    ctx = Context(service="inventory")
    answer = HttpAnswer(401, {}, FASTAPI_401)
    result = result_of(answer, "GET /items", 1.0, from_gateway=False, context=ctx)
    assert (result.outcome, result.stage, result.stage_is_verdict) == (
        "denied_authn",
        "token",
        False,
    )
    assert judge(case, result) == "pass"
    # declared refusals make the stage part of the verdict
    declared = Context(service="inventory", refuses=Refuses(tls=StatusCodes.parse([495])))
    assert judged(case, 401, FASTAPI_401, declared) == "wrong-stage"
    assert judged(case, 495, b"", declared) == "pass"
    # behind our gateway the stage always counts
    assert judge(self_case(Expectation.refuse("denied_tls"), "gateway"), result) == "wrong-stage"


def test_a_declared_refusal_status_is_read_as_that_stage() -> None:
    refuses = Refuses(authn=StatusCodes.parse(302), authz=StatusCodes.parse([404, 418]))
    ctx = Context(service="inventory", refuses=refuses)
    assert classify(302, {"location": "/login"}, b"", context=ctx)[:2] == ("denied_authn", "authn")
    assert classify(418, {}, b"", context=ctx)[:2] == ("denied_authz", "authz")
    assert classify(418, {}, b"", context=Context(service="inventory"))[0] == "inconclusive"


@pytest.mark.parametrize(
    ("status", "outcome", "inside", "outside"),
    [
        (200, "allowed", "pass", "over-permission"),
        (421, "denied_authz", "under-permission", "pass"),
        (500, "inconclusive", "inconclusive", "inconclusive"),
        (503, "inconclusive", "inconclusive", "inconclusive"),
    ],
)
def test_every_request_answered_the_same(
    status: int, outcome: str, inside: Verdict, outside: Verdict
) -> None:
    ctx = Context(service="inventory")
    result = result_of(HttpAnswer(status, {}, b"x"), "GET /items", 1.0, from_gateway=False,
                       context=ctx)  # fmt: skip
    assert result.outcome == outcome
    allowed = Case("authz.inside-matrix", "inventory", "self", "ann", "GET /items",
                   Expectation.allow())  # fmt: skip
    refused = Case("authz.outside-matrix", "inventory", "self", "ben", "GET /items",
                   Expectation.refuse("denied_authz"))  # fmt: skip
    assert (judge(allowed, result), judge(refused, result)) == (inside, outside)


def test_an_inconclusive_answer_carries_the_answer_as_evidence_scrubbed() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    answer = HttpAnswer(500, {}, f"Internal Server Error: bad token {token}".encode())
    result = result_of(answer, "GET /items", 1.0, from_gateway=False)
    assert result.outcome == "inconclusive"
    assert "Internal Server Error" in result.evidence.detail
    assert token not in result.evidence.detail


SERVED = Served(
    status=StatusCodes.parse([200, 201]),
    header=HeaderRule.parse({"X-App": "inventory"}),
    body="items",
    json=JsonRule.parse({"/kind": "list", "/items/0/id": 7, "/a~1b": None}),
)
GOOD = b'{"kind": "list", "items": [{"id": 7}], "a/b": null}'


@pytest.mark.parametrize(
    ("status", "headers", "body", "unmet"),
    [
        (200, {"x-app": "inventory"}, GOOD, ""),
        (201, {"X-APP": "inventory"}, GOOD, ""),
        (202, {"x-app": "inventory"}, GOOD, "status 202 is not one of [200, 201]"),
        (200, {}, GOOD, "no X-App header"),
        (200, {"x-app": "other"}, GOOD, "X-App is not 'inventory'"),
        (200, {"x-app": "inventory"}, b'{"kind": "list"}', "the body does not contain"),
        (200, {"x-app": "inventory"}, b"items: not json", "the body is not JSON"),
        (200, {"x-app": "inventory"}, GOOD.replace(b"7", b"8"), "'/items/0/id' holds another"),
        (200, {"x-app": "inventory"}, GOOD.replace(b'"a/b"', b'"ab"'), "nothing at JSON pointer"),
    ],
)
def test_a_declared_expect(status: int, headers: dict[str, str], body: bytes, unmet: str) -> None:
    got = unmet_expect(SERVED, status, headers, body)
    assert (got == "") if not unmet else (unmet in got)
    ctx = Context(service="inventory", served=SERVED)
    outcome = classify(status, headers, body, context=ctx)[0]
    assert outcome == ("allowed" if not unmet else "inconclusive")


def test_json_pointer() -> None:
    doc = {"a": [1, {"b~": 2}], "": 3}
    assert resolve_pointer(doc, "") == (True, doc)
    assert resolve_pointer(doc, "/a/1/b~0") == (True, 2)
    assert resolve_pointer(doc, "/") == (True, 3)
    assert resolve_pointer(doc, "/a/01") == (False, None)
    assert resolve_pointer(doc, "/a/2") == (False, None)


SPEC = """
trust_domain: t.test
personas: {ann: {}}
services:
  inventory:
    command: x
    port: 1
    routes: [GET /items, GET /healthz]
    ingress: {gateway: none}
    expect:
      header: X-App
      routes:
        get /healthz: {body: ok}
    refuses: {authn: 401, authz: [403, 404]}
  orders:
    command: x
    port: 2
    routes: [GET /orders]
access:
  services:
    inventory: {ann: ['*']}
"""


def test_context_of_a_spec(tmp_path: Path) -> None:
    spec = parse_spec(SPEC, tmp_path / "s.yaml")
    items = Context.of(spec, "inventory", "GET /items")
    assert items.served is not None
    assert items.served.header == (("X-App", None),)
    assert items.refuses is not None
    assert items.refuses.authz == (403, 404)
    assert items.stage_is_verdict
    health = Context.of(spec, "inventory", "GET /healthz")
    assert health.served is not None
    assert (health.served.body, health.served.header) == ("ok", None)
    assert Context.of(spec, "orders", "GET /orders") == Context(True, "orders")
    # the service's own port behind a gateway: nothing declared applies
    assert Context.of(spec, "orders", "GET /orders", door="direct") == Context(False, "orders")


HEADER_NAMES = st.sampled_from(
    ["X-Served-By", "x-served-by", "X-Trustproof-Decision", "x-app", "Content-Type", "Location"]
)
ANSWERS = st.tuples(
    st.integers(min_value=100, max_value=599),
    st.lists(st.tuples(HEADER_NAMES, st.sampled_from(["inventory", "deny", "other", ""]))),
    st.one_of(st.binary(max_size=200), st.sampled_from([b"{}", GOOD, FASTAPI_401])),
    st.booleans(),
)


@settings(max_examples=settings.default.max_examples * 3 // 2, deadline=None)
@given(ANSWERS)
@example(
    (200, [("X-Trustproof-Decision", "inventory"), ("X-Trustproof-Decision", "deny")], b"", True)
)
def test_fail_closed_on_any_answer(answer: tuple[int, list[tuple[str, str]], bytes, bool]) -> None:
    """Whatever comes back: a known outcome, never an exception, and no 1xx/5xx, and no refusal
    of our gateway, ever reads as allowed."""
    status, headers, payload, gateway = answer
    ctx = Context(from_gateway=gateway, service="inventory", served=SERVED if status % 2 else None)
    outcome, _, reason = classify(status, CIMultiDict(headers), payload, context=ctx)
    assert outcome in ("allowed", "denied_tls", "denied_authn", "denied_authz", "inconclusive")
    assert reason
    deny = any(k.lower() == "x-trustproof-decision" and v == "deny" for k, v in headers)
    if status < 200 or status >= 500 or (gateway and deny):
        assert outcome != "allowed"
