"""The probe catalogue: stable ids for every check that can fail a run (DESIGN.md §5).

Ids are part of the product's interface: specs select them (`probes.select`), reports and
`trustproof probes` name them, and they never change meaning. A probe id is ``<layer>.<check>``.

Each entry also says which exerciser implements it: a `family` module of `trustproof.probes`
(``tls``, ``token``, ``authz``, ``bypass``, ``datastore``: the check runs as generated *cases*,
one per boundary and cell) or a scenario module (``chaos``: multi-step stories that disturb the
sandbox; ``consistency``: comparisons of the live results with another source of truth). The
registry (`trustproof.probes.registry`) holds the implementation of every case entry, and the
scenario tables (`trustproof.chaos`, `trustproof.consistency`) of every scenario entry; a unit
test holds the three to each other. Adding a probe is one entry here plus its implementation in
the family's module.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

Layer = Literal["tls", "bypass", "token", "authz", "db", "lifecycle", "policy", "surface"]
Family = Literal["tls", "token", "authz", "bypass", "datastore", "chaos", "consistency"]
SCENARIO_FAMILIES: tuple[Family, ...] = ("chaos", "consistency")


@dataclass(frozen=True)
class ProbeInfo:
    id: str
    title: str
    family: Family

    @property
    def layer(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def is_scenario(self) -> bool:
        """Run once per run as a multi-step scenario, not as generated cases."""
        return self.family in SCENARIO_FAMILIES


CATALOGUE: tuple[ProbeInfo, ...] = (
    ProbeInfo("tls.no-client-cert", "no client certificate", "tls"),
    ProbeInfo("tls.untrusted-ca", "client certificate from an untrusted CA", "tls"),
    ProbeInfo("tls.expired-cert", "expired client certificate", "tls"),
    ProbeInfo("tls.not-yet-valid-cert", "client certificate not yet valid", "tls"),
    ProbeInfo("tls.wrong-trust-domain", "client certificate from another trust domain", "tls"),
    ProbeInfo("tls.self-signed", "self-signed client certificate", "tls"),
    ProbeInfo("tls.legacy-version", "TLS 1.0/1.1 offered", "tls"),
    ProbeInfo("tls.plaintext", "plaintext HTTP to a TLS port", "tls"),
    ProbeInfo(
        "bypass.direct-port", "service port reached directly, bypassing its gateway", "bypass"
    ),
    ProbeInfo("token.missing", "no access token", "token"),
    ProbeInfo("token.expired", "expired token", "token"),
    ProbeInfo("token.not-yet-valid", "token not yet valid", "token"),
    ProbeInfo("token.wrong-issuer", "token from another issuer", "token"),
    ProbeInfo("token.wrong-audience", "token for another audience", "token"),
    ProbeInfo("token.bad-signature", "token with a bad signature", "token"),
    ProbeInfo("token.alg-none", "unsigned token (alg: none)", "token"),
    ProbeInfo("token.hs256-public-key", "HS256 token signed with the public key", "token"),
    ProbeInfo("token.unknown-kid", "token signed by an unknown key id", "token"),
    ProbeInfo("token.rotated-key", "token signed by a key already rotated out", "token"),
    ProbeInfo("token.revoked", "revoked token", "token"),
    ProbeInfo(
        "token.cnf-mismatch", "token bound to a different certificate (stolen token)", "token"
    ),
    ProbeInfo("token.subject-mismatch", "token subject differs from the certificate", "token"),
    ProbeInfo("token.forged-headers", "caller-supplied identity headers", "bypass"),
    ProbeInfo(
        "surface.undeclared-listener",
        "a listening socket of a service's processes the spec does not declare",
        "bypass",
    ),
    ProbeInfo("authz.inside-matrix", "every expected (caller, route) pair is allowed", "authz"),
    ProbeInfo("authz.outside-matrix", "every other (caller, route) pair is refused", "authz"),
    ProbeInfo("authz.method-swap", "allowed path with another method", "authz"),
    ProbeInfo("authz.path-traversal", "path tricks decide like the canonical path", "authz"),
    ProbeInfo("authz.role-removed", "a role removed between two calls is refused", "chaos"),
    ProbeInfo("db.inside-grants", "every expected table privilege works", "datastore"),
    ProbeInfo("db.no-client-cert", "datastore without a client certificate", "datastore"),
    ProbeInfo("db.untrusted-ca", "datastore with a certificate from an untrusted CA", "datastore"),
    ProbeInfo("db.password", "datastore with a password instead of a certificate", "datastore"),
    ProbeInfo("db.sslmode-disable", "datastore over plaintext", "datastore"),
    ProbeInfo("db.outside-grants", "a table or verb outside the role's grants", "datastore"),
    ProbeInfo("lifecycle.token-expiry", "token expiring mid-session", "chaos"),
    ProbeInfo("lifecycle.cert-rotation", "certificate rotation under traffic", "chaos"),
    ProbeInfo("lifecycle.revocation-propagation", "revocation reaches every gateway", "chaos"),
    ProbeInfo("lifecycle.key-rotation", "signing-key rotation", "chaos"),
    ProbeInfo(
        "policy.live-vs-offline",
        "the matrix observed live equals the offline evaluation of the policies",
        "consistency",
    ),
)

PROBE_IDS: tuple[str, ...] = tuple(info.id for info in CATALOGUE)
BY_ID: dict[str, ProbeInfo] = {info.id: info for info in CATALOGUE}


def info(probe_id: str) -> ProbeInfo:
    """The catalogue entry of `probe_id` (KeyError for an id not in the catalogue)."""
    return BY_ID[probe_id]


def matching(pattern: str) -> tuple[str, ...]:
    """Probe ids matched by an id or glob pattern (``token.*``, ``*``)."""
    return tuple(pid for pid in PROBE_IDS if fnmatch.fnmatchcase(pid, pattern))


def selected(select: tuple[str, ...], deselect: tuple[str, ...]) -> tuple[str, ...]:
    """Ids matched by any `select` pattern and no `deselect` pattern, in catalogue order."""
    chosen = {pid for pattern in select for pid in matching(pattern)}
    dropped = {pid for pattern in deselect for pid in matching(pattern)}
    return tuple(pid for pid in PROBE_IDS if pid in chosen and pid not in dropped)


def markdown_table() -> str:
    """The catalogue as the Markdown table of ``docs/probes.md`` (a unit test keeps them equal)."""
    lines = ["| id | what it checks | family |", "|---|---|---|"]
    lines += [f"| `{info.id}` | {info.title} | {info.family} |" for info in CATALOGUE]
    return "\n".join(lines) + "\n"
