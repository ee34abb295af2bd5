"""Sans-I/O verification of a peer's X.509-SVID: a decision with a stable reason, never a raise.

The chain itself is checked by `cryptography.x509.verification` (RFC 5280 / Web PKI profile,
client-authentication EKU). Its error messages are not a stable API, so every failure that has a
specific reason is recognised *before* the verifier runs, from the leaf alone:

========================  =====================================================================
reason                    meaning
========================  =====================================================================
``ok``                    trusted, in the trust domain, not revoked; `spiffe_id` is set
``malformed``             not a parseable certificate (garbage bytes, broken extensions)
``weak-key``              RSA < 2048 bits, EC < 256 bits, or DSA (the verifier only limits the
                          keys that *sign*, so a weak leaf key would otherwise pass)
``not-yet-valid``         now is before the leaf's notBefore
``expired``               now is after the leaf's notAfter
``missing-client-auth``   the leaf has an EKU extension without clientAuth
``untrusted``             the chain does not lead to a root in the bundle (unknown or self-signed
                          issuer, bad signature, expired CA, ...); `detail` quotes the verifier
``no-spiffe-id``          no URI SAN, or one that is not a workload SPIFFE ID
``multiple-spiffe-ids``   more than one URI SAN (X.509-SVID §2 requires exactly one)
``wrong-trust-domain``    a SPIFFE ID from another trust domain
``revoked``               the leaf or an intermediate is revoked
``ca-certificate``        the leaf is a CA certificate (basicConstraints CA:TRUE): an authority
                          presented as a client
``weak-signature``        the leaf is signed with SHA-1 or MD5 (the verifier would only say
                          "untrusted")
========================  =====================================================================

Fail closed: anything unexpected yields ``ok=False``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from trustproof.identity.chains import VerifiedChains
from trustproof.identity.errors import InvalidSpiffeId
from trustproof.identity.spiffe import SpiffeId
from trustproof.scrub import scrubbed_traceback

log = logging.getLogger("trustproof.identity")

Reason = Literal[
    "ok",
    "malformed",
    "untrusted",
    "expired",
    "not-yet-valid",
    "missing-client-auth",
    "no-spiffe-id",
    "multiple-spiffe-ids",
    "wrong-trust-domain",
    "revoked",
    "weak-key",
    "ca-certificate",
    "weak-signature",
]
REASONS: tuple[Reason, ...] = get_args(Reason)

MIN_RSA_BITS = 2048
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
MIN_EC_BITS = 256
WEAK_DIGESTS = frozenset({"sha1", "md5"})


@dataclass(frozen=True)
class SvidCheck:
    """The outcome of `verify_svid`. `spiffe_id` is set only when `ok`: an unverified certificate
    proves nothing, so what it claims appears in `detail`, never here."""

    ok: bool
    reason: Reason
    spiffe_id: SpiffeId | None
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def _fail(reason: Reason, detail: str) -> SvidCheck:
    return SvidCheck(ok=False, reason=reason, spiffe_id=None, detail=detail)


def verify_svid(
    leaf: x509.Certificate | bytes,
    intermediates: Sequence[x509.Certificate] = (),
    *,
    bundle: Sequence[x509.Certificate],
    trust_domain: str,
    now: datetime,
    revoked: Callable[[int], bool] | None = None,
    chains: VerifiedChains | None = None,
) -> SvidCheck:
    """Decide whether `leaf` (a certificate or its DER) is a valid X.509-SVID of `trust_domain`.

    `intermediates` are the untrusted certificates the peer sent with it; `bundle` the trusted
    roots; `revoked(serial)` says whether a serial is revoked (e.g.
    `CertificateAuthority.is_revoked`); if it raises, the SVID is refused as ``untrusted``.
    `now` must be timezone-aware (a naive time is a caller bug and raises ValueError).
    `chains` (`trustproof.identity.chains`) reuses chains already verified against the same
    bundle; every other check, revocation included, runs on every call.
    """
    if now.tzinfo is None:
        raise ValueError("verify_svid() needs a timezone-aware `now` (use clock.now())")
    # The verifier reads the wall-clock fields and ignores tzinfo, so it must be given UTC.
    now = now.astimezone(UTC)
    try:
        return _verify(
            leaf,
            intermediates,
            bundle=bundle,
            trust_domain=trust_domain,
            now=now,
            revoked=revoked,
            chains=chains,
        )
    except Exception as exc:  # fail closed: an unexpected error is a refusal, not a crash
        log.warning("SVID verification failed unexpectedly; refusing:\n%s", scrubbed_traceback(exc))
        return _fail("malformed", f"the certificate could not be checked: {type(exc).__name__}")


def _verify(
    leaf: x509.Certificate | bytes,
    intermediates: Sequence[x509.Certificate],
    *,
    bundle: Sequence[x509.Certificate],
    trust_domain: str,
    now: datetime,
    revoked: Callable[[int], bool] | None,
    chains: VerifiedChains | None = None,
) -> SvidCheck:
    cert = _load(leaf)
    if isinstance(cert, SvidCheck):
        return cert
    early = _check_leaf(cert, now)
    if early is not None:
        return early

    if not bundle:
        return _fail("untrusted", "the trust bundle is empty: no root can be trusted")
    key = VerifiedChains.key(cert, intermediates, bundle)
    chain = chains.get(key, now) if chains is not None else None
    if chain is None:
        verifier = PolicyBuilder().store(Store(list(bundle))).time(now).build_client_verifier()
        try:
            chain = tuple(verifier.verify(cert, list(intermediates)).chain)
        except VerificationError as exc:
            return _fail(
                "untrusted",
                f"{_subject(cert)} does not chain to any of the {len(bundle)} trusted root(s): "
                f"{exc}\n    hint: was it issued by this run's CA, and are its intermediates sent?",
            )
        if chains is not None:
            chains.put(key, chain)

    identity = _spiffe_id(cert, trust_domain)
    if isinstance(identity, SvidCheck):
        return identity

    if revoked is not None:
        for index, c in enumerate(chain[:-1]):  # leaf and intermediates, not the anchor
            try:
                is_revoked = revoked(c.serial_number)
            except Exception as exc:
                log.warning("revocation check raised %s; refusing %s", type(exc).__name__, identity)
                return _fail(
                    "untrusted",
                    f"revocation status of {_subject(c)} is unknown ({type(exc).__name__}); "
                    "refused (fail closed)",
                )
            if is_revoked:
                what = "the leaf" if index == 0 else f"its intermediate {_subject(c)}"
                return _fail(
                    "revoked", f"{identity} is revoked: {what} (serial {c.serial_number:x})"
                )
    return SvidCheck(ok=True, reason="ok", spiffe_id=identity, detail=f"{identity} verified")


def _load(leaf: x509.Certificate | bytes) -> x509.Certificate | SvidCheck:
    if isinstance(leaf, x509.Certificate):
        cert = leaf
    elif isinstance(leaf, bytes | bytearray | memoryview):
        try:
            cert = x509.load_der_x509_certificate(bytes(leaf))
        except ValueError as exc:
            hint = " (PEM? pass the certificate object)" if bytes(leaf[:5]) == b"-----" else ""
            return _fail(
                "malformed",
                f"expected a DER X.509 certificate, got {len(leaf)} bytes that do not parse"
                f"{hint}: {exc}",
            )
    else:
        return _fail("malformed", f"expected a certificate or DER bytes, got {type(leaf).__name__}")
    try:
        cert.extensions  # noqa: B018 - parsing them is the check
        cert.public_key()
    except Exception as exc:
        return _fail("malformed", f"the certificate's extensions or key do not parse ({exc})")
    return cert


def _check_material(cert: x509.Certificate) -> SvidCheck | None:
    """Weak key, weak signature, a CA certificate: what the leaf is made of."""
    key = cert.public_key()
    weak = None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        weak = f"an RSA key of {key.key_size} bits (at least {MIN_RSA_BITS} expected)"
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < MIN_EC_BITS:
        weak = f"an EC key on {key.curve.name} (at least {MIN_EC_BITS} bits expected)"
    elif isinstance(key, dsa.DSAPublicKey):
        weak = "a DSA key (DSA is not accepted)"
    if weak:
        return _fail("weak-key", f"{_subject(cert)} has {weak}; SVIDs use ECDSA P-256")
    digest = cert.signature_hash_algorithm  # the verifier forbids these, but only says "untrusted"
    if digest is not None and digest.name in WEAK_DIGESTS:
        return _fail(
            "weak-signature",
            f"{_subject(cert)} is signed with {digest.name.upper()}; SVIDs are signed with SHA-256",
        )
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        return _fail(
            "ca-certificate",
            f"{_subject(cert)} is a CA certificate (basicConstraints CA:TRUE): a certificate "
            "authority may sign identities, not present one",
        )
    return None


def _check_leaf(cert: x509.Certificate, now: datetime) -> SvidCheck | None:
    """The leaf-only checks that give a specific reason before the chain is verified."""
    material = _check_material(cert)
    if material is not None:
        return material

    # Certificate times have whole seconds and the verifier compares at that precision.
    second = now.replace(microsecond=0)
    if second < cert.not_valid_before_utc:
        return _fail(
            "not-yet-valid",
            f"{_subject(cert)} is valid from {cert.not_valid_before_utc.isoformat()}, "
            f"but now is {now.isoformat()}\n    hint: is a clock behind?",
        )
    if second > cert.not_valid_after_utc:
        return _fail(
            "expired",
            f"{_subject(cert)} expired at {cert.not_valid_after_utc.isoformat()}, "
            f"now is {now.isoformat()}\n    hint: rotate certificates before they expire",
        )

    try:
        ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        ekus = None  # no EKU means any purpose (RFC 5280 §4.2.1.12); the verifier agrees
    if ekus is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in ekus:
        names = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in ekus)
        return _fail(
            "missing-client-auth",
            f"{_subject(cert)} may not authenticate a client: its extended key usage is "
            f"[{names}], expected clientAuth",
        )
    if _san(cert) is None:
        # The verifier insists on a SAN; without one it would only say "untrusted".
        return _fail("no-spiffe-id", f"{_subject(cert)} has no subjectAltName at all")
    return None


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _uris(cert: x509.Certificate) -> list[str]:
    san = _san(cert)
    return [] if san is None else san.get_values_for_type(x509.UniformResourceIdentifier)


def _spiffe_id(cert: x509.Certificate, trust_domain: str) -> SpiffeId | SvidCheck:
    uris = _uris(cert)
    if not uris:
        return _fail("no-spiffe-id", f"{_subject(cert)} has no URI SAN, so no SPIFFE ID")
    if len(uris) > 1:
        return _fail(
            "multiple-spiffe-ids",
            f"{_subject(cert)} has {len(uris)} URI SANs ({', '.join(uris)}); an X.509-SVID has "
            "exactly one",
        )
    try:
        spiffe_id = SpiffeId.parse(uris[0])
    except InvalidSpiffeId as exc:
        return _fail("no-spiffe-id", f"its URI SAN is not a SPIFFE ID: {exc}")
    if not spiffe_id.is_workload:
        return _fail(
            "no-spiffe-id", f"its URI SAN {spiffe_id} names a trust domain, not a workload"
        )
    if spiffe_id.trust_domain != trust_domain:
        return _fail(
            "wrong-trust-domain",
            f"{spiffe_id} belongs to trust domain {spiffe_id.trust_domain!r}, "
            f"expected {trust_domain!r}",
        )
    return spiffe_id


def _subject(cert: x509.Certificate) -> str:
    """A short, safe description of a certificate for messages: its URI SAN, else its subject."""
    uris = _uris(cert)
    if len(uris) == 1:
        return f"certificate {uris[0]}"
    return f"certificate {cert.subject.rfc4514_string() or '(empty subject)'}"
