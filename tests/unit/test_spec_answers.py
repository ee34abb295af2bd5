"""The ``expect`` and ``refuses`` keys of a service: what they accept, and every bad value reported
at its place with a hint (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import parse_spec
from trustproof.spec.schema import json_schema

HEAD = """\
trust_domain: t.test
services:
  inv:
    command: x
    port: 1
    routes: [GET /items, POST /items]
    ingress: {gateway: GATEWAY}
"""


def spec_with(extra: str, gateway: str = "none") -> str:
    return HEAD.replace("GATEWAY", gateway) + extra


def test_a_full_declaration_reads(tmp_path: Path) -> None:
    text = spec_with(
        "    expect:\n"
        "      status: [200, 201]\n"
        "      header: {X-App: inv}\n"
        "      body: items\n"
        '      json: {"/kind": list, "/n": [1, {"a": null}]}\n'
        "      routes:\n"
        "        post /items: {status: 201}\n"
        "    refuses: {tls: [400, 495], authn: 401, authz: [403, 404]}\n"
    )
    service = parse_spec(text, tmp_path / "s.yaml").services["inv"]
    assert service.expect is not None
    assert service.expect.status == (200, 201)
    assert service.expect.header == (("X-App", "inv"),)
    assert dict(service.expect.json.expected()) == {"/kind": "list", "/n": [1, {"a": None}]}
    assert service.expect.routes["POST /items"].status == (201,)
    assert service.refuses is not None
    assert (service.refuses.tls, service.refuses.authn, service.refuses.authz) == (
        (400, 495),
        (401,),
        (403, 404),
    )


BAD = [
    ("    expect: {status: 700}\n", "services.inv.expect.status", "HTTP status code"),
    ("    expect: {status: []}\n", "services.inv.expect.status", "1 to 64"),
    ("    expect: {status: '200'}\n", "services.inv.expect.status", "HTTP status code"),
    ("    expect: {header: 'X App'}\n", "services.inv.expect.header", "bad header name"),
    ("    expect: {header: {X-App: 1}}\n", "services.inv.expect.header", "quote the value"),
    ("    expect: {json: {kind: x}}\n", "services.inv.expect.json", "bad JSON Pointer"),
    ("    expect: {json: {/d: 2024-01-01}}\n", "services.inv.expect.json", "not plain JSON"),
    ("    expect: {routes: {GET /nope: {}}}\n", "services.inv.expect.routes.GET /nope", "not dec"),
    ("    expect: {statsu: 200}\n", "services.inv.expect.statsu", "unknown key"),
    ("    refuses: {authn: 200}\n", "services.inv.refuses.authn", "not a refusal"),
    ("    refuses: {authn: 401, authz: [403, 401]}\n", "services.inv.refuses.authz", "one"),
    ("    refuses: {authx: 401}\n", "services.inv.refuses.authx", "unknown key"),
]


@pytest.mark.parametrize(("extra", "where", "says"), BAD)
def test_bad_values_are_reported_where_they_are(
    tmp_path: Path, extra: str, where: str, says: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(extra), tmp_path / "s.yaml")
    problems = caught.value.problems
    assert [p.path for p in problems] == [where]
    assert says in f"{problems[0].message} {problems[0].hint}"
    assert problems[0].line == 8


@pytest.mark.parametrize("key", ["expect: {status: 200}", "refuses: {authn: 401}"])
def test_behind_a_gateway_they_are_refused_not_ignored(tmp_path: Path, key: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(f"    {key}\n", gateway="trustproof"), tmp_path / "s.yaml")
    (problem,) = caught.value.problems
    assert "only to services with ingress.gateway: none" in problem.message
    assert problem.hint


def test_the_schema_describes_them() -> None:
    defs = json_schema()["$defs"]
    service = defs["Service"]["properties"]
    assert {"expect", "refuses"} <= set(service)
    assert "gateway: none" in service["expect"]["description"]
    assert set(defs["Refuses"]["properties"]) == {"tls", "authn", "authz"}
    assert set(defs["Expect"]["properties"]) == {"status", "header", "body", "json", "routes"}
