"""Bad specs: each problem is reported at its exact LINE:COL with its field path and message.

Every case is a whole small spec; the expected line is `LINE:COL: field.path: message` exactly as
`trustproof validate` prints it (after the file name), and, where given, a fragment of the hint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import parse_spec

HEAD = "trust_domain: shop.test\n"
SVC = """\
services:
  orders:
    command: [python, orders.py]
    port: 18102
    routes: [GET /orders, POST /orders]
"""

CASES: list[tuple[str, str, str, str]] = [
    (
        "unknown-top-level-key",
        HEAD + "servces: {}\n",
        "2:1: servces: unknown key 'servces'",
        "did you mean 'services'?",
    ),
    (
        "unknown-nested-key",
        HEAD + SVC + "    helth: {path: /healthz}\n",
        "7:5: services.orders.helth: unknown key 'helth'",
        "did you mean 'health'?",
    ),
    (
        "unknown-key-without-close-match",
        HEAD + "ttl: {certificate: 5m, zzz: 1s}\n",
        "2:24: ttl.zzz: unknown key 'zzz'",
        "expected one of: certificate, token",
    ),
    (
        "missing-trust-domain",
        "version: 1\n",
        "1:1: trust_domain: missing required key 'trust_domain'",
        "SPIFFE trust domain",
    ),
    (
        "missing-service-port",
        HEAD + "services:\n  orders:\n    command: run\n",
        "4:5: services.orders.port: missing required key 'port'",
        "",
    ),
    (
        "bad-duration-no-unit",
        HEAD + "ttl:\n  token: 120\n",
        "3:10: ttl.token: bad duration 120 (expected a number with a unit)",
        "durations need a unit",
    ),
    (
        "bad-duration-unknown-unit",
        HEAD + "ttl:\n  certificate: 5 minutes\n",
        "3:16: ttl.certificate: bad duration '5 minutes' (expected a number with a unit)",
        "300ms, 30s, 5m",
    ),
    (
        "zero-duration",
        HEAD + "ttl:\n  token: 0s\n",
        "3:10: ttl.token: bad duration '0s' (expected more than zero)",
        "",
    ),
    (
        "trust-domain-with-scheme",
        "trust_domain: spiffe://shop.test\n",
        "1:15: trust_domain: bad trust domain 'spiffe://shop.test' (expected the bare name, "
        "without 'spiffe://')",
        "write trust_domain: shop.test",
    ),
    (
        "trust-domain-uppercase",
        "trust_domain: Shop.Test\n",
        "1:15: trust_domain: bad trust domain 'Shop.Test' (expected lowercase letters, digits, "
        "'.', '-' or '_', at most 255 characters)",
        "",
    ),
    (
        "bad-spiffe-name",
        HEAD + "personas:\n  Alice Smith: {roles: [customer]}\n",
        "3:3: personas.Alice Smith: bad name 'Alice Smith' (expected 1-63 lowercase letters, "
        "digits, '.', '-' or '_', starting with a letter or digit)",
        "SPIFFE ID path segment",
    ),
    (
        "port-as-string",
        HEAD + "services:\n  orders:\n    command: run\n    port: '8080'\n",
        "5:11: services.orders.port: expected a port number, got '8080'",
        "write it unquoted",
    ),
    (
        "port-out-of-range",
        HEAD + "services:\n  orders:\n    command: run\n    port: 70000\n",
        "5:11: services.orders.port: port 70000 is out of range (expected 1-65535)",
        "",
    ),
    (
        "list-expected",
        HEAD + SVC + "    calls: payments\n",
        "7:12: services.orders.calls: expected a list, got a single value",
        "write a list",
    ),
    (
        "mapping-expected",
        HEAD + "services: [orders]\n",
        "2:11: services: expected a mapping, got a list",
        "",
    ),
    (
        "enum-typo",
        HEAD + SVC + "    ingress: {client_cert: requried}\n",
        "7:28: services.orders.ingress.client_cert: 'requried' is not allowed here (expected "
        "one of 'required', 'optional')",
        "did you mean 'required'?",
    ),
    (
        "yaml-boolean-trap",
        HEAD + SVC + "    ingress: {gateway: no}\n",
        "7:24: services.orders.ingress.gateway: false is not allowed here (expected one of "
        "'trustproof', 'none')",
        "quote the word you mean",
    ),
    (
        "bad-route-method",
        HEAD + "services:\n  orders:\n    command: run\n    port: 1\n    routes: [FETCH /x]\n",
        "6:14: services.orders.routes[0]: bad route 'FETCH /x': unknown method 'FETCH' (expected "
        "one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)",
        "METHOD and path template",
    ),
    (
        "bad-route-path",
        HEAD + "services:\n  orders:\n    command: run\n    port: 1\n    routes: [GET orders]\n",
        "6:14: services.orders.routes[0]: bad route 'GET orders': path 'orders' is not a path "
        "template (expected '/' followed by segments or {param} placeholders, no '//', no "
        "spaces)",
        "",
    ),
    (
        "non-loopback-host",
        HEAD + "services:\n  orders:\n    command: run\n    port: 1\n    host: 10.0.0.5\n",
        "6:11: services.orders.host: address 10.0.0.5 is not loopback (expected an address in "
        "127.0.0.0/8)",
        "never listens",
    ),
    (
        "call-to-undefined-service",
        HEAD + SVC + "    calls: [paymnets]\n",
        "7:13: services.orders.calls[0]: calls an undefined service 'paymnets'",
        "",
    ),
    (
        "two-services-one-port",
        HEAD + SVC + "  payments:\n    command: run\n    port: 18102\n",
        "9:11: services.payments.port: port 18102 on 127.0.0.1 is already used by "
        "services.orders.port (line 5)",
        "its own port",
    ),
    (
        "grant-for-undefined-role",
        HEAD + SVC + "datastores:\n  db:\n    roles:\n      billing:\n        t: [select]\n",
        "10:7: datastores.db.roles.billing: grant for an undefined role 'billing' (roles are "
        "named after the calling service)",
        "",
    ),
    (
        "unknown-privilege",
        HEAD + SVC + "datastores:\n  db:\n    roles:\n      orders:\n        t: [selekt]\n",
        "11:13: datastores.db.roles.orders.t[0]: unknown privilege 'selekt' (expected one of "
        "select, insert, update, delete, truncate, references, trigger)",
        "'all' is deliberately not accepted",
    ),
    (
        "matrix-unknown-caller",
        HEAD + SVC + "access:\n  services:\n    orders:\n      storefrnt: [GET /orders]\n",
        "10:7: access.services.orders.storefrnt: unknown caller 'storefrnt' (expected a service "
        "or a persona)",
        "",
    ),
    (
        "matrix-unknown-route",
        HEAD + SVC + "personas: {alice: {}}\n"
        "access:\n  services:\n    orders:\n      alice: [GET /order]\n",
        "11:15: access.services.orders.alice[0]: route 'GET /order' is not declared by service "
        "'orders'",
        "did you mean 'GET /orders'?",
    ),
    (
        "matrix-unknown-service",
        HEAD + SVC + "access:\n  services:\n    order: {}\n",
        "9:5: access.services.order: undefined service 'order'",
        "did you mean 'orders'?",
    ),
    (
        "matrix-edge-without-call",
        HEAD + SVC + "  storefront:\n    command: run\n    port: 1\n"
        "access:\n  services:\n    orders:\n      storefront: [GET /orders]\n",
        "13:7: access.services.orders.storefront: 'storefront' is expected to reach 'orders', "
        "but services.storefront.calls does not list 'orders'",
        "add orders to services.storefront.calls",
    ),
    (
        "missing-policy-file",
        HEAD + "policies:\n  files: [policies/missing.cedar]\n",
        "3:11: policies.files[0]: policy file 'policies/missing.cedar' does not exist",
        "relative to the directory of the spec file",
    ),
    (
        "duplicate-key",
        HEAD + "trust_domain: other.test\n",
        "2:1: trust_domain: duplicate key 'trust_domain' (first given at line 1)",
        "YAML keeps only the last one",
    ),
    (
        "name-clash-persona-service",
        HEAD + SVC + "personas:\n  orders: {}\n",
        "8:3: personas.orders: 'orders' is already defined in services.orders",
        "one namespace",
    ),
    (
        "reserved-name",
        HEAD + "personas:\n  trustproof-admin: {}\n",
        "3:3: personas.trustproof-admin: the name 'trustproof-admin' is reserved for the "
        "sandbox's own identities",
        "",
    ),
    (
        "unknown-probe-id",
        HEAD + "probes:\n  select: [token.expried]\n",
        "3:12: probes.select[0]: 'token.expried' matches no probe id",
        "did you mean 'token.expired'?",
    ),
    (
        "tab-indentation",
        HEAD + "ttl:\n\tcertificate: 5m\n",
        "3:1: YAML syntax error: found character '\\t' that cannot start any token",
        "indent with spaces",
    ),
    (
        "unquoted-braces-in-flow-list",
        HEAD + "services:\n  o:\n    command: x\n    port: 1\n    routes: [GET /o/{id}]\n",
        "6:21: YAML syntax error: expected ',' or ']', but got '{'",
        "quote routes with placeholders",
    ),
    (
        "wrong-version",
        "version: 2\n" + HEAD,
        "1:10: version: the number 2 is not allowed here (expected one of 1)",
        "",
    ),
    (
        "reserved-env-name",
        HEAD + SVC + "    env: {TRUSTPROOF_PORT: '1'}\n",
        "7:11: services.orders.env.TRUSTPROOF_PORT: TRUSTPROOF_PORT is reserved (TRUSTPROOF_* "
        "variables are set by the sandbox)",
        "",
    ),
    (
        "table-not-in-schema",
        HEAD + SVC + "datastores:\n  db:\n    schema: schema.sql\n    roles:\n      orders:\n"
        "        order: [select]\n",
        "12:9: datastores.db.roles.orders.order: table 'order' is not created by the schema of "
        "datastore 'db'",
        "did you mean 'orders'?",
    ),
    (
        "ambiguous-routes",
        HEAD + "services:\n  s:\n    command: x\n    port: 1\n"
        "    routes: ['GET /users/{id}', 'GET /{tenant}/admin']\n",
        "6:33: services.s.routes[1]: route 'GET /{tenant}/admin' overlaps 'GET /users/{id}' "
        "(routes[0]) and neither is more specific",
        "could pick different routes",
    ),
    (
        "duplicate-route",
        HEAD + "services:\n  s:\n    command: x\n    port: 1\n    routes: [GET /a, GET /a]\n",
        "6:22: services.s.routes[1]: route 'GET /a' is declared twice (also routes[0])",
        "remove one",
    ),
    (
        "datastore-caller-without-role",
        HEAD + SVC + "datastores:\n  db: {}\naccess:\n  datastores:\n    db:\n      orders:\n"
        "        orders: [select]\n",
        "12:7: access.datastores.db.orders: 'orders' is expected to reach 'db', but "
        "datastores.db.roles has no role for it",
        "add a role for orders",
    ),
]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "schema.sql").write_text("CREATE TABLE orders (id int);\n")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected", "hint"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_spec_reports_exact_location(
    spec_dir: Path, text: str, expected: str, hint: str
) -> None:
    path = spec_dir / "trustproof.yaml"
    with pytest.raises(SpecError) as info:
        parse_spec(text, path)
    problems = info.value.problems
    heads = [problem.render().splitlines()[0] for problem in problems]
    wanted = f"{path}:{expected}"
    matching = [i for i, head in enumerate(heads) if head.startswith(wanted)]
    assert matching, f"expected a problem starting {wanted!r}, got:\n" + "\n".join(heads)
    assert hint in problems[matching[0]].hint


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({case[0] for case in CASES}) == len(CASES)


def test_every_problem_is_reported_not_just_the_first(spec_dir: Path) -> None:
    text = HEAD + "ttl: {token: 5}\nservices:\n  a: {command: x, port: 0}\nbogus: 1\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, spec_dir / "s.yaml")
    paths = [p.path for p in info.value.problems]
    assert paths == ["ttl.token", "services.a.port", "bogus"]


def test_problems_render_as_file_line_col_with_hint(spec_dir: Path) -> None:
    path = spec_dir / "s.yaml"
    with pytest.raises(SpecError) as info:
        parse_spec(HEAD + "servces: {}\n", path)
    assert info.value.render() == (
        f"{path}:2:1: servces: unknown key 'servces'\n    hint: did you mean 'services'?"
    )


def test_empty_file(spec_dir: Path) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("# only a comment\n", spec_dir / "s.yaml")
    assert info.value.problems[0].message == "the file is empty"


def test_top_level_must_be_a_mapping(spec_dir: Path) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("- a\n- b\n", spec_dir / "s.yaml")
    assert (
        info.value.problems[0].render().endswith(":1:1: expected a mapping of settings, got a list")
    )


def test_a_more_specific_route_is_not_ambiguous(spec_dir: Path) -> None:
    """`/orders/new` beside `/orders/{id}`: the literal wins everywhere, as routers agree."""
    text = (
        HEAD + "services:\n  s:\n    command: x\n    port: 1\n"
        "    routes: ['GET /orders/{id}', GET /orders/new, 'GET /{a}/{b}/c', GET /x/y/c]\n"
    )
    spec = parse_spec(text, spec_dir / "s.yaml")
    assert len(spec.services["s"].routes) == 4
