"""Forwarded-identity headers from the real world and undeclared listeners, against the `FakeView`
(no sockets): a service that believes one header is caught on exactly that header's variant; a
stripping gateway, or a service that believes none, passes — and the same for listeners."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography import x509

from trustproof.errors import SpecError
from trustproof.gateway.headers import IDENTITY_HEADER_TABLE
from trustproof.probes.bypass import claim, forgeable_headers
from trustproof.probes.forgery import BUILDERS, forged_headers
from trustproof.probes.model import Case, Verdict, judge
from trustproof.probes.registry import generate, probe_for
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.spec.values import HeaderName, Port
from trustproof.view.fake import FakeServer, FakeView

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
SELF = load_spec(EXAMPLES / "pyjwt-mtls" / "trustproof.yaml")
OVER = "over-permission"
PROBES = ["token.forged-headers", "bypass.direct-port", "surface.undeclared-listener"]


def verdicts(spec: Spec, server: FakeServer, probes: list[str] = PROBES) -> dict[Case, Verdict]:
    view = FakeView(spec, server)
    cases = generate(spec, probes)

    async def main() -> dict[Case, Verdict]:
        return {case: judge(case, await probe_for(case).run(case, view)) for case in cases}

    return asyncio.run(main())


def failing(found: dict[Case, Verdict]) -> Counter[tuple[str, str, str]]:
    return Counter(
        (case.probe, case.variant, verdict) for case, verdict in found.items() if verdict != "pass"
    )


def test_one_variant_per_header_on_one_cell_per_boundary() -> None:
    found = verdicts(SHOP, FakeServer())
    assert failing(found) == Counter()
    headers = forgeable_headers(SHOP)
    forged = [c for c in found if c.probe == "token.forged-headers"]
    assert len(forged) == 3 * len(headers)  # three service boundaries, one cell each
    assert {c.variant for c in forged} == set(headers)
    direct = [c for c in found if c.probe == "bypass.direct-port"]
    assert len(direct) == 3 * len(headers)
    assert len({(c.boundary, c.caller, c.operation) for c in forged}) == 3


def test_a_gateway_service_believing_x_authenticated_user_is_caught_only_if_not_stripped() -> None:
    believes = FakeServer(honoured_identity_header="X-Authenticated-User")
    assert failing(verdicts(SHOP, believes)) == Counter()  # our stripping gateway: pass
    leaky = replace(believes, gateway_strips_identity_headers=False)
    found = failing(verdicts(SHOP, leaky))
    assert found == Counter({("token.forged-headers", "X-Authenticated-User", OVER): 3})


@pytest.mark.parametrize("header", ["X-Authenticated-User", "X-Forwarded-Client-Cert", "X-User"])
def test_a_service_without_gateway_believing_a_header_is_caught_naming_it(header: str) -> None:
    found = failing(verdicts(SELF, FakeServer(honoured_identity_header=header)))
    assert found == Counter({("token.forged-headers", header, OVER): 1})
    assert failing(verdicts(SELF, FakeServer())) == Counter()  # believes none: pass


def test_the_over_permission_evidence_names_the_header() -> None:
    view = FakeView(SELF, FakeServer(honoured_identity_header="X-Remote-User"))
    (case,) = [c for c in generate(SELF, ["token.forged-headers"]) if c.variant == "X-Remote-User"]
    result = asyncio.run(probe_for(case).run(case, view))
    assert judge(case, result) == OVER
    assert "X-Remote-User" in result.evidence.sent
    assert "X-Remote-User" in case.id


def test_the_specs_own_identity_headers_become_variants() -> None:
    spec = replace(SELF, identity_headers=(HeaderName("X-My-User"), HeaderName("x-forwarded-user")))
    headers = forgeable_headers(spec)
    assert headers[-1] == "X-My-User"
    assert headers.count("X-Forwarded-User") == 1
    assert "x-forwarded-user" not in headers
    found = failing(verdicts(spec, FakeServer(honoured_identity_header="X_My_User")))
    assert found == Counter({("token.forged-headers", "X-My-User", OVER): 1})


def test_every_forged_value_kind_has_a_builder_naming_the_claimed_caller() -> None:
    view = FakeView(SHOP)
    who = claim(view, "storefront", "orders")
    assert set(BUILDERS) == {header.value for header in IDENTITY_HEADER_TABLE}
    for header in IDENTITY_HEADER_TABLE:
        ((name, value), *rest) = forged_headers(header.name, who)
        assert name == header.name
        assert value
        assert len(rest) == len(header.companions)
    values = {h.name: dict(forged_headers(h.name, who))[h.name] for h in IDENTITY_HEADER_TABLE}
    assert values["X-Forwarded-User"] == "storefront"
    assert values["X-Forwarded-Email"] == "storefront@shop.test"
    assert values["X-SPIFFE-ID"] == "spiffe://shop.test/storefront"
    assert values["X-Forwarded-Client-Cert"].startswith("By=spiffe://shop.test/orders;Hash=")
    assert values["X-Forwarded-Client-Cert"].endswith(";URI=spiffe://shop.test/storefront")
    assert values["X-Goog-Authenticated-User-Email"] == "accounts.google.com:storefront@shop.test"
    principal = json.loads(base64.b64decode(values["X-MS-CLIENT-PRINCIPAL"]))
    assert {"typ": "name", "val": "storefront"} in principal["claims"]
    header, payload, signature = values["X-Amzn-Oidc-Data"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(payload + "=="))["sub"].endswith("/storefront")
    assert signature == ""
    pem = unquote(values["X-SSL-Client-Cert"]).encode()
    assert x509.load_pem_x509_certificate(pem) == view.cert("storefront").certificate
    der = base64.b64decode(values["Client-Cert"].strip(":"))
    assert x509.load_der_x509_certificate(der) == view.cert("storefront").certificate
    assert dict(forged_headers("X-Trustproof-Principal", who)) == {
        "X-Trustproof-Principal": "storefront",
        "X-Trustproof-Principal-Kind": "workload",
    }
    assert forged_headers("X-Unknown-User", who) == (("X-Unknown-User", "storefront"),)


# -- surface.undeclared-listener -------------------------------------------------------------


def test_an_undeclared_listener_is_an_over_permission_with_port_pid_and_tls() -> None:
    server = FakeServer(extra_listeners=frozenset({("orders", 9100)}))
    found = verdicts(SHOP, server, ["surface.undeclared-listener"])
    assert failing(found) == Counter({("surface.undeclared-listener", "", OVER): 1})
    (case,) = [c for c, v in found.items() if v == OVER]
    assert case.boundary == "orders"
    result = asyncio.run(probe_for(case).run(case, FakeView(SHOP, server)))
    assert "0.0.0.0:9100/tcp of pid" in result.evidence.detail
    assert "plaintext" in result.evidence.detail


def test_a_listener_declared_in_other_ports_passes() -> None:
    server = FakeServer(extra_listeners=frozenset({("orders", 9100)}))
    orders = replace(SHOP.services["orders"], other_ports=(Port(9100),))
    spec = replace(SHOP, services={**SHOP.services, "orders": orders})
    found = verdicts(spec, server, ["surface.undeclared-listener"])
    assert len(found) == 3
    assert failing(found) == Counter()


def test_a_service_without_gateway_listening_only_on_its_port_passes() -> None:
    found = verdicts(SELF, FakeServer(), ["surface.undeclared-listener"])
    assert [c.kind for c in found] == ["self"]
    assert failing(found) == Counter()


def test_the_spec_keys_read_from_yaml_and_bad_names_get_a_clear_error(tmp_path: Path) -> None:
    text = (EXAMPLES / "pyjwt-mtls" / "trustproof.yaml").read_text(encoding="utf-8")
    text = text.replace("    reload: sighup", "    reload: sighup\n    other_ports: [9100, 9101]")
    good = tmp_path / "good.yaml"
    good.write_text(text + "identity_headers: [X-My-User, x_team_principal]\n", encoding="utf-8")
    spec = load_spec(good)
    assert spec.identity_headers == ("X-My-User", "x_team_principal")
    assert spec.services["inventory"].other_ports == (9100, 9101)
    for bad, words in (
        ("'X-My User'", "bad header name"),
        ("Authorization", "not an identity header"),
        ("Content_Type", "not an identity header"),
    ):
        wrong = tmp_path / "bad.yaml"
        wrong.write_text(text + f"identity_headers: [{bad}]\n", encoding="utf-8")
        with pytest.raises(SpecError) as caught:
            load_spec(wrong)
        assert words in str(caught.value)
        assert "identity_headers" in str(caught.value)
