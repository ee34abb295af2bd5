"""The generated zero-trust cases as pytest items: the spec file is their collector, one item per
case, named by the case id (``token.expired | orders | storefront | GET /orders``), marked
``trustproof`` and ``trustproof_<family>`` (``trustproof_token``, ``trustproof_tls``, ...), so that
``-k`` and ``-m`` select them like any test.

The cases come from the probe registry (`trustproof.suite.runner.generate`, limited by the spec's
`probes.select`/`deselect`), and each runs through the suite's own `execute` and `judge`: the
verdict of an item is the verdict `trustproof run` gives the case. The multi-step scenarios are
not items (yet); `trustproof run` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from trustproof.errors import SpecError, TrustproofError
from trustproof.probes.model import Case, CaseResult
from trustproof.pytest_plugin.session import SESSION
from trustproof.results import evidence_lines, record_of
from trustproof.sandbox.choice import ENV as BACKEND_ENV
from trustproof.sandbox.choice import resolve_choice
from trustproof.scrub import scrub
from trustproof.spec import load_spec
from trustproof.suite.runner import generate


class CaseFailed(TrustproofError):
    """The case's verdict was not ``pass`` (an internal signal of `CaseItem`, shown by
    `repr_failure`)."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(f"{result.verdict}: {result.case.id}")
        self.result = result


def _quiet(_: str) -> None:
    """The local-backend notice is the sandbox's to give, once, when it starts."""


class SpecFile(pytest.File):
    """The spec: it collects one `CaseItem` per generated case."""

    def collect(self) -> Iterator[CaseItem]:
        try:
            spec = load_spec(self.path)
        except SpecError as exc:  # every problem, located, as `trustproof validate` shows them
            raise self.CollectError(scrub(exc.render())) from None
        try:  # the backend the session's sandbox will use decides which cases exist (egress)
            backend = resolve_choice(os.environ.get(BACKEND_ENV) or None, spec.backend, _quiet)
        except TrustproofError as exc:
            raise self.CollectError(scrub(str(exc))) from None
        for case in generate(spec, backend=backend):
            item = CaseItem.from_parent(self, name=case.id, case=case)
            item.add_marker("trustproof")
            item.add_marker(f"trustproof_{case.probe.split('.', 1)[0]}")
            yield item


class CaseItem(pytest.Item):
    """One generated case against the session's sandbox."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        result = self.config.stash[SESSION].live().run_case(self.case)
        if not result.ok:
            raise CaseFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if not isinstance(excinfo.value, CaseFailed):
            return scrub(str(super().repr_failure(excinfo, style=style)))
        record = record_of(excinfo.value.result)
        lines = [
            f"{record.verdict.upper()}: {record.id}",
            f"expected {record.expected}; observed {record.outcome}"
            + (f" at {record.stage}" if record.stage else "")
            + f" ({record.reason})",
            *evidence_lines(record.evidence),
        ]
        return scrub("\n".join(lines))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"trustproof case: {self.name}"
