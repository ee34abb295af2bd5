"""What a long `trustproof run` prints while it runs, where no live line can be drawn (CI)."""

from __future__ import annotations

import io

from rich.console import Console

from trustproof.cli.progress import EVERY_SECONDS, SuiteProgress
from trustproof.probes.model import Case, CaseResult, Evidence, Expectation, Result


def item(i: int, ok: bool = True) -> CaseResult:
    case = Case(
        "authz.inside-matrix", "orders", "gateway", "alice", f"GET /o/{i}", Expectation.allow()
    )
    result = Result("allowed" if ok else "denied_authz", "", "", Evidence(sent="x"))
    return CaseResult(case, result, "pass" if ok else "under-permission")


def test_a_plain_line_every_few_seconds_with_an_eta() -> None:
    buffer = io.StringIO()
    now = [0.0]
    with SuiteProgress(Console(file=buffer, width=200), clock=lambda: now[0]) as progress:
        progress.on_total(100)
        for i in range(40):
            now[0] += 0.5  # 2 cases a second
            progress.on_result(item(i, ok=i != 3))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "probing: 100 cases"
    # 40 cases over 20 s: a line at 10 s and one at 20 s, none per case
    assert lines[1:] == [
        "probing: 20/100 cases, 1 failing, 10 s, about 40 s left",
        "probing: 40/100 cases, 1 failing, 20 s, about 30 s left",
    ]
    assert EVERY_SECONDS == 10.0


def test_verbose_lists_every_case() -> None:
    buffer = io.StringIO()
    with SuiteProgress(Console(file=buffer, width=200), verbose=True, clock=lambda: 0.0) as p:
        p.on_result(item(1))
        p.on_result(item(2, ok=False))
        p.on_scenario("lifecycle.key-rotation")
    assert buffer.getvalue().splitlines() == [
        "PASS              authz.inside-matrix | orders | alice | GET /o/1",
        "UNDER-PERMISSION  authz.inside-matrix | orders | alice | GET /o/2",
        "scenario lifecycle.key-rotation",
    ]
