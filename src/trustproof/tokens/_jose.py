"""Small, strict JOSE helpers shared by the issuer, the validator and the broken-token factory.

PyJWT does the cryptography; these helpers only do what must happen *before* it (reading the
protected header of an untrusted token without ever raising) or what PyJWT refuses to do (build
the unsigned and HS256 tokens that probes send on purpose).

Strictness, and why:

* base64url must be unpadded and canonical (RFC 7515 §2, §C): a token that decodes the same from
  two spellings would have two cache keys and two fingerprints in the audit log.
* JSON objects with duplicate member names are refused (RFC 7515 §5.2 allows refusing them): two
  parsers picking different duplicates is the classic route to ``{"alg":"none","alg":"ES256"}``.
* ES256 signatures are low-S only: for every ECDSA signature (r, s) the pair (r, n - s) verifies
  too, so each signed token has a second spelling with a different fingerprint (cache key, audit
  hash, any blocklist keyed on the token). The issuer writes the low-S one (`low_s`), the
  validator refuses the other (`es256_high_s`), as Bitcoin (BIP 62/146) and Ethereum do.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from trustproof.errors import TrustproofError

# Compact JWS: three base64url segments; the signature may be empty (unsigned `alg: none`).
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", re.ASCII)

# NumericDate bounds (RFC 7519 §2): from the epoch to the end of year 9999, so that any accepted
# value converts to a `datetime` without overflowing.
NUMERIC_DATE_MAX = 253_402_300_799


# The order n of the P-256 group (SEC 2 §2.4.2); ES256 signatures are r || s, 32 bytes each.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ES256_SIGNATURE_BYTES = 64


class JoseError(TrustproofError, ValueError):
    """A token part could not be decoded; the message says which and why (never the token)."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str, name: str) -> bytes:
    """Decode one unpadded, canonical base64url segment, or raise `JoseError` naming the part."""
    if len(segment) % 4 == 1:
        raise JoseError(f"the {name} is not valid base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JoseError(f"the {name} is not valid base64url") from exc
    if b64url_encode(data) != segment:
        raise JoseError(f"the {name} is not canonical base64url")
    return data


def es256_high_s(signature: bytes) -> bool:
    """True when a raw ES256 signature (r || s, RFC 7518 §3.4) has s above n/2: the malleable
    twin of the low-S signature (r, n - s). Another length is not judged here (PyJWT refuses it
    as a bad signature)."""
    if len(signature) != ES256_SIGNATURE_BYTES:
        return False
    return int.from_bytes(signature[32:], "big") > P256_ORDER // 2


def low_s(token: str) -> str:
    """`token` (a compact ES256 JWS) with its signature in low-S form: s replaced by n - s when
    s > n/2. The same signature for the verifier's mathematics, the one spelling we accept."""
    signed, _, segment = token.rpartition(".")
    signature = b64url_decode(segment, "signature")
    if not es256_high_s(signature):
        return token
    s = int.from_bytes(signature[32:], "big")
    return f"{signed}.{b64url_encode(signature[:32] + (P256_ORDER - s).to_bytes(32, 'big'))}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JoseError(f"duplicate member {short(key)}")
        result[key] = value
    return result


def json_object(data: bytes, name: str) -> dict[str, Any]:
    """Parse `data` as a JSON object without duplicate members, or raise `JoseError`."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except JoseError as exc:
        raise JoseError(f"the {name} has a {exc}") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JoseError(f"the {name} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise JoseError(f"the {name} is not a JSON object")
    return value


def json_bytes(value: dict[str, Any]) -> bytes:
    """Compact JSON, the way PyJWT writes it (so hand-built tokens look like real ones)."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS already matched by `COMPACT_JWS`. Not trusted."""
    return json_object(b64url_decode(token.split(".", 1)[0], "header"), "header")


def numeric_date(value: object) -> float | None:
    """`value` as a NumericDate (RFC 7519 §2), or None if it is not one we accept.

    JSON numbers only (``true`` and ``"123"`` are not dates), finite, within `NUMERIC_DATE_MAX`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= NUMERIC_DATE_MAX:
        return None
    return float(value)


def freeze(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of decoded JSON claims: objects become mappings, arrays tuples.

    Verified claims are shared by every cache hit; no caller may change them for the next one.
    """
    return MappingProxyType({name: _freeze(value) for name, value in claims.items()})


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return freeze(value)
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """The JSON-serialisable copy of frozen claims (for responses such as introspection)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def short(value: object, limit: int = 40) -> str:
    """`repr(value)` cut to `limit` characters: attacker-chosen header values go into details."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
