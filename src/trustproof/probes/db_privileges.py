"""What a datastore grants beyond the spec, and how its authentication is really configured:
``db.undeclared-privilege`` and ``db.effective-hba``. The comparisons are pure functions of the
spec and a `DbCatalog` (read after schema and seed: `trustproof.datastores.pgcatalog`).

``db.undeclared-privilege`` — one case per workload role of each datastore, and one for PUBLIC.
What a role may hold is what provisioning grants for the spec's oracle (`access.datastores`):

* CONNECT on the database, USAGE on ``public`` and on the schema of every table it names;
* on each table the oracle names, exactly the privileges listed (no GRANT OPTION);
* USAGE on the sequence a ``serial`` column of a table it may INSERT into owns.

PUBLIC may hold only PostgreSQL's defaults that provisioning leaves in place: CONNECT and
TEMPORARY on the *other* databases (``postgres``, ``template1``), EXECUTE on functions and
procedures, and the built-in default privileges for functions (EXECUTE) and types (USAGE).
Provisioning revokes PUBLIC's CONNECT and TEMPORARY on the sandbox database and its USAGE on
schema ``public``, so finding them again means the schema or seed granted them back. Anything
else — another table or column, a view, a function granted to the role, ownership, a role
attribute, a membership (``pg_read_all_data`` and the like), a default privilege, a password —
is a finding that names the object and the privilege: the case is an over-permission.

``db.effective-hba`` — one case per datastore: every ``pg_hba.conf`` rule a TCP connection can
match must demand a client certificate (``hostssl … cert``, or a ``clientcert=verify-full``
option) or reject; ``trust``, ``password``, ``md5``, ``scram-sha-256`` without a certificate, and
``host``/``hostnossl`` lines that accept plaintext are findings, as are a line PostgreSQL could
not parse, ``ssl = off``, ``password_encryption = md5``, TLS below 1.2, and listening beyond
loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address

from trustproof.spec.model import Spec
from trustproof.view.db_catalog import PUBLIC, DbCatalog, HbaRule, Holding

RELATIONS = frozenset({"table", "view", "materialized view", "foreign table", "sequence"})
TCP_TYPES = frozenset({"host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"})
WEAK_TLS = frozenset({"", "TLSv1", "TLSv1.1"})


@dataclass(frozen=True)
class Allowed:
    """What one grantee may hold: (kind, name, privilege) triples; kinds of relations are one."""

    entries: frozenset[tuple[str, str, str]]

    def permits(self, holding: Holding) -> bool:
        kind = "relation" if holding.kind in RELATIONS else holding.kind
        return (kind, holding.name, holding.privilege) in self.entries and not holding.grantable


def qualified(table: str) -> str:
    """The spec's ``orders`` or ``billing.invoices`` as the catalog names it (``public.orders``).

    Names in the spec are lowercase identifiers, which ``quote_ident`` leaves bare.
    """
    return table if "." in table else f"public.{table}"


def workload_roles(spec: Spec, datastore: str) -> tuple[str, ...]:
    """The roles the probe asks about: every role of the datastore and every caller the oracle
    names there, in spec order."""
    store = spec.datastores[datastore]
    expected = spec.access.datastores.get(datastore, {})
    return tuple(dict.fromkeys([*map(str, store.roles), *map(str, expected)]))


def allowed_for(spec: Spec, datastore: str, role: str, catalog: DbCatalog) -> Allowed:
    """What `role` may hold in `datastore` (module docstring); PUBLIC's defaults for ``PUBLIC``."""
    if role == PUBLIC:
        return Allowed(frozenset())  # the defaults are recognised by `is_default`
    grants = spec.access.datastores.get(datastore, {}).get(role)
    if grants is None:
        return Allowed(frozenset())
    entries = {("database", catalog.database, "CONNECT"), ("schema", "public", "USAGE")}
    inserts: set[str] = set()
    for table, privileges in grants.items():
        name = qualified(str(table))
        entries.add(("schema", name.split(".", 1)[0], "USAGE"))
        entries |= {("relation", name, p.upper()) for p in privileges}
        if any(p.lower() == "insert" for p in privileges):
            inserts.add(name)
    for sequence, table in catalog.owned_sequences.items():
        if table in inserts:
            entries.add(("relation", sequence, "USAGE"))
    return Allowed(frozenset(entries))


def is_default(holding: Holding, database: str) -> bool:
    """PUBLIC's privileges that PostgreSQL gives and provisioning does not take away."""
    if holding.grantee != PUBLIC or holding.grantable:
        return False
    if holding.kind == "database":
        return holding.name != database and holding.privilege in ("CONNECT", "TEMPORARY")
    if holding.kind in ("function", "procedure"):
        return holding.privilege == "EXECUTE"
    if holding.kind == "default privilege":
        return (holding.name.startswith("functions "), holding.privilege) == (True, "EXECUTE") or (
            holding.name.startswith("types ") and holding.privilege == "USAGE"
        )
    return False


def undeclared(spec: Spec, datastore: str, grantee: str, catalog: DbCatalog) -> list[Holding]:
    """What `grantee` (a role, or ``PUBLIC``) holds beyond the spec, in catalog order."""
    allowed = allowed_for(spec, datastore, grantee, catalog)
    return [
        holding
        for holding in catalog.holdings
        if holding.grantee == grantee
        and not allowed.permits(holding)
        and not is_default(holding, catalog.database)
    ]


def held(catalog: DbCatalog, grantee: str) -> list[Holding]:
    return [holding for holding in catalog.holdings if holding.grantee == grantee]


# -- pg_hba.conf and settings ---------------------------------------------------------------------


def hba_findings(catalog: DbCatalog) -> list[str]:
    """Every way a TCP client can get in without a verified client certificate (docstring)."""
    findings = [f"{rule.describe()}: {why}" for rule in catalog.hba for why in _weak(rule)]
    settings = catalog.settings
    if settings.get("ssl", "on") != "on":
        findings.append("ssl = off: no connection is encrypted, no hostssl line can match")
    if settings.get("password_encryption", "scram-sha-256") == "md5":
        findings.append("password_encryption = md5: passwords are stored as MD5 hashes")
    if settings.get("ssl_min_protocol_version", "TLSv1.2") in WEAK_TLS:
        version = settings.get("ssl_min_protocol_version") or "any"
        findings.append(f"ssl_min_protocol_version = {version}: TLS below 1.2 is accepted")
    beyond = [a for a in _addresses(settings.get("listen_addresses", "")) if not _loopback(a)]
    if beyond:
        findings.append(f"listen_addresses = {', '.join(beyond)}: listens beyond loopback")
    return findings


def _weak(rule: HbaRule) -> Iterator[str]:
    if rule.error:
        yield f"PostgreSQL could not use this line ({rule.error})"
        return
    if rule.type not in TCP_TYPES or rule.method == "reject":
        return
    if rule.type in ("host", "hostnossl", "hostnogssenc"):
        yield f"{rule.method} over TCP without TLS (a {rule.type} line admits plaintext)"
        return
    if rule.type == "hostgssenc":
        yield f"{rule.method} over GSSAPI encryption, without a client certificate"
        return
    if rule.method == "cert" or "clientcert=verify-full" in rule.options:
        return
    if rule.method == "trust":
        yield "trust over TLS: anyone who can reach the port logs in as any user it names"
    else:
        yield f"{rule.method} over TLS without a client certificate bound to the user"


def _addresses(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False  # "*", or a host name: not provably loopback
