"""A gateway refusal at the new ``request`` stage (override headers, HTTP version) is a refusal
to the probes, never read as an answer that got through."""

from __future__ import annotations

import json

import pytest

from trustproof.probes.http import classify


@pytest.mark.parametrize("reason", ["method-override", "url-override", "http-version"])
def test_a_request_stage_refusal_is_denied(reason: str) -> None:
    payload = json.dumps({"stage": "request", "reason": reason}).encode()
    deny = {"X-Trustproof-Decision": "deny"}
    outcome, stage, got = classify(400, deny, payload, from_gateway=True)
    assert (outcome, stage, got) == ("denied_authz", "request", reason)


def test_a_400_the_service_answered_itself_still_counts_as_through() -> None:
    payload = json.dumps({"stage": "request", "reason": "method-override"}).encode()
    assert classify(400, {}, payload, from_gateway=True)[0] == "allowed"  # the twin
