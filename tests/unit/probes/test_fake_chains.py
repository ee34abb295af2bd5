"""The fake verifies each client certificate's chain once per trust bundle (`FakeView.chains`)
and still refuses a certificate revoked, or a root retired, after its chain was cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trustproof.spec.load import load_spec
from trustproof.view import ClientCert, HttpAnswer, HttpRequest
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")


def _reason(view: FakeView) -> str:
    """storefront -> orders, GET /orders (allowed): "allowed", or the refusal's reason."""
    request = HttpRequest(
        "orders",
        "GET",
        "/orders",
        cert=ClientCert("storefront"),
        token=view.token("storefront", "orders", bound=True),
    )
    answer = asyncio.run(view.send(request))
    assert isinstance(answer, HttpAnswer)
    event = view.audit_event(answer.headers["X-Trustproof-Request-Id"])
    assert event is not None
    return str(event["reason"])


def test_a_certificate_revoked_after_its_chain_was_cached_is_refused() -> None:
    view = FakeView(SHOP)
    assert [_reason(view) for _ in range(3)] == ["allowed"] * 3
    assert view.chains.hits == 2  # verified once, then reused
    view.revoke_cert(view.cert("storefront"))
    assert _reason(view) == "client-cert-revoked"
    assert view.chains.hits == 3  # the chain came from the cache; the revocation did not


def test_a_certificate_of_a_retired_root_is_refused_after_its_chain_was_cached() -> None:
    view = FakeView(SHOP)
    old_root = view.ca.root
    assert _reason(view) == "allowed"
    view.ca.rotate_root()
    assert _reason(view) == "allowed"  # the overlap: the old root is still in the bundle
    view.ca.retire_root(old_root)
    assert _reason(view) == "client-cert-untrusted"  # not in the bundle: the chain is rebuilt
