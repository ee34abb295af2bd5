"""Constants and helpers shared by the token unit tests (conftest.py holds the fixtures)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trustproof.identity.svid import x5t_s256
from trustproof.tokens._jose import b64url_encode, json_bytes
from trustproof.tokens.issuer import sign
from trustproof.tokens.keys import SigningKey

ISSUER = "https://tokens.shop.test"
SUBJECT = "spiffe://shop.test/storefront"
AUDIENCE = "spiffe://shop.test/orders"
OTHER_WORKLOAD = "spiffe://shop.test/payments"
PEER_X5T = x5t_s256(b"storefront certificate DER")
OTHER_X5T = x5t_s256(b"someone else's certificate DER")
START = datetime(2030, 1, 1, tzinfo=UTC)


def handmade(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with exactly this header and payload (signature as given, often garbage)."""
    head = b64url_encode(json_bytes(dict(header)))
    body = b64url_encode(json_bytes(dict(claims)))
    return f"{head}.{body}.{b64url_encode(signature)}"


def signed(claims: Mapping[str, Any], key: SigningKey, *, typ: str = "at+jwt") -> str:
    """`claims` signed for real by `key` (for claim shapes the issuer would never produce)."""
    return sign(claims, key, typ=typ)
