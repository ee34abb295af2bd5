"""`assert_allowed` and `assert_denied`: read a `Response` the way the suite reads an answer
(`trustproof.probes.http.classify`) and fail with what was expected and what happened.

Behind a trustproof gateway only the gateway's own refusal counts as a refusal (a 403 the service
forwarded is an allow that reached the handler); an allow counts only when a handler answered.
An answer that is neither (a 5xx, an unknown status: ``inconclusive``) fails both assertions.
"""

from __future__ import annotations

from multidict import CIMultiDict

from trustproof.probes.http import classify
from trustproof.pytest_plugin.client import Response
from trustproof.scrub import scrub

__all__ = ["assert_allowed", "assert_denied", "observed"]


def observed(resp: Response) -> tuple[str, str, str]:
    """(outcome, stage, reason) of an answer: ``("denied_authz", "policy", "no-policy-permits")``
    or ``("allowed", "", "served by orders (HTTP 200)")``."""
    headers = CIMultiDict(resp.headers)  # field names match in any case (RFC 9110 §5.1)
    outcome, stage, reason = classify(
        resp.status, headers, resp.body, from_gateway=resp.via_gateway
    )
    return outcome, stage, reason


def _describe(resp: Response) -> str:
    outcome, stage, reason = observed(resp)
    where = f" at {stage}" if stage else ""
    request_id = resp.header("X-Trustproof-Request-Id")
    tail = f"; request id {request_id}" if request_id else ""
    return scrub(f"{resp.request}: {outcome}{where} ({reason}), HTTP {resp.status}{tail}")


def assert_allowed(resp: Response, *, served_by: str | None = None) -> None:
    """The request was allowed and a handler answered (`served_by`: that service's)."""
    outcome, _, _ = observed(resp)
    if outcome != "allowed":
        raise AssertionError(f"expected allowed; got {_describe(resp)}")
    if served_by is not None and resp.header("X-Served-By") != served_by:
        got = resp.header("X-Served-By") or "no X-Served-By marker"
        raise AssertionError(f"expected an answer served by {served_by}; got {got}")


def assert_denied(resp: Response, *, stage: str | None = None, reason: str | None = None) -> None:
    """The request was refused (at `stage`, for `reason`, when given): ``stage`` is the gateway
    stage (``tls``, ``token``, ``path``, ``policy``), ``reason`` its slug (``expired``,
    ``wrong-audience``, ...), as the refusal's JSON and the audit log name them."""
    outcome, got_stage, got_reason = observed(resp)
    if not outcome.startswith("denied_"):
        raise AssertionError(f"expected a refusal; got {_describe(resp)}")
    if stage is not None and got_stage != stage:
        raise AssertionError(f"expected a refusal at {stage}; got {_describe(resp)}")
    if reason is not None and got_reason != reason:
        raise AssertionError(f"expected a refusal for {reason}; got {_describe(resp)}")
