"""What a team writes next to the generated cases: the calls their product depends on, and the
refusals they care most about, against the real sandbox of their spec (the shop's, here).

Run with `pytest` in this directory (pytest.ini names the spec); `-m "not trustproof"` runs only
these tests, `-k token.expired` only the generated cases of that probe.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from trustproof.pytest_plugin import assert_allowed, assert_denied


def test_alice_browses_the_catalogue(trustproof_client):
    resp = trustproof_client("alice").get("storefront", "/products")
    assert_allowed(resp, served_by="storefront")


def test_bob_cannot_check_out(trustproof_client):
    resp = trustproof_client("bob").post("storefront", "/checkout", json_body={"items": [1]})
    assert_denied(resp, stage="policy")


def test_the_storefront_reads_orders(trustproof_client):
    assert_allowed(trustproof_client("storefront").get("orders", "/orders"), served_by="orders")


def test_nobody_may_refund(trustproof_client):
    resp = trustproof_client("orders").post("payments", "/refunds", json_body={"id": 1})
    assert_denied(resp, stage="policy")


def test_no_token_is_refused_at_the_token_stage(trustproof_client):
    resp = trustproof_client("alice", token=False).get("storefront", "/products")
    assert_denied(resp, stage="token")


def test_a_token_for_another_service_is_refused(trustproof_client, trustproof_token):
    token = trustproof_token("alice", "orders")  # alice's, but for the orders service
    resp = trustproof_client("alice").get(
        "storefront", "/products", headers={"Authorization": f"Bearer {token}"}
    )
    assert_denied(resp, stage="token", reason="token-wrong-audience")


def test_our_own_client_with_trustproof_material(
    trustproof_sandbox, trustproof_cert, trustproof_token
):
    """Any HTTPS client works with the files `trustproof_cert` writes and a bound token."""
    cert = trustproof_cert("storefront")
    token = trustproof_token("storefront", "orders", bound_to=cert)
    context = ssl.create_default_context(cafile=str(cert.bundle))
    context.check_hostname = False  # SVIDs name a SPIFFE ID, not a host
    context.load_cert_chain(cert.cert, cert.key)
    url = urlsplit(trustproof_sandbox.url("orders"))
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=10)
    try:
        conn.request("GET", "/orders", headers={"Authorization": f"Bearer {token}"})
        answer = conn.getresponse()
        assert (answer.status, answer.getheader("X-Served-By")) == (200, "orders")
    finally:
        conn.close()
