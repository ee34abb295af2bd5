"""The role-removed chaos scenario against the in-memory `FakeView`: it passes where the enforced
policy really changes, and fails — naming why — where the boundary keeps its old policy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trustproof.chaos.roles import role_removed
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.policy.engine import PolicyEngine
from trustproof.spec.load import load_spec
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")


class StalePolicyView(FakeView):
    """A boundary that never picks up a new policy."""

    @contextmanager
    def override_policy(self, engine: PolicyEngine) -> Iterator[None]:
        yield


def run(view: FakeView) -> ScenarioResult:
    return asyncio.run(role_removed(ScenarioEnv(view), Recorder("authz.role-removed")))


def test_a_role_removed_at_run_time_is_refused_on_the_next_call() -> None:
    result = run(FakeView(SHOP))
    assert (result.verdict, result.ok) == ("pass", True)
    assert "refused at once" in result.summary


def test_a_boundary_keeping_its_old_policy_fails_role_removed() -> None:
    result = run(StalePolicyView(SHOP))
    assert result.verdict == "fail"
    assert result.summary.startswith("not refused by the policy once the role was gone: HTTP 200")
