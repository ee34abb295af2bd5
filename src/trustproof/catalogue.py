"""The probe catalogue: stable ids for every check trustproof can run (DESIGN.md §5).

Ids are part of the product's interface: specs select them, reports and docs name them, and they
never change meaning. A probe id is ``<layer>.<check>``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

Layer = Literal["tls", "bypass", "token", "authz", "db", "lifecycle"]


@dataclass(frozen=True)
class ProbeInfo:
    id: str
    title: str

    @property
    def layer(self) -> str:
        return self.id.split(".", 1)[0]


CATALOGUE: tuple[ProbeInfo, ...] = (
    ProbeInfo("tls.no-client-cert", "no client certificate"),
    ProbeInfo("tls.untrusted-ca", "client certificate from an untrusted CA"),
    ProbeInfo("tls.expired-cert", "expired client certificate"),
    ProbeInfo("tls.not-yet-valid-cert", "client certificate not yet valid"),
    ProbeInfo("tls.wrong-trust-domain", "client certificate from another trust domain"),
    ProbeInfo("tls.self-signed", "self-signed client certificate"),
    ProbeInfo("tls.legacy-version", "TLS 1.0/1.1 offered"),
    ProbeInfo("tls.plaintext", "plaintext HTTP to a TLS port"),
    ProbeInfo("bypass.direct-port", "service port reached directly, bypassing its gateway"),
    ProbeInfo("token.missing", "no access token"),
    ProbeInfo("token.expired", "expired token"),
    ProbeInfo("token.not-yet-valid", "token not yet valid"),
    ProbeInfo("token.wrong-issuer", "token from another issuer"),
    ProbeInfo("token.wrong-audience", "token for another audience"),
    ProbeInfo("token.bad-signature", "token with a bad signature"),
    ProbeInfo("token.alg-none", "unsigned token (alg: none)"),
    ProbeInfo("token.hs256-public-key", "HS256 token signed with the public key"),
    ProbeInfo("token.unknown-kid", "token signed by an unknown key id"),
    ProbeInfo("token.rotated-key", "token signed by a key already rotated out"),
    ProbeInfo("token.revoked", "revoked token"),
    ProbeInfo("token.cnf-mismatch", "token bound to a different certificate (stolen token)"),
    ProbeInfo("token.subject-mismatch", "token subject differs from the certificate"),
    ProbeInfo("token.forged-headers", "caller-supplied identity headers"),
    ProbeInfo("authz.inside-matrix", "every expected (caller, route) pair is allowed"),
    ProbeInfo("authz.outside-matrix", "every other (caller, route) pair is refused"),
    ProbeInfo("authz.method-swap", "allowed path with another method"),
    ProbeInfo("authz.path-traversal", "path tricks decide like the canonical path"),
    ProbeInfo("authz.role-removed", "a role removed between two calls is refused"),
    ProbeInfo("db.inside-grants", "every expected table privilege works"),
    ProbeInfo("db.no-client-cert", "datastore without a client certificate"),
    ProbeInfo("db.untrusted-ca", "datastore with a certificate from an untrusted CA"),
    ProbeInfo("db.password", "datastore with a password instead of a certificate"),
    ProbeInfo("db.sslmode-disable", "datastore over plaintext"),
    ProbeInfo("db.outside-grants", "a table or verb outside the role's grants"),
    ProbeInfo("lifecycle.token-expiry", "token expiring mid-session"),
    ProbeInfo("lifecycle.cert-rotation", "certificate rotation under traffic"),
    ProbeInfo("lifecycle.revocation-propagation", "revocation reaches every gateway"),
    ProbeInfo("lifecycle.key-rotation", "signing-key rotation"),
)

PROBE_IDS: tuple[str, ...] = tuple(info.id for info in CATALOGUE)


def matching(pattern: str) -> tuple[str, ...]:
    """Probe ids matched by an id or glob pattern (``token.*``, ``*``)."""
    return tuple(pid for pid in PROBE_IDS if fnmatch.fnmatchcase(pid, pattern))


def selected(select: tuple[str, ...], deselect: tuple[str, ...]) -> tuple[str, ...]:
    """Ids matched by any `select` pattern and no `deselect` pattern, in catalogue order."""
    chosen = {pid for pattern in select for pid in matching(pattern)}
    dropped = {pid for pattern in deselect for pid in matching(pattern)}
    return tuple(pid for pid in PROBE_IDS if pid in chosen and pid not in dropped)
