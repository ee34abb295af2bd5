"""Gateway proof: how a service tells the requests its own gateway forwarded from anything else.

A service listens in plain HTTP on loopback and believes the gateway's ``X-Trustproof-*`` identity
headers. On one host every local process can reach that port too, forge
``X-Trustproof-Principal: alice`` and be served (the ``bypass.direct-port`` probe); in production
pod network isolation usually prevents that, in the sandbox nothing does. So each gateway signs
what it forwards with a key only it and its service hold:

    X-Trustproof-Gateway-Proof: v1;t=<unix seconds>;sig=<base64url HMAC-SHA256, unpadded>

The HMAC-SHA256 (RFC 2104) is computed over this canonical string (lines joined by ``\\n``, UTF-8;
a signed header the request does not carry counts as empty):

    trustproof-gateway-proof-v1
    <t>
    <METHOD>
    <request-target, exactly as sent upstream: the gateway's canonical origin-form>
    x-trustproof-request-id:<value>
    x-trustproof-principal:<value>
    x-trustproof-principal-kind:<value>
    x-trustproof-roles:<value>
    x-trustproof-route:<value>
    x-trustproof-client-spiffe-id:<value>

so a proof is bound to one request id, one principal with its kind and roles, one method and one
path: replayed onto any other request it is a ``bad-signature``. The time bounds a replay of the
same request to ``max_age_seconds``. A value holding CR, LF or NUL could shift the lines, so it
makes the proof ``malformed``; so does any signed header (or the proof) given twice, because the
service might read one copy and the verifier another. Not covered: the body and unsigned headers
(a proof says who is calling which route, not what they sent), and the replay of a captured
request within the window (capturing loopback traffic needs root or CAP_NET_RAW). Like the SVID
key beside it, the key file keeps out only who cannot read the run directory (0700).

The key is 32 random bytes per service and per run (`new_key`); the sandbox keeps it in the
gateway's configuration and gives it to the service as a 0600 file named by
``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE`` (raw bytes). The verifier compares signatures with
`hmac.compare_digest` and checks the signature before the time, so ``stale`` always means an
authentic proof that is too old (or too far ahead: clock skew between gateway and service).

Standard library only, and nothing at import time beyond it, so that a service can import
`verify_proof` for a few milliseconds of startup: the example services do exactly that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PROOF_HEADER = "X-Trustproof-Gateway-Proof"
VERSION = "v1"
KEY_BYTES = 32
MAX_AGE_SECONDS = 30
SIGNED_HEADERS = (
    "x-trustproof-request-id",
    "x-trustproof-principal",
    "x-trustproof-principal-kind",
    "x-trustproof-roles",
    "x-trustproof-route",
    "x-trustproof-client-spiffe-id",
)

Reason = Literal["ok", "missing", "malformed", "stale", "bad-signature"]

_LABEL = f"trustproof-gateway-proof-{VERSION}"
_PROOF_NAME = PROOF_HEADER.lower()
_WANTED = frozenset((*SIGNED_HEADERS, _PROOF_NAME))
_PROOF_VALUE = re.compile(r"v1;t=([0-9]{1,12});sig=([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class ProofCheck:
    """The outcome of `verify_proof`: ``ok``, or why the request is not from the gateway."""

    ok: bool
    reason: Reason


OK = ProofCheck(True, "ok")
MISSING = ProofCheck(False, "missing")
MALFORMED = ProofCheck(False, "malformed")
STALE = ProofCheck(False, "stale")
BAD_SIGNATURE = ProofCheck(False, "bad-signature")


def new_key() -> bytes:
    """A fresh key: `KEY_BYTES` bytes from the operating system's CSPRNG."""
    return os.urandom(KEY_BYTES)


def sign_proof(
    key: bytes, method: str, target: str, headers: Iterable[tuple[str, str]], now: float
) -> str:
    """The ``X-Trustproof-Gateway-Proof`` value for a request about to be forwarded.

    `headers` are the upstream headers (the verified identity already added), `target` the
    request-target exactly as it will be sent, `now` the gateway's clock in Unix seconds. Raises
    `ValueError` for a short key or a value that cannot be signed unambiguously: both are bugs,
    and the gateway refuses the request rather than forward it unsigned.
    """
    _check_key(key)
    found = _collect(headers)
    if found is None or _PROOF_NAME in found:
        raise ValueError("cannot sign: a signed header is repeated, or a proof is already present")
    t = int(now)
    message = _canonical(method, target, found, t)
    if message is None:
        raise ValueError("cannot sign: the method, target or a signed header holds CR, LF or NUL")
    return f"{VERSION};t={t};sig={_mac(key, message)}"


def verify_proof(
    key: bytes,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    now: float,
    *,
    max_age_seconds: float = MAX_AGE_SECONDS,
) -> ProofCheck:
    """Check a request's proof; never raises for anything the request holds.

    `target` is the request-target as received, `headers` every header field as (name, value)
    pairs (names in any case; ``message.items()`` of the standard library's parsers), `now` the
    service's clock in Unix seconds. Only a short key raises (`ValueError`): a misconfiguration.
    """
    _check_key(key)
    found = _collect(headers)
    if found is None:
        return MALFORMED
    proof = found.get(_PROOF_NAME)
    if proof is None:
        return MISSING
    parsed = _PROOF_VALUE.fullmatch(proof.strip())
    if parsed is None:
        return MALFORMED
    t = int(parsed.group(1))
    message = _canonical(method, target, found, t)
    if message is None:
        return MALFORMED
    if not hmac.compare_digest(_mac(key, message), parsed.group(2)):
        return BAD_SIGNATURE
    if abs(now - t) > max_age_seconds:
        return STALE
    return OK


def _check_key(key: bytes) -> None:
    if len(key) < KEY_BYTES:
        raise ValueError(f"a gateway proof key has {KEY_BYTES} bytes or more, got {len(key)}")


def _collect(headers: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """The signed headers and the proof by lower-case name; None when one of them repeats."""
    found: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _WANTED:
            if lower in found:
                return None
            found[lower] = value
    return found


def _canonical(method: str, target: str, found: dict[str, str], t: int) -> bytes | None:
    lines = [_LABEL, str(t), method, target]
    lines += [f"{name}:{found.get(name, '')}" for name in SIGNED_HEADERS]
    text = "\n".join(lines)
    if text.count("\n") != len(lines) - 1 or "\r" in text or "\x00" in text:
        return None
    return text.encode("utf-8", "surrogatepass")


def _mac(key: bytes, message: bytes) -> str:
    digest = hmac.digest(key, message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
