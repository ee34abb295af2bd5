"""The verdict classes of issue 12 end to end through the probes and the `FakeView` (no sockets):
each server that would fool a verdict tied to one server's habits, next to the one that does not.

The fake decides every request as a correct server would; `Bent` rewrites the answers of one
service the way a real server with that habit answers (500 to everything, 421 to everything, the
application's own 401 for every refusal, lower-case header names, a catch-all 200 page).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from multidict import CIMultiDict

from trustproof.probes.model import Case, Verdict, judge
from trustproof.probes.registry import generate, probe_for
from trustproof.spec import parse_spec
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view import Exchange, HttpAnswer, HttpRequest
from trustproof.view.fake import FakeView

Bend = Callable[[HttpRequest, HttpAnswer], HttpAnswer]


def unchanged(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    return answer


@dataclass
class Bent(FakeView):
    """A `FakeView` whose answers from `target` pass through `bend` first."""

    target: str = "inv"
    bend: Bend = unchanged

    async def send(self, request: HttpRequest) -> Exchange:
        answer = await super().send(request)
        if isinstance(answer, HttpAnswer) and request.service == self.target:
            return self.bend(request, answer)
        return answer


SPEC = """
trust_domain: t.test
personas: {ann: {}, ben: {}}
services:
  inv:
    command: x
    port: 1
    routes: [GET /items, POST /items]
    ingress: {gateway: none, client_cert: required, token: required}
EXTRA
  orders:
    command: x
    port: 2
    routes: [GET /orders]
access:
  services:
    inv: {ann: ['*']}
    orders: {ann: ['*']}
"""


def spec(tmp_path: Path, extra: str = "") -> Spec:
    return parse_spec(SPEC.replace("EXTRA", extra), tmp_path / "s.yaml")


def verdicts(the_spec: Spec, bend: Bend = unchanged, target: str = "inv") -> dict[Case, Verdict]:
    view = Bent(the_spec, target=target, bend=bend)
    cases = [case for case in generate(the_spec) if case.boundary == target]

    async def main() -> dict[Case, Verdict]:
        return {case: judge(case, await probe_for(case).run(case, view)) for case in cases}

    return asyncio.run(main())


def by_probe(found: dict[Case, Verdict], *probes: str) -> Counter[tuple[str, Verdict]]:
    return Counter((c.probe, v) for c, v in found.items() if c.probe in probes)


MATRIX = ("authz.inside-matrix", "authz.outside-matrix")


def test_the_well_configured_twin_passes_everything(tmp_path: Path) -> None:
    found = verdicts(spec(tmp_path))
    assert set(found.values()) == {"pass"}
    assert len(found) > 10


def always(status: int, body: bytes, headers: dict[str, str] | None = None) -> Bend:
    def bend(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
        return HttpAnswer(status, CIMultiDict(headers or {}), body, answer.url)

    return bend


def test_a_server_answering_500_to_everything_fails_the_matrix_as_inconclusive(
    tmp_path: Path,
) -> None:
    found = verdicts(spec(tmp_path), always(500, b"Internal Server Error"))
    assert by_probe(found, *MATRIX) == {
        ("authz.inside-matrix", "inconclusive"): 2,
        ("authz.outside-matrix", "inconclusive"): 4,
    }
    assert "pass" not in {v for c, v in found.items() if c.probe.startswith("authz.")}


def test_a_server_answering_421_to_everything_is_an_under_permission(tmp_path: Path) -> None:
    found = verdicts(spec(tmp_path), always(421, b"<h1>Misdirected Request</h1>"))
    assert by_probe(found, *MATRIX) == {
        ("authz.inside-matrix", "under-permission"): 2,
        ("authz.outside-matrix", "pass"): 4,
    }


def fastapi_401(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    """The application checks certificate and token itself and answers every refusal with its
    own authorization layer's 401."""
    if answer.status == 200:
        return answer
    headers = CIMultiDict({"www-authenticate": "Bearer", "x-served-by": "inv"})
    return HttpAnswer(401, headers, b'{"detail":"Not authenticated"}', answer.url)


def test_the_refusing_stage_is_evidence_unless_declared(tmp_path: Path) -> None:
    tls = ("tls.untrusted-ca", "tls.expired-cert", "tls.no-client-cert")
    lenient = verdicts(spec(tmp_path), fastapi_401)
    assert set(lenient.values()) == {"pass"}
    found = Counter(c.probe for c, v in lenient.items() if c.probe in tls)
    # no certificate at all is tried on every route of a server trustproof did not write
    assert found == Counter({**dict.fromkeys(tls, 1), "tls.no-client-cert": 2})
    declared = "    refuses: {tls: [400, 495, 496], authn: 401, authz: 403}\n"
    strict = verdicts(spec(tmp_path, declared), fastapi_401)
    assert by_probe(strict, *tls) == {
        ("tls.untrusted-ca", "wrong-stage"): 1,
        ("tls.expired-cert", "wrong-stage"): 1,
        ("tls.no-client-cert", "wrong-stage"): 2,
    }
    assert by_probe(strict, "authz.outside-matrix") == {("authz.outside-matrix", "wrong-stage"): 4}
    assert by_probe(strict, "token.expired") == {("token.expired", "pass"): 1}


def lower_case(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    """uvicorn/Starlette: every header name in lower case, in a plain dict."""
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpAnswer(answer.status, headers, answer.body, answer.url)


def no_marker(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "x-served-by"}
    return HttpAnswer(answer.status, headers, answer.body, answer.url)


SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")


def test_a_lower_case_marker_behind_the_gateway_is_served() -> None:
    found = verdicts(SHOP, lower_case, target="orders")
    assert set(found.values()) == {"pass"}
    twin = verdicts(SHOP, no_marker, target="orders")
    inside = by_probe(twin, "authz.inside-matrix")
    assert set(inside) == {("authz.inside-matrix", "not-served")}


def catch_all(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    """A default page answering 200 to anything that got through the TLS stage."""
    if answer.status == 401 and b'"tls"' in answer.body:
        return answer
    return HttpAnswer(200, {"content-type": "text/html"}, b"<h1>Welcome to nginx!</h1>", "x")


def app_header(request: HttpRequest, answer: HttpAnswer) -> HttpAnswer:
    """The real application: its served answers carry X-App, no X-Served-By."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "x-served-by"}
    if answer.status == 200:
        headers["x-app"] = "inventory"
    return HttpAnswer(answer.status, headers, answer.body, answer.url)


def test_a_declared_expect_tells_the_handler_from_a_catch_all_page(tmp_path: Path) -> None:
    declared = spec(tmp_path, "    expect: {header: X-App}\n")
    assert set(verdicts(declared, app_header).values()) == {"pass"}
    fooled = verdicts(declared, catch_all)
    assert by_probe(fooled, *MATRIX) == {
        ("authz.inside-matrix", "inconclusive"): 2,
        ("authz.outside-matrix", "inconclusive"): 4,
    }
    # without the declaration the default (a 2xx that is no refusal) reads the page as allowed
    undeclared = verdicts(spec(tmp_path), catch_all)
    assert by_probe(undeclared, "authz.outside-matrix") == {
        ("authz.outside-matrix", "over-permission"): 4
    }


def test_a_route_s_own_expect_replaces_the_service_wide_one(tmp_path: Path) -> None:
    extra = '    expect: {header: X-App, routes: {"POST /items": {status: 201}}}\n'
    found = verdicts(spec(tmp_path, extra), app_header)
    # the POST handler answers 200, not the declared 201: neither served nor refused
    inside = {c.operation: v for c, v in found.items() if c.probe == "authz.inside-matrix"}
    assert inside == {"GET /items": "pass", "POST /items": "inconclusive"}
