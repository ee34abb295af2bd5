"""Presentations are immutable values whose evidence text is rendered from their fields, and every
transport failure the view reports maps to one documented outcome (no sockets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args

import pytest

from trustproof.probes.http import FAILURES, result_of
from trustproof.probes.presentation import Presentation
from trustproof.scrub import Secret
from trustproof.spec.load import load_spec
from trustproof.view import ClientCert, FailureKind, TransportFailure
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")


def valid() -> Presentation:
    return Presentation.valid(FakeView(SHOP), "storefront", "orders", "GET /orders/{id}")


def test_the_valid_presentation_of_a_workload_is_its_certificate_and_a_bound_token() -> None:
    how = valid()
    assert (how.cert, how.path, how.bound) == (ClientCert("storefront"), "/orders/1", True)
    assert how.describe() == "as storefront with its certificate"
    with pytest.raises(dataclasses.FrozenInstanceError):
        how.path = "/other"  # type: ignore[misc]


def test_each_broken_part_is_described_from_the_fields_never_by_editing_text() -> None:
    how = valid()
    broken = dataclasses.replace(how, cert=ClientCert("storefront", "expired"), tls="legacy")
    assert broken.describe() == (
        "as storefront with a certificate that is expired, offering only TLS 1.0/1.1"
    )
    tokenless = how.with_token(None, "none")
    assert tokenless.describe() == "as storefront with its certificate, no token"
    assert how.describe() == "as storefront with its certificate"  # the original is unchanged
    secret = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"
    assert secret not in repr(how.with_token(Secret(secret), "broken", "alg-none"))


OUTCOMES = {
    "server-cert-refused": "error",
    "handshake-failed": "denied_tls",
    "connection-closed": "denied_tls",
    "connection-failed": "denied_tls",
    "connection-reset": "denied_tls",
    "connection-refused": "unreachable",
    "timeout": "unreachable",
    "client-error": "error",
}


@pytest.mark.parametrize("kind", get_args(FailureKind))
def test_every_transport_failure_has_its_outcome(kind: FailureKind) -> None:
    result = result_of(
        TransportFailure(kind, "detail", "https://x"), "sent", 1.0, from_gateway=True
    )
    assert result.outcome == OUTCOMES[kind] == FAILURES[kind][0]
    assert result.evidence.status is None
