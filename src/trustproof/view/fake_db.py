"""The fake's boundary settings (`FakeServer`) and its PostgreSQL: ``hostssl ... cert`` with
exactly the spec's grants, answering as libpq reports a real server (see `trustproof.view.fake`);
its catalogs (`fake_catalog`) hold what provisioning grants from the spec's roles, PostgreSQL's
defaults for PUBLIC, and the sandbox's ``pg_hba.conf``, plus whatever `FakeServer` adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from trustproof.spec.model import Spec
from trustproof.view.chaos import ChaosFlaw
from trustproof.view.db_catalog import PUBLIC, DbCatalog, HbaRule, Holding
from trustproof.view.exchange import DbAnswer, DbRequest
from trustproof.view.fake_jwt import TokenFlaw


@dataclass(frozen=True)
class FakeServer:
    """How the fake boundaries behave. The defaults are a correctly configured gateway and
    PostgreSQL; each field turns one check off or bends it (a server a probe should catch)."""

    ignore_cert: frozenset[str] = frozenset()  # verify_svid reasons accepted anyway
    accept_legacy_tls: bool = False
    accept_plaintext: bool = False
    require_client_cert: bool = True  # where the spec requires one
    ignore_token: frozenset[str] = frozenset()  # TokenValidator reasons accepted anyway
    require_token: bool = True  # where the spec requires one
    trust_identity_headers: bool = False  # X-Trustproof-Principal names the principal
    case_insensitive_paths: bool = False
    decode_encoded_slash: bool = False
    enforce_policy: bool = True
    direct_port_checks_proof: bool = True
    db_require_cert: bool = True
    db_accept_password: bool = False
    db_accept_plaintext: bool = False
    db_check_cn: bool = True
    db_extra_grants: frozenset[tuple[str, str, str]] = frozenset()  # (role, verb, table)
    db_extra_holdings: frozenset[Holding] = frozenset()  # what the catalogs show beyond the spec
    db_extra_hba: tuple[HbaRule, ...] = ()  # pg_hba.conf lines before the sandbox's own
    db_settings: tuple[tuple[str, str], ...] = ()  # settings changed from the sandbox's
    # Naive HTTP servers (the path and request tricks): the access check sees one thing, the
    # handler serves another (`trustproof.view.fake_http.naive_bypass`).
    check_raw_path: bool = False  # the check matches the target as sent; the handler normalises
    honour_override_headers: bool = False  # the check decides on X-HTTP-Method-Override, ...
    unchecked_head: bool = False  # the check lists GET only; HEAD is served like GET
    unchecked_other_hosts: bool = False  # a default virtual host without the check
    accept_tls_versions: frozenset[str] = frozenset()  # "tls1.0", "tls1.1" accepted anyway
    accept_weak_ciphers: bool = False
    trust_foreign_cas: bool = False  # trusts (and advertises) the spec's tls.foreign_cas
    advertise_unrelated_ca: bool = False  # names one more CA in its CertificateRequest
    speaks_tls12: bool = True  # False: TLS 1.3 only (the CertificateRequest is encrypted)
    token_flaws: frozenset[TokenFlaw] = frozenset()  # a validator's classic mistakes (fake_jwt)
    # The service takes the caller from this forwarded-identity header when it reaches it (a
    # caller named in its value); "" for none.
    honoured_identity_header: str = ""
    gateway_strips_identity_headers: bool = True  # the gateway removes them before forwarding
    # (service, port): the service's processes also listen on these ports (plaintext TCP).
    extra_listeners: frozenset[tuple[str, int]] = frozenset()
    chaos_flaws: frozenset[ChaosFlaw] = frozenset()  # misbehaviour under trust faults (chaos)
    # Mocked dependencies (`dependency_call`): the mock answers without the credentials.
    mock_ignores_credentials: bool = False


SANDBOX_HBA = (
    HbaRule(1, "local", ("all",), ("trustproof:admin",), "", "trust"),
    HbaRule(2, "hostssl", ("{database}",), ("all",), "127.0.0.1/255.255.255.255", "cert"),
    HbaRule(3, "hostnossl", ("all",), ("all",), "0.0.0.0/0.0.0.0", "reject"),
    HbaRule(4, "hostnossl", ("all",), ("all",), "::/::", "reject"),
)
SANDBOX_SETTINGS = (
    ("ssl", "on"),
    ("password_encryption", "scram-sha-256"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("listen_addresses", "127.0.0.1"),
)


def fake_catalog(spec: Spec, server: FakeServer, datastore: str, roles: Sequence[str]) -> DbCatalog:
    """The catalogs of a PostgreSQL provisioned from `spec` (``pgprovision``), bent by `server`."""
    store = spec.datastores.get(datastore)
    if store is None:
        return DbCatalog("cannot-run", f"the fake has no datastore {datastore!r}")
    database = str(store.database or datastore)
    holdings = {
        Holding(PUBLIC, "database", name, privilege)
        for name in ("postgres", "template1")
        for privilege in ("CONNECT", "TEMPORARY")
    }
    for role, tables in store.roles.items():
        holdings.add(Holding(role, "database", database, "CONNECT"))
        holdings.add(Holding(role, "schema", "public", "USAGE"))
        for table, privileges in tables.items():
            name = table if "." in table else f"public.{table}"
            holdings.add(Holding(role, "schema", name.split(".", 1)[0], "USAGE"))
            holdings |= {Holding(role, "table", name, p.upper()) for p in privileges}
    for role, verb, table in server.db_extra_grants:
        name = table if "." in table else f"public.{table}"
        holdings.add(Holding(role, "table", name, verb.upper()))
    holdings |= server.db_extra_holdings
    asked = {*roles, PUBLIC}
    rules = tuple(
        HbaRule(
            r.line,
            r.type,
            tuple(d.replace("{database}", database) for d in r.databases),
            r.users,
            r.address,
            r.method,
            r.options,
            r.error,
        )
        for r in SANDBOX_HBA
    )
    extra = tuple(
        HbaRule(i + 2, r.type, r.databases, r.users, r.address, r.method, r.options, r.error)
        for i, r in enumerate((*server.db_extra_hba, *_bent_rules(server)))
    )
    shifted = tuple(
        HbaRule(r.line + len(extra), r.type, r.databases, r.users, r.address, r.method)
        for r in rules[1:]
    )
    return DbCatalog(
        "read",
        database=database,
        holdings=tuple(sorted((h for h in holdings if h.grantee in asked), key=_order)),
        hba=(rules[0], *extra, *shifted),
        settings=MappingProxyType({**dict(SANDBOX_SETTINGS), **dict(server.db_settings)}),
        sent=f"read the catalogs of fake://{datastore}",
    )


def _bent_rules(server: FakeServer) -> tuple[HbaRule, ...]:
    """The ``pg_hba.conf`` lines a server bent as `server` says must have."""
    rules = []
    loopback = "127.0.0.1/255.255.255.255"
    if server.db_accept_plaintext:
        rules.append(HbaRule(0, "host", ("all",), ("all",), loopback, "trust"))
    if not server.db_require_cert:
        rules.append(HbaRule(0, "hostssl", ("all",), ("all",), loopback, "trust"))
    if server.db_accept_password:
        rules.append(HbaRule(0, "hostssl", ("all",), ("all",), loopback, "scram-sha-256"))
    return tuple(rules)


def _order(holding: Holding) -> tuple[str, str, str, str]:
    return (holding.grantee, holding.kind, holding.name, holding.privilege)


def decide_db(spec: Spec, server: FakeServer, request: DbRequest) -> DbAnswer:
    """PostgreSQL with ``hostssl ... cert`` and the spec's grants, bent by `server`."""
    store = spec.datastores[request.datastore]
    sent = f"connect to fake://{request.datastore} as {request.user} ({request.credential})"
    if request.sslmode == "disable" and not server.db_accept_plaintext:
        detail = f'pg_hba.conf rejects connection for user "{request.user}", no encryption'
        return DbAnswer("connect-failed", detail, sent=sent)
    if request.credential == "untrusted-ca":
        return DbAnswer("connect-failed", "SSL error: tlsv1 alert unknown ca", sent=sent)
    if request.credential == "password" and not server.db_accept_password:
        return DbAnswer(
            "connect-failed", "connection requires a valid client certificate", sent=sent
        )
    if request.credential == "no-cert" and server.db_require_cert:
        return DbAnswer(
            "connect-failed", "connection requires a valid client certificate", sent=sent
        )
    if (
        request.credential == "certificate"
        and request.user != request.caller
        and server.db_check_cn
    ):
        detail = f'certificate authentication failed for user "{request.user}"'
        return DbAnswer("connect-failed", detail, sent=sent)
    if request.user not in store.roles:
        return DbAnswer("connect-failed", f'role "{request.user}" does not exist', sent=sent)
    if request.verb is None:
        return DbAnswer("connected", f"connected as {request.user}", sent=sent)
    granted = store.roles[request.user].get(request.table, ())
    extra = (request.user, request.verb, request.table) in server.db_extra_grants
    if request.verb in granted or extra:
        return DbAnswer("executed", "succeeded (rolled back)", sent=sent)
    detail = f"permission denied for table {request.table}"
    return DbAnswer("refused", detail, "42501", sent=sent)
