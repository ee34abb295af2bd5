"""Cases for services that terminate mTLS themselves (``gateway: none``, kind ``self``), and how
the answers of servers trustproof did not build are classified. No sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.catalogue import CATALOGUE
from trustproof.probes.http import classify
from trustproof.probes.model import Case, Expectation
from trustproof.probes.registry import generate
from trustproof.spec import parse_spec

TOKEN_PROBES = [i.id for i in CATALOGUE if i.family == "token" and i.id != "token.missing"]
# tls.foreign-ca has cases only where the spec declares a foreign CA with its key
TLS_PROBES = [
    i.id
    for i in CATALOGUE
    if i.family == "tls" and i.id not in ("tls.no-client-cert", "tls.foreign-ca")
]

SPEC = """
trust_domain: t.test
personas: {ann: {}, ben: {}}
services:
  api:
    command: x
    port: 1
    routes: [GET /a, POST /b]
    ingress: {gateway: GATEWAY, client_cert: required, token: TOKEN}
access:
  services:
    api:
      ann: ['*']
"""


def cases(tmp_path: Path, gateway: str, token: str) -> dict[str, list[Case]]:
    text = SPEC.replace("GATEWAY", gateway).replace("TOKEN", token)
    by_probe: dict[str, list[Case]] = {}
    for case in generate(parse_spec(text, tmp_path / "s.yaml")):
        by_probe.setdefault(case.probe, []).append(case)
    return by_probe


def test_a_self_boundary_gets_the_matrix_and_transport_probes(tmp_path: Path) -> None:
    found = cases(tmp_path, "none", "required")
    assert {c.kind for group in found.values() for c in group} == {"self"}
    assert set(found) >= {"authz.inside-matrix", "authz.outside-matrix", "authz.method-swap"}
    assert set(found) >= {"tls.no-client-cert", *TLS_PROBES, *TOKEN_PROBES}
    assert "bypass.direct-port" not in found  # its own port is the boundary
    # any answer that is not a refusal counts: such a server need not send X-Served-By
    assert found["authz.inside-matrix"][0].expect == Expectation.allow(served_by=None)
    assert {c.expect for c in found["tls.untrusted-ca"]} == {Expectation.refuse("denied_tls")}
    assert {c.expect for c in found["token.wrong-audience"]} == {Expectation.refuse("denied_authn")}
    assert {c.expect for c in found["authz.outside-matrix"]} == {Expectation.refuse("denied_authz")}


def test_a_self_boundary_with_token_optional_gets_no_token_probes(tmp_path: Path) -> None:
    found = cases(tmp_path, "none", "optional")
    assert not [
        probe for probe in found if probe.startswith("token.") and probe != "token.forged-headers"
    ]
    assert "tls.no-client-cert" in found


def test_the_gateway_twin_keeps_served_by_bypass_and_token_probes(tmp_path: Path) -> None:
    found = cases(tmp_path, "trustproof", "optional")
    assert {c.kind for c in found["authz.inside-matrix"]} == {"gateway"}
    assert found["authz.inside-matrix"][0].expect == Expectation.allow(served_by="api")
    assert "bypass.direct-port" in found
    assert "token.wrong-audience" in found  # a presented token is still checked
    assert "token.missing" not in found


NGINX_PAGE = "<html><head><title>400 {}</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("status", "page", "reason"),
    [
        (400, "No required SSL certificate was sent", "client-cert-required"),
        (400, "The SSL certificate error", "client-cert-refused"),
        (400, "The plain HTTP request was sent to HTTPS port", "plaintext-to-tls-port"),
        (496, "", "client-cert-required"),
        (495, "", "client-cert-refused"),
        (497, "", "plaintext-to-tls-port"),
    ],
)
def test_nginx_transport_refusals_are_denied_tls(status: int, page: str, reason: str) -> None:
    body = NGINX_PAGE.format(page).encode() if page else b""
    assert classify(status, {}, body) == ("denied_tls", "tls", reason)


def test_another_400_page_is_not_a_transport_refusal() -> None:
    body = NGINX_PAGE.format("Request Header Or Cookie Too Large").encode()
    assert classify(400, {}, body)[0] != "denied_tls"


@pytest.mark.parametrize("status", [404, 405])
def test_nothing_served_is_a_refusal_unless_the_handler_says_it_ran(status: int) -> None:
    assert classify(status, {}, b"")[:2] == ("denied_authz", "route")
    assert classify(status, {"X-Served-By": "api"}, b"{}")[0] == "allowed"
