"""The JWT attack literature's probes against the in-memory `FakeView`: a server whose token
validator has one classic mistake (`FakeServer.token_flaws`) is fooled by exactly the probe for
that mistake (an over-permission), and a well-configured one passes every case."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from test_probe_families import OVER, SHOP, failing, verdicts

from trustproof.probes.http import classify
from trustproof.scrub import Secret
from trustproof.spec.load import load_spec
from trustproof.view.exchange import HttpRequest, placed_token
from trustproof.view.fake import FakeServer
from trustproof.view.fake_jwt import TokenFlaw

PYJWT = load_spec(
    Path(__file__).resolve().parents[3] / "examples" / "pyjwt-mtls" / "trustproof.yaml"
)

# flaw -> the over-permissions it must produce on the pyjwt example (one boundary, one cell)
FOOLED: dict[TokenFlaw, dict[str, int]] = {
    "alg-none-case": {"token.alg-none": 3},  # None, NONE, nOnE: not the exact "none"
    "empty-signature": {"token.empty-signature": 1},
    "psychic-signature": {"token.psychic-signature": 1},
    "trusts-jwk": {"token.embedded-jwk": 1},
    "trusts-jku": {"token.jku": 1},
    "trusts-x5u": {"token.x5u": 1},
    "kid-path": {"token.kid-injection": 1},
    "kid-sql": {"token.kid-injection": 1},
    "ignores-crit": {"token.unknown-crit": 1},
    "ignores-typ": {"token.typ-confusion": 2},
    "ignores-iat": {"token.future-iat": 1},
    "coerces-exp": {"token.exp-string": 1},
    "duplicates-last-wins": {"token.duplicate-claims": 2},
    "unbounded-size": {"token.oversized": 1},
    "token-from-query": {"token.in-query": 1},
    "token-from-cookie": {"token.in-cookie": 1},
}


@pytest.mark.parametrize("flaw", sorted(FOOLED))
def test_a_validator_with_one_classic_mistake_is_caught_by_its_probe(flaw: TokenFlaw) -> None:
    found = verdicts(PYJWT, FakeServer(token_flaws=frozenset({flaw})))
    assert failing(found) == Counter({(probe, OVER): n for probe, n in FOOLED[flaw].items()})


def test_a_validator_that_never_checks_signatures_is_caught_by_added_claims() -> None:
    found = failing(verdicts(PYJWT, FakeServer(token_flaws=frozenset({"unverified-signature"}))))
    assert found[("token.added-claims", OVER)] == 2
    assert found[("token.bad-signature", OVER)] == 1
    assert ("token.wrong-issuer", OVER) not in found  # the rest of its checks still hold


def test_every_literature_probe_passes_on_a_well_configured_server() -> None:
    found = verdicts(PYJWT, FakeServer())
    assert failing(found) == Counter()
    probes = {case.probe for case in found}
    assert {f"token.{name}" for name in ("jku", "x5u", "oversized", "in-query")} <= probes


def test_the_shop_behind_gateways_with_a_jwk_trusting_validator_fails_only_embedded_jwk() -> None:
    found = verdicts(SHOP, FakeServer(token_flaws=frozenset({"trusts-jwk"})))
    assert failing(found) == Counter({("token.embedded-jwk", OVER): 3})


def test_literature_probes_apply_to_token_required_boundaries_only() -> None:
    cases = verdicts(SHOP, FakeServer())
    boundaries = {c.boundary for c in cases if c.probe == "token.jku"}
    required = {n for n, s in SHOP.services.items() if s.ingress.token == "required"}
    assert boundaries
    assert boundaries <= required


def test_the_gateways_http_parser_refusal_of_an_oversized_head_is_a_refusal() -> None:
    # what our gateway answers to token.oversized: its HTTP parser refuses the 54 KB header line
    payload = json.dumps({"stage": "http", "reason": "malformed-request"}).encode()
    deny = {"X-Trustproof-Decision": "deny"}
    got = classify(400, deny, payload, from_gateway=True)
    assert got == ("denied_authz", "http", "malformed-request")
    assert classify(400, {}, payload, from_gateway=True)[0] == "allowed"  # not the gateway's


def test_the_token_travels_in_exactly_one_place() -> None:
    token = Secret("eyJ.eyJ.sig")
    request = HttpRequest("orders", "GET", "/orders?x=1", token=token)
    assert placed_token(request) == ("/orders?x=1", (("Authorization", "Bearer eyJ.eyJ.sig"),))
    query = replace(request, token_in="query")
    assert placed_token(query) == ("/orders?x=1&access_token=eyJ.eyJ.sig", ())
    cookie = replace(request, path="/orders", token_in="cookie")
    assert placed_token(cookie) == ("/orders", (("Cookie", "access_token=eyJ.eyJ.sig"),))
    assert placed_token(replace(request, token=None)) == ("/orders?x=1", ())
