"""The token service's request rules without sockets: each accepted shape next to its refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustproof.tokenservice.bodies import (
    ENDPOINTS,
    FORM,
    JSON,
    MAX_BODY,
    MAX_FIELDS,
    check_headers,
    check_target,
    parse_form,
    parse_json,
)
from trustproof.tokenservice.core import Reply


def refusal(result: object) -> tuple[int, str, str]:
    assert isinstance(result, Reply), result
    return result.status, result.body["error"], result.body["error_description"]


def test_exact_targets_pass() -> None:
    assert check_target("POST", "/token") is None
    assert check_target("GET", "/jwks.json") is None
    assert check_target("HEAD", "/.well-known/openid-configuration") is None


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("POST", "/%74oken", 404),
        ("POST", "/%2ftoken", 404),
        ("POST", "//token", 404),
        ("POST", "/./token", 404),
        ("POST", "/x/../token", 404),
        ("POST", "/token/", 404),
        ("POST", "/TOKEN", 404),
        ("POST", "https://127.0.0.1/token", 404),
        ("POST", "*", 404),
        ("POST", "/token?grant_type=client_credentials", 400),
        ("GET", "/token", 405),
        ("POST", "/jwks.json", 405),
    ],
)
def test_anything_else_is_refused(method: str, target: str, status: int) -> None:
    got, error, _ = refusal(check_target(method, target))
    assert (got, error) == (status, "invalid_request")


def test_header_checks_pass_for_a_plain_form() -> None:
    assert check_headers(FORM, None, 10, FORM) is None
    assert (
        check_headers("Application/X-WWW-Form-Urlencoded; Charset=UTF-8", "identity", 1, FORM)
        is None
    )
    assert check_headers('application/json; charset="utf-8"', None, None, JSON) is None


@pytest.mark.parametrize(
    ("content_type", "encoding", "length", "status", "fragment"),
    [
        (f"{FORM}; charset=bogus", None, 5, 400, "charset 'bogus'"),
        (f"{FORM}; charset=utf-16", None, 5, 400, "charset 'utf-16'"),
        (FORM, "gzip", 5, 415, "Content-Encoding 'gzip'"),
        (FORM, "br, gzip", 5, 415, "Content-Encoding"),
        ("text/plain", None, 5, 400, "send application/x-www-form-urlencoded"),
        (None, None, 5, 400, "send application/x-www-form-urlencoded"),
        (FORM, None, MAX_BODY + 1, 413, "larger than"),
    ],
)
def test_header_refusals(
    content_type: str | None, encoding: str | None, length: int, status: int, fragment: str
) -> None:
    got, error, description = refusal(check_headers(content_type, encoding, length, FORM))
    assert (got, error) == (status, "invalid_request")
    assert fragment in description


def test_form_parameters_are_decoded() -> None:
    assert parse_form(b"grant_type=client_credentials&audience=pay%20ments&x=") == {
        "grant_type": "client_credentials",
        "audience": "pay ments",
        "x": "",
    }
    assert parse_form(b"name=%C3%A9") == {"name": "\u00e9"}
    assert parse_form(b"") == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"grant_type=a&grant_type=client_credentials", "'grant_type' is repeated"),
        (b"audience=x&audience=x", "'audience' is repeated"),
        (b"token=\xff", "raw non-ASCII byte at offset 6"),
        (b"token=%ff", "not UTF-8"),
        (b"token", "malformed"),
        (b"=x", "empty name"),
        (b"&".join(b"p%d=1" % i for i in range(MAX_FIELDS + 1)), "more than"),
        (b"a=" + b"x" * MAX_BODY, "larger than"),
    ],
)
def test_form_refusals(body: bytes, fragment: str) -> None:
    status, error, description = refusal(parse_form(body))
    assert (status, error) in ((400, "invalid_request"), (413, "invalid_request"))
    assert fragment in description


def test_json_object_is_accepted() -> None:
    assert parse_json(b'{"subject": "alice"}') == {"subject": "alice"}


@pytest.mark.parametrize(
    "body", [b"[1]", b"\xff", b"{", b"[" * 50_000, b'{"a": 1' + b"0" * 5000 + b"}", b""]
)
def test_json_refusals(body: bytes) -> None:
    status, error, _ = refusal(parse_json(body))
    assert (status, error) == (400, "invalid_request")


# -- properties: no input makes the rules raise, and only exact endpoints pass -------------------


@given(st.binary(max_size=512))
def test_any_form_body_is_parameters_or_a_4xx(body: bytes) -> None:
    result = parse_form(body)
    if isinstance(result, Reply):
        assert 400 <= result.status < 500
        assert result.body["error"] == "invalid_request"
    else:
        assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in result.items())


@given(st.binary(max_size=512))
def test_any_json_body_is_an_object_or_a_4xx(body: bytes) -> None:
    result = parse_json(body)
    assert isinstance(result, dict) or 400 <= result.status < 500


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=40)), st.integers(-1, 10**9))
def test_any_headers_pass_or_get_a_4xx(content_type: str, coding: str | None, length: int) -> None:
    result = check_headers(content_type, coding, length, FORM)
    assert result is None or 400 <= result.status < 500


@given(st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS"]), st.text(max_size=60))
def test_only_exact_endpoints_pass(method: str, target: str) -> None:
    result = check_target(method, target)
    assert result is None or 400 <= result.status < 500
    if result is None:
        assert target in ENDPOINTS
