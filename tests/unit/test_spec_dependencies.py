"""The ``dependencies:`` section: a good one loads typed; each bad one is reported at its
LINE:COL with its field path, message and hint, like every other spec problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.plan import dependency_edges
from trustproof.spec import parse_spec

HEAD = """\
trust_domain: shop.test
services:
  payments:
    command: [python, payments.py]
    port: 18103
    calls: [psp]
"""
GOOD = """\
dependencies:
  psp:
    mode: mock
    host: API.PSP.example
    port: 443
    credentials: {header: X-Api-Key, env: PSP_KEY}
    mock:
      responses:
        - {method: POST, path: /v1/charges, status: 201, body: '{"id": 1}'}
        - {method: GET, path: '/v1/charges/{id}', headers: {Content-Type: application/json}}
"""


def test_a_mocked_dependency_loads_typed(tmp_path: Path) -> None:
    spec = parse_spec(HEAD + GOOD, tmp_path / "trustproof.yaml")
    psp = spec.dependencies["psp"]
    assert (psp.mode, psp.host, psp.port, psp.scheme) == ("mock", "api.psp.example", 443, "https")
    assert psp.credentials is not None
    assert (psp.credentials.header, psp.credentials.env) == ("X-Api-Key", "PSP_KEY")
    assert psp.mock is not None
    rows = psp.mock.responses
    assert [(r.method, r.path, r.status, r.body) for r in rows] == [
        ("POST", "/v1/charges", 201, '{"id": 1}'),
        ("GET", "/v1/charges/{id}", 200, ""),
    ]
    assert dict(rows[1].headers) == {"Content-Type": "application/json"}
    assert spec.services["payments"].calls == ("psp",)
    [edge] = dependency_edges(spec)
    assert (edge.caller, edge.dependency, edge.served_by, edge.variable) == (
        "payments",
        "psp",
        "response table",
        "TRUSTPROOF_DEPENDENCY_PSP_URL",
    )


def test_a_real_dependency_with_its_ca_loads(tmp_path: Path) -> None:
    (tmp_path / "staging-ca.pem").write_text("not read here\n")
    text = HEAD + (
        "dependencies:\n  psp: {mode: real, host: 192.0.2.20, port: 8443, ca: staging-ca.pem,"
        " credentials: {header: Authorization, env: PSP_TOKEN}}\n"
    )
    spec = parse_spec(text, tmp_path / "trustproof.yaml")
    assert spec.dependencies["psp"].ca == "staging-ca.pem"
    [edge] = dependency_edges(spec)
    assert edge.served_by == "https://192.0.2.20:8443"


def dep(body: str) -> str:
    return HEAD + "dependencies:\n  psp:\n" + body


MOCK_OK = "    mode: mock\n    host: api.psp.example\n    port: 443\n"
CREDS = "    credentials: {header: X-Api-Key, env: PSP_KEY}\n"
ROWS = "    mock: {responses: [{method: GET, path: /x}]}\n"

CASES: list[tuple[str, str, str, str]] = [
    (
        "unknown-mode",
        dep("    mode: stub\n    host: a.example\n    port: 443\n"),
        "9:11: dependencies.psp.mode: 'stub' is not allowed here (expected one of 'mock', 'real')",
        "",
    ),
    (
        "host-with-scheme",
        dep("    mode: real\n    host: https://a.example\n    port: 443\n"),
        "10:11: dependencies.psp.host: bad host 'https://a.example'",
        "bare host name",
    ),
    (
        "mock-without-mock",
        dep(MOCK_OK + CREDS),
        "8:3: dependencies.psp: dependency 'psp' has mode: mock but no mock",
        "response table",
    ),
    (
        "mock-without-credentials",
        dep(MOCK_OK + ROWS),
        "8:3: dependencies.psp: the mock of 'psp' needs credentials",
        "only the egress proxy",
    ),
    (
        "mock-command-and-responses",
        dep(
            MOCK_OK + CREDS + "    mock: {command: [python, m.py], port: 9000, responses: "
            "[{method: GET, path: /}]}\n"
        ),
        "13:12: dependencies.psp.mock.command: the mock has both a command and responses",
        "keep one",
    ),
    (
        "mock-command-without-port",
        dep(MOCK_OK + CREDS + "    mock: {command: [python, m.py]}\n"),
        "13:12: dependencies.psp.mock.command: a mock command needs the port it listens on",
        "127.0.0.1",
    ),
    (
        "mock-port-without-command",
        dep(MOCK_OK + CREDS + "    mock: {port: 9000, responses: [{method: GET, path: /}]}\n"),
        "13:12: dependencies.psp.mock.port: mock.port applies only with a mock command",
        "",
    ),
    (
        "mock-port-taken-by-a-service",
        dep(MOCK_OK + CREDS + "    mock: {command: [python, m.py], port: 18103}\n"),
        "13:43: dependencies.psp.mock.port: port 18103 on 127.0.0.1 is already used by "
        "services.payments.port",
        "",
    ),
    (
        "dead-row",
        dep(
            MOCK_OK + CREDS + "    mock:\n      responses:\n        - {method: GET, path: /x}\n"
            "        - {method: GET, path: /x, status: 500}\n"
        ),
        "16:11: dependencies.psp.mock.responses[1]: GET /x is already answered by responses[0]",
        "first matching row",
    ),
    (
        "bad-mock-path",
        dep(MOCK_OK + CREDS + "    mock: {responses: [{method: GET, path: 'v1/x'}]}\n"),
        "13:44: dependencies.psp.mock.responses[0].path: bad path 'v1/x'",
        "/v1/charges/{id}",
    ),
    (
        "bad-status",
        dep(MOCK_OK + CREDS + "    mock: {responses: [{method: GET, path: /, status: 42}]}\n"),
        "13:55: dependencies.psp.mock.responses[0].status: expected an HTTP status code",
        "",
    ),
    (
        "host-header-as-credentials",
        dep(MOCK_OK + ROWS + "    credentials: {header: Host, env: PSP_KEY}\n"),
        "13:27: dependencies.psp.credentials.header: Host is set by the HTTP framing or the proxy",
        "X-Api-Key",
    ),
    (
        "reserved-credentials-variable",
        dep(MOCK_OK + ROWS + "    credentials: {header: X-Api-Key, env: TRUSTPROOF_KEY}\n"),
        "13:43: dependencies.psp.credentials.env: TRUSTPROOF_KEY is reserved",
        "",
    ),
    (
        "real-with-a-mock",
        dep("    mode: real\n    host: a.example\n    port: 443\n" + ROWS),
        "12:5: dependencies.psp.mock: mock applies only to mode: mock",
        "set mode: mock",
    ),
    (
        "missing-ca-file",
        dep("    mode: real\n    host: a.example\n    port: 443\n    ca: nope.pem\n"),
        "12:9: dependencies.psp.ca: CA file",
        "",
    ),
    (
        "ca-with-plain-http",
        dep(
            "    mode: real\n    host: a.example\n    port: 80\n    scheme: http\n"
            "    ca: nope.pem\n"
        ),
        "13:5: dependencies.psp.ca: ca applies only to scheme: https",
        "",
    ),
    (
        "ca-on-a-mock",
        dep(MOCK_OK + CREDS + ROWS + "    ca: nope.pem\n"),
        "14:5: dependencies.psp.ca: ca applies only to mode: real",
        "",
    ),
    (
        "name-shared-with-a-service",
        HEAD.replace("calls: [psp]", "calls: []")
        + "dependencies:\n  payments: {mode: real, host: a.example, port: 443}\n",
        "8:3: dependencies.payments: 'payments' is already defined in services.payments",
        "dependencies share one namespace",
    ),
    (
        "calls-an-undefined-dependency",
        HEAD.replace("calls: [psp]", "calls: [pps]")
        + "dependencies:\n  psp: {mode: real, host: a.example, port: 443}\n",
        "6:13: services.payments.calls[0]: calls an undefined service 'pps'",
        "did you mean 'psp'?",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "hint"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_bad_dependency_is_reported_where_it_is_written(
    tmp_path: Path, text: str, expected: str, hint: str
) -> None:
    path = tmp_path / "trustproof.yaml"
    with pytest.raises(SpecError) as info:
        parse_spec(text, path)
    heads = [problem.render().splitlines()[0] for problem in info.value.problems]
    wanted = f"{path}:{expected}"
    matching = [i for i, head in enumerate(heads) if head.startswith(wanted)]
    assert matching, f"expected a problem starting {wanted!r}, got:\n" + "\n".join(heads)
    assert hint in info.value.problems[matching[0]].hint
