"""``egress.dependency-direct`` against the `FakeView`: a mock that checks the credentials passes,
one that answers without them is an over-permission; cases only for mocked dependencies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trustproof.probes.model import judge
from trustproof.probes.registry import generate, probe_for
from trustproof.spec import load_spec
from trustproof.spec.model import Spec
from trustproof.view.fake import FakeServer, FakeView

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"


def shop() -> Spec:
    return load_spec(SHOP)


def test_one_case_per_service_and_mocked_dependency() -> None:
    cases = generate(shop(), ["egress.dependency-direct"])
    assert [case.id for case in cases] == [
        "egress.dependency-direct | payments | payments | call card-network | card-network"
    ]


def verdict(server: FakeServer) -> tuple[str, str]:
    [case] = generate(shop(), ["egress.dependency-direct"])
    view = FakeView(shop(), server)
    result = asyncio.run(probe_for(case).run(case, view))
    return judge(case, result), result.evidence.detail


def test_a_mock_refusing_callers_without_credentials_passes() -> None:
    found, detail = verdict(FakeServer())
    assert found == "pass", detail
    assert "through the proxy: HTTP 201 from card-network" in detail
    assert "direct: HTTP 401" in detail


def test_a_mock_answering_without_credentials_is_an_over_permission() -> None:
    found, detail = verdict(FakeServer(mock_ignores_credentials=True))
    assert found == "over-permission", detail
    assert "direct: HTTP 201" in detail
