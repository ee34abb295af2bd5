"""The suite's end of ``egress.observed``: what the services tried is read once the cases are done,
kept in the run's results, and written to the audit log as alert-worthy records — never a crash
of the run when it cannot be read."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.spec.load import load_spec
from trustproof.suite.runner import SuiteRun, observed_egress
from trustproof.view import EgressEvent
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml")
TRIED = (
    EgressEvent("orders", "dns", "api.evil.example", None, 2),
    EgressEvent("orders", "tcp", "192.0.2.10", 443, 3),
)


class AuditedSandbox:
    """The one thing `observed_egress` asks of a sandbox: its audit hook."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def audit_event(self, kind: str, **fields: Any) -> None:
        self.records.append((kind, fields))


def test_events_are_read_kept_and_audited() -> None:
    sandbox = AuditedSandbox()
    events = observed_egress(cast(Sandbox, sandbox), FakeView(SHOP, service_egress=TRIED))
    assert events == TRIED
    assert sandbox.records == [
        ("dns.refused", {"service": "orders", "count": 2, "name": "api.evil.example"}),
        (
            "egress.drop",
            {"service": "orders", "count": 3, "proto": "tcp", "address": "192.0.2.10", "port": 443},
        ),
    ]
    run = SuiteRun((), "2030-01-01T12:00:00+00:00", 1.0, counts=Counter(), egress_events=events)
    assert run.to_results().egress_events == TRIED


def test_a_sandbox_without_the_audit_hook_still_gets_the_events() -> None:
    events = observed_egress(cast(Sandbox, object()), FakeView(SHOP, service_egress=TRIED))
    assert events == TRIED


class BrokenView(FakeView):
    def egress_events(self) -> tuple[EgressEvent, ...]:
        raise RuntimeError("nft: cannot read the counters")


def test_unreadable_counters_are_logged_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    sandbox = AuditedSandbox()
    with caplog.at_level(logging.WARNING):
        assert observed_egress(cast(Sandbox, sandbox), BrokenView(SHOP)) == ()
    assert "cannot read the counters" in caplog.text
    assert sandbox.records == []


def test_an_audit_hook_that_fails_does_not_lose_the_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down:
        def audit_event(self, kind: str, **fields: Any) -> None:
            raise OSError("audit sink down")

    with caplog.at_level(logging.WARNING):
        events = observed_egress(cast(Sandbox, Down()), FakeView(SHOP, service_egress=TRIED))
    assert events == TRIED
    assert "audit sink down" in caplog.text
