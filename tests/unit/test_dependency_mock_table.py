"""How a mocked dependency answers (`spec.mock_table`), what its egress proxy refuses to forward
(`gateway.dependency.target_problem`) and where the credentials come from
(`sandbox.dependencies.read_credentials`): pure decisions, no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustproof.errors import SandboxError
from trustproof.gateway.dependency import Upstream, path_of, target_problem
from trustproof.sandbox.dependencies import read_credentials
from trustproof.scrub import Secret
from trustproof.spec import parse_spec
from trustproof.spec.mock_table import MOCK_HEADER, decide, match, path_matches

SPEC = """\
trust_domain: t.test
services:
  pay: {command: [python, p.py], port: 18200, calls: [psp, bank]}
dependencies:
  psp:
    mode: mock
    host: api.psp.example
    port: 443
    credentials: {header: X-Api-Key, env: TPT_UNIT_PSP_KEY}
    mock:
      responses:
        - {method: POST, path: /v1/charges, status: 201, body: created}
        - {method: GET, path: '/v1/charges/{id}', body: one, headers: {X-Row: b}}
        - {method: GET, path: /v1/charges/export, body: never}
  bank:
    mode: real
    host: staging.bank.example
    port: 8443
    credentials: {header: Authorization, env: TPT_UNIT_BANK_TOKEN}
"""
KEY = Secret("k-unit-secret")


@pytest.fixture
def spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse_spec(SPEC, tmp_path / "trustproof.yaml")


@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("/v1/charges", "/v1/charges", True),
        ("/v1/charges", "/v1/charges/", False),
        ("/v1/charges/{id}", "/v1/charges/7", True),
        ("/v1/charges/{id}", "/v1/charges/", False),
        ("/v1/charges/{id}", "/v1/charges/7/refunds", False),
        ("/v1/{a}/{b}", "/v1/x/y", True),
        ("/", "/", True),
        ("/", "/x", False),
    ],
)
def test_path_templates_match_one_segment_per_placeholder(
    template: str, path: str, matches: bool
) -> None:
    assert path_matches(template, path) is matches


def test_the_first_matching_row_answers(spec) -> None:  # type: ignore[no-untyped-def]
    rows = spec.dependencies["psp"].mock.responses
    assert match(rows, "POST", "/v1/charges") == 0
    assert match(rows, "get", "/v1/charges/ch_1") == 1
    assert match(rows, "GET", "/v1/charges/export") == 1  # the template row comes first
    assert match(rows, "DELETE", "/v1/charges/1") is None


def test_the_mock_answers_with_the_row_and_records_no_secret(spec) -> None:  # type: ignore[no-untyped-def]
    rows = spec.dependencies["psp"].mock.responses
    decision = decide(
        "psp",
        rows,
        "X-Api-Key",
        "GET",
        "/v1/charges/9?expand=1",
        presented=("k-unit-secret",),
        expected=KEY,
    )
    assert (decision.status, decision.body) == (200, b"one")
    assert ("X-Row", "b") in decision.headers
    assert (MOCK_HEADER, "psp") in decision.headers
    record = decision.record
    assert (record.method, record.path, record.credentials, record.row) == (
        "GET",
        "/v1/charges/9",
        "ok",
        1,
    )
    assert "k-unit-secret" not in repr(record) + repr(decision)


@pytest.mark.parametrize(
    ("presented", "check"),
    [((), "missing"), (("guess",), "wrong"), (("k-unit-secret", "k-unit-secret"), "wrong")],
)
def test_without_the_credentials_the_mock_answers_401_and_consults_no_row(
    spec,
    presented: tuple[str, ...],
    check: str,  # type: ignore[no-untyped-def]
) -> None:
    rows = spec.dependencies["psp"].mock.responses
    decision = decide(
        "psp", rows, "X-Api-Key", "POST", "/v1/charges", presented=presented, expected=KEY
    )
    assert decision.status == 401
    assert json.loads(decision.body)["error"] == f"credentials-{check}"
    assert decision.record.row is None
    assert decision.record.credentials == check
    assert b"k-unit-secret" not in decision.body


def test_an_unmatched_request_is_a_404_saying_so(spec) -> None:  # type: ignore[no-untyped-def]
    rows = spec.dependencies["psp"].mock.responses
    decision = decide(
        "psp", rows, "X-Api-Key", "PUT", "/v2/x", presented=("k-unit-secret",), expected=KEY
    )
    assert decision.status == 404
    body = json.loads(decision.body)
    assert body["error"] == "no-mock-response"
    assert "PUT /v2/x" in body["detail"]
    assert body["table"][0] == "POST /v1/charges"


UP = Upstream(
    "bank", "staging.bank.example", 8443, "https", "https://staging.bank.example:8443", ""
)
OWN = "127.0.0.1:40111"


@pytest.mark.parametrize(
    ("method", "target", "host", "refused"),
    [
        ("GET", "/v1/x", OWN, None),
        ("GET", "/v1/x", None, None),  # HTTP/1.0
        ("GET", "/v1/x", "staging.bank.example", None),
        ("GET", "/v1/x", "STAGING.bank.example:8443", None),
        ("GET", "https://staging.bank.example:8443/v1/x", OWN, None),
        ("GET", "/v1/x", "evil.example", "the Host header names 'evil.example'"),
        ("GET", "/v1/x", "staging.bank.example:443", "the Host header names"),
        ("GET", "/v1/x", "127.0.0.1:5432", "the Host header names"),
        ("GET", "http://192.0.2.10/v1/x", OWN, "the request names '192.0.2.10'"),
        ("GET", "http://user@staging.bank.example:8443/", OWN, "the request names"),
        ("CONNECT", "evil.example:443", "evil.example:443", "CONNECT tunnels are not offered"),
        ("GET", "*", OWN, "neither a path nor an http URL"),
    ],
)
def test_the_proxy_refuses_any_target_but_its_dependency(
    method: str, target: str, host: str | None, refused: str | None
) -> None:
    problem = target_problem(method, target, host, UP, OWN)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None
        assert refused in problem


def test_the_path_sent_upstream_drops_the_authority() -> None:
    assert path_of("https://staging.bank.example:8443/v1/x?y=1") == "/v1/x?y=1"
    assert path_of("/v1/x?y=1") == "/v1/x?y=1"
    assert UP.authority == "staging.bank.example:8443"


def test_a_real_dependency_needs_its_variable_and_the_error_names_only_the_variable(
    spec,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(SandboxError) as info:
        read_credentials("bank", spec.dependencies["bank"], {})
    assert "TPT_UNIT_BANK_TOKEN" in str(info.value)
    assert "export TPT_UNIT_BANK_TOKEN=" in info.value.hint
    secret = read_credentials("bank", spec.dependencies["bank"], {"TPT_UNIT_BANK_TOKEN": "s3"})
    assert secret is not None
    assert secret.reveal() == "s3"
    assert "s3" not in repr(secret)


def test_a_mock_without_its_variable_gets_a_random_value_per_run(spec) -> None:  # type: ignore[no-untyped-def]
    first = read_credentials("psp", spec.dependencies["psp"], {})
    second = read_credentials("psp", spec.dependencies["psp"], {})
    assert first is not None
    assert second is not None
    assert len(first.reveal()) >= 32
    assert first.reveal() != second.reveal()
    given = read_credentials("psp", spec.dependencies["psp"], {"TPT_UNIT_PSP_KEY": "mine"})
    assert given is not None
    assert given.reveal() == "mine"


def test_a_value_with_a_line_break_is_refused_without_showing_it(spec) -> None:  # type: ignore[no-untyped-def]
    environ = {"TPT_UNIT_BANK_TOKEN": "s3cr3t\r\nX-Evil: 1"}
    with pytest.raises(SandboxError) as info:
        read_credentials("bank", spec.dependencies["bank"], environ)
    assert "TPT_UNIT_BANK_TOKEN" in str(info.value)
    assert "s3cr3t" not in str(info.value)
