"""`lifecycle.cert-rotation`'s part for a service terminating TLS itself, against the in-memory
`FakeView`: it passes where the service presents each new certificate, and fails — naming the
serial it still presents — where the service never picks up its rotated files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trustproof.chaos import own_rotation
from trustproof.chaos.rotation import cert_rotation
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.spec.load import load_spec
from trustproof.view.fake import FakeView

PYJWT = load_spec(
    Path(__file__).resolve().parents[3] / "examples" / "pyjwt-mtls" / "trustproof.yaml"
)


class StaleCertificateView(FakeView):
    """A service that keeps presenting the certificate it started with."""

    async def presented_serial(self, service: str, *, as_caller: str) -> int | None:
        return self.cert(service).serial


def run(view: FakeView) -> ScenarioResult:
    return asyncio.run(cert_rotation(ScenarioEnv(view), Recorder("lifecycle.cert-rotation")))


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_rotation, "INTERVAL_S", 0.01)
    monkeypatch.setattr(own_rotation, "RELOAD_MAX_WAIT_S", 0.05)
    monkeypatch.setattr(own_rotation, "POLL_S", 0.01)


def test_a_service_presenting_each_new_certificate_passes() -> None:
    result = run(FakeView(PYJWT))
    assert (result.verdict, result.ok) == ("pass", True)
    assert result.summary.startswith("0 of ")
    assert result.summary.endswith(
        "requests to inventory failed while it rotated its SVID 3 times; each new certificate "
        "was presented on new handshakes"
    )
    assert result.figures["rotations.inventory"] == own_rotation.ROTATIONS


def test_a_service_keeping_its_first_certificate_fails_naming_it() -> None:
    view = StaleCertificateView(PYJWT)
    first = view.cert("inventory").serial
    result = run(view)
    assert result.verdict == "fail"
    assert result.summary.startswith(f"inventory still presented {first:x} ")
    assert "did not reload its certificate files" in result.summary
    assert result.figures["rotations.inventory"] == 1
