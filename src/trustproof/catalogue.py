"""The probe catalogue: stable ids for every check that can fail a run (DESIGN.md §5).

Ids are part of the product's interface: specs select them (`probes.select`), reports and
`trustproof probes` name them, and they never change meaning. A probe id is ``<layer>.<check>``.

Each entry also says which exerciser implements it: a `family` module of `trustproof.probes`
(``tls``, ``token``, ``authz``, ``bypass``, ``datastore``, ``egress``: the check runs as
generated *cases*, one per boundary and cell — for ``egress`` one per service, on the isolated
backend only) or a scenario module (``chaos``: multi-step stories that disturb the
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

Layer = Literal[
    "tls",
    "bypass",
    "token",
    "authz",
    "db",
    "lifecycle",
    "policy",
    "surface",
    "chaos",
    "consistency",
    "data",
    "egress",
]
Family = Literal[
    "tls", "token", "authz", "bypass", "datastore", "chaos", "consistency", "data", "egress"
]
SCENARIO_FAMILIES: tuple[Family, ...] = ("chaos", "consistency", "data")


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
    ProbeInfo("tls.revoked-cert", "client certificate revoked on the sandbox CRL", "tls"),
    ProbeInfo("tls.wrong-eku", "client certificate for server authentication only", "tls"),
    ProbeInfo("tls.ca-as-client", "CA certificate of the trust domain as a client", "tls"),
    ProbeInfo("tls.weak-key", "client certificate with an RSA 1024 key", "tls"),
    ProbeInfo("tls.sha1-signature", "client certificate signed with SHA-1", "tls"),
    ProbeInfo("tls.no-uri-san", "client certificate without a URI SAN (no SPIFFE ID)", "tls"),
    ProbeInfo("tls.weak-ciphers", "TLS 1.2 with only weak cipher suites offered", "tls"),
    ProbeInfo("tls.advertised-cas", "CertificateRequest names only the sandbox's CAs", "tls"),
    ProbeInfo("tls.foreign-ca", "client certificate from a CA declared foreign", "tls"),
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
    ProbeInfo("token.empty-signature", "token with an empty signature part", "token"),
    ProbeInfo("token.psychic-signature", "ES256 token with r = s = 0 (CVE-2022-21449)", "token"),
    ProbeInfo("token.embedded-jwk", "token signed by the key in its own jwk header", "token"),
    ProbeInfo("token.jku", "token whose jku header names the attacker's JWKS", "token"),
    ProbeInfo("token.x5u", "token whose x5u header names the attacker's certificate", "token"),
    ProbeInfo("token.kid-injection", "HS256 token keyed through an injected kid", "token"),
    ProbeInfo("token.unknown-crit", "token with an unknown critical header (crit)", "token"),
    ProbeInfo("token.typ-confusion", "ID token (typ JWT or none) as an access token", "token"),
    ProbeInfo("token.future-iat", "token issued in the future (iat)", "token"),
    ProbeInfo("token.exp-string", "token whose exp is a string", "token"),
    ProbeInfo("token.duplicate-claims", "token with duplicate sub or aud members", "token"),
    ProbeInfo("token.oversized", "token with 40 KiB of claims, refused cleanly", "token"),
    ProbeInfo("token.in-query", "token in the query string, no Authorization header", "token"),
    ProbeInfo("token.in-cookie", "token in a cookie, no Authorization header", "token"),
    ProbeInfo("token.added-claims", "token with roles or scope added after signing", "token"),
    ProbeInfo("token.forged-headers", "caller-supplied identity headers", "bypass"),
    ProbeInfo(
        "surface.undeclared-listener",
        "a listening socket of a service's processes the spec does not declare",
        "bypass",
    ),
    ProbeInfo("authz.inside-matrix", "every expected (caller, route) pair is allowed", "authz"),
    ProbeInfo("authz.outside-matrix", "every other (caller, route) pair is refused", "authz"),
    ProbeInfo("authz.method-swap", "allowed path with another method", "authz"),
    ProbeInfo("authz.path-traversal", "path tricks on allowed cells: refused or served", "authz"),
    ProbeInfo("authz.refused-path-tricks", "a refused route's path written differently", "authz"),
    ProbeInfo(
        "authz.refused-request-tricks",
        "a refused request with absolute form, Host variants, HEAD or override headers",
        "authz",
    ),
    ProbeInfo("authz.role-removed", "a role removed between two calls is refused", "chaos"),
    ProbeInfo("db.inside-grants", "every expected table privilege works", "datastore"),
    ProbeInfo("db.no-client-cert", "datastore without a client certificate", "datastore"),
    ProbeInfo("db.untrusted-ca", "datastore with a certificate from an untrusted CA", "datastore"),
    ProbeInfo("db.password", "datastore with a password instead of a certificate", "datastore"),
    ProbeInfo("db.sslmode-disable", "datastore over plaintext", "datastore"),
    ProbeInfo("db.outside-grants", "a table or verb outside the role's grants", "datastore"),
    ProbeInfo(
        "db.undeclared-privilege",
        "a privilege, membership or role attribute in the catalogs beyond the spec",
        "datastore",
    ),
    ProbeInfo(
        "db.effective-hba",
        "the pg_hba.conf in force admits TCP clients without a client certificate",
        "datastore",
    ),
    ProbeInfo(
        "egress.dependency-direct",
        "a mocked dependency answers its caller's egress proxy, and refuses callers without "
        "the proxy's credentials",
        "egress",
    ),
    ProbeInfo("egress.undeclared-tcp", "TCP from a service to an undeclared address", "egress"),
    ProbeInfo("egress.undeclared-udp", "UDP from a service to an undeclared address", "egress"),
    ProbeInfo("egress.undeclared-dns", "a name the service did not declare, resolved", "egress"),
    ProbeInfo(
        "egress.service-port", "another service's own port reached around its gateway", "egress"
    ),
    ProbeInfo(
        "egress.token-admin", "the token service's admin API with the service's SVID", "egress"
    ),
    ProbeInfo(
        "egress.datastore-other-role", "a declared datastore logged into as another role", "egress"
    ),
    ProbeInfo(
        "egress.dependency-undeclared",
        "an external dependency the service does not list in calls",
        "egress",
    ),
    ProbeInfo(
        "egress.observed",
        "nothing the service itself sent out was dropped or refused (after all other cases)",
        "egress",
    ),
    ProbeInfo("lifecycle.token-expiry", "token expiring mid-session", "chaos"),
    ProbeInfo("lifecycle.cert-rotation", "certificate rotation under traffic", "chaos"),
    ProbeInfo("lifecycle.revocation-propagation", "revocation reaches every gateway", "chaos"),
    ProbeInfo("lifecycle.key-rotation", "signing-key rotation", "chaos"),
    ProbeInfo(
        "chaos.idp-outage",
        "token service down: new tokens fail, issued ones judged, introspection denies",
        "chaos",
    ),
    ProbeInfo(
        "chaos.key-compromise", "emergency key rotation: old tokens refused at once", "chaos"
    ),
    ProbeInfo("chaos.clock-skew", "a gateway's clock skewed: the leeway applied, no more", "chaos"),
    ProbeInfo(
        "chaos.revocation-storm", "1,000 revocations in a burst: p99 propagation, memory", "chaos"
    ),
    ProbeInfo(
        "chaos.policy-corruption", "an invalid policy on hot reload: the old one kept", "chaos"
    ),
    ProbeInfo("chaos.cedar-error", "a policy failing to evaluate: every request refused", "chaos"),
    ProbeInfo(
        "chaos.audit-sink-down", "the audit log cannot be written: 503, nothing forwarded", "chaos"
    ),
    ProbeInfo(
        "chaos.network-fault",
        "latency, loss, resets to the token service or between services: never bare, "
        "never around a gateway",
        "chaos",
    ),
    ProbeInfo(
        "chaos.jwks-garbage", "a service's key files hold garbage: forged tokens refused", "chaos"
    ),
    ProbeInfo(
        "chaos.jwks-wrong-keys",
        "well-formed keys the issuer does not hold published: nothing unsigned by it accepted",
        "chaos",
    ),
    ProbeInfo(
        "chaos.crl-fault",
        "a stale or missing CRL file: the revoked certificate stays refused, stale fails closed",
        "chaos",
    ),
    ProbeInfo(
        "chaos.ca-rotation",
        "a CA root rotated under traffic: 0 failed with overlap, the retired root refused",
        "chaos",
    ),
    ProbeInfo(
        "chaos.intermediate-revoked",
        "a leaf under a revoked intermediate CA refused on the next request",
        "chaos",
    ),
    ProbeInfo(
        "chaos.cert-expiry", "a certificate left to expire (rotation stopped): refused", "chaos"
    ),
    ProbeInfo(
        "policy.live-vs-offline",
        "the matrix observed live equals the offline evaluation of the policies",
        "consistency",
    ),
    ProbeInfo(
        "consistency.schema",
        "two environments have the same tables, columns, constraints and indexes",
        "consistency",
    ),
    ProbeInfo(
        "consistency.grants", "two environments have the same roles and grants", "consistency"
    ),
    ProbeInfo("consistency.row-counts", "two environments have the same row counts", "consistency"),
    ProbeInfo(
        "consistency.checksums",
        "two environments hold the same rows (checksums over masked rows)",
        "consistency",
    ),
    ProbeInfo(
        "data.unscrubbed-value",
        "no original sensitive value or unmasked personal data after seeding",
        "data",
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


LOCAL_NOTE = "egress not checked: local backend"


def backend_note(select: tuple[str, ...], deselect: tuple[str, ...], backend: str) -> str | None:
    """The one line a plan shows when the selected probes hold any egress probe and `backend`
    is not the isolated one (egress cases exist only there); None otherwise. Pure and light, so
    that `trustproof plan` says it without importing the probes."""
    wanted = set(selected(select, deselect)) & set(matching("egress.*"))
    return LOCAL_NOTE if backend != "isolated" and wanted else None


def markdown_table() -> str:
    """The catalogue as the Markdown table of ``docs/probes.md`` (a unit test keeps them equal)."""
    lines = ["| id | what it checks | family |", "|---|---|---|"]
    lines += [f"| `{info.id}` | {info.title} | {info.family} |" for info in CATALOGUE]
    return "\n".join(lines) + "\n"
