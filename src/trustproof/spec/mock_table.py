"""How a mock dependency answers, decided without I/O: the credentials first, then the spec's
response table (`trustproof.spec.dependencies.MockResponse`).

    decision = decide(dependency, "POST", "/v1/charges?x=1", presented=("k",), expected=secret)
    decision.status, decision.headers, decision.body, decision.record

* Credentials: exactly one value of the credentials header, equal (constant time) to the
  expected one; missing -> 401 ``credentials-missing``, anything else -> 401
  ``credentials-wrong``. The table is not consulted for a refused request.
* The table: the first row whose method is the request's and whose path template matches the
  request path (query ignored; a ``{param}`` matches one non-empty segment, literal segments
  match exactly) answers with its status, headers and body.
* No row matches -> 404 with a JSON body saying so (method, path and the paths the table has).

Every decision carries a `MockRecord` (what the mock records about the request): never the
credentials' value, only whether they were right.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from trustproof.scrub import Secret
from trustproof.spec.dependencies import MockResponse

CredentialCheck = Literal["ok", "missing", "wrong"]
MOCK_HEADER = "X-Trustproof-Mock"  # on every answer of a mock: which dependency answered


@dataclass(frozen=True)
class MockRecord:
    """One request the mock saw (no header values: credentials never appear here)."""

    dependency: str
    method: str
    path: str
    credentials: CredentialCheck
    status: int
    row: int | None  # the response-table row that answered (None: refused or no match)


@dataclass(frozen=True)
class MockDecision:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    record: MockRecord


def _segments(path: str) -> list[str]:
    return [] if path == "/" else path.strip("/").split("/")


def path_matches(template: str, path: str) -> bool:
    """Does request `path` (no query) match `template` (literal segments, ``{param}``)?"""
    if template == path:
        return True
    want, got = _segments(template), _segments(path)
    if len(want) != len(got) or path.endswith("/") != template.endswith("/"):
        return False
    for pattern, segment in zip(want, got, strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            if not segment:
                return False
        elif pattern != segment:
            return False
    return True


def match(responses: Sequence[MockResponse], method: str, path: str) -> int | None:
    """The index of the first row answering `method path`, or None."""
    for index, row in enumerate(responses):
        if row.method == method.upper() and path_matches(row.path, path):
            return index
    return None


def check_credentials(presented: Sequence[str], expected: Secret[str]) -> CredentialCheck:
    if not presented:
        return "missing"
    if len(presented) != 1:
        return "wrong"
    ok = hmac.compare_digest(presented[0].encode(), expected.reveal().encode())
    return "ok" if ok else "wrong"


def _json(
    status: int, payload: dict[str, object]
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    return status, (("Content-Type", "application/json"),), body


def decide(
    name: str,
    responses: Sequence[MockResponse],
    header: str,
    method: str,
    target: str,
    *,
    presented: Sequence[str],
    expected: Secret[str],
) -> MockDecision:
    """The answer of dependency `name`'s mock to `method target`, whose credentials header
    `header` carried `presented` (every value of it)."""
    path = target.split("?", 1)[0].split("#", 1)[0] or "/"
    check = check_credentials(presented, expected)
    row: int | None = None
    if check != "ok":
        status, headers, body = _json(
            401,
            {
                "error": f"credentials-{check}",
                "detail": f"the {header} header is {check}: only the egress proxy for "
                f"{name} adds the right value",
            },
        )
        headers = (*headers, ("WWW-Authenticate", f'ApiKey header="{header}"'))
    else:
        row = match(responses, method, path)
        if row is None:
            status, headers, body = _json(
                404,
                {
                    "error": "no-mock-response",
                    "detail": f"the mock of {name} has no response for {method.upper()} {path}",
                    "table": [f"{r.method} {r.path}" for r in responses],
                },
            )
        else:
            answer = responses[row]
            status = int(answer.status)
            headers = tuple((str(k), v) for k, v in answer.headers.items())
            body = answer.body.encode()
    record = MockRecord(name, method.upper(), path, check, status, row)
    return MockDecision(status, (*headers, (MOCK_HEADER, name)), body, record)
