"""What a datastore's catalogs say, as typed values: who holds which privilege on what, the
``pg_hba.conf`` rules the server applies, and its security settings. No I/O here: the live view
reads them from PostgreSQL (`trustproof.datastores.pgcatalog`), the fake builds them from the spec
(`trustproof.view.fake_db`), and the probes compare them with the spec
(`trustproof.probes.db_privileges`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PUBLIC = "PUBLIC"
"""The pseudo-role every role belongs to (ACL grantee 0)."""

ObjectKind = Literal[
    "database",
    "schema",
    "table",
    "view",
    "materialized view",
    "sequence",
    "foreign table",
    "column",
    "function",
    "procedure",
    "role",
    "default privilege",
    "object",
]


@dataclass(frozen=True)
class Holding:
    """`grantee` (a role name or ``PUBLIC``) holds `privilege` on the `kind` named `name`.

    `privilege` is PostgreSQL's word: ``SELECT``, ``CONNECT``, ``TEMPORARY``, ``USAGE``,
    ``EXECUTE``…; for a role, an attribute (``SUPERUSER``, ``CREATEROLE``, ``CREATEDB``,
    ``BYPASSRLS``, ``REPLICATION``, ``PASSWORD``) or ``MEMBER`` (of `name`); ``OWNER`` for an
    object the grantee owns. `name` is schema-qualified (``public.orders``, ``public.orders.price``
    for a column, ``public.f(integer)`` for a function). `grantable`: WITH GRANT (or ADMIN) OPTION.
    `detail`: what else a reader needs (for a default privilege: whose future objects, where).
    """

    grantee: str
    kind: ObjectKind
    name: str
    privilege: str
    grantable: bool = False
    detail: str = ""

    def describe(self) -> str:
        if self.kind == "role":
            what = {"MEMBER": f"member of role {self.name}", "PASSWORD": "has a password"}.get(
                self.privilege, self.privilege
            )
            return f"{self.grantee}: {what}" + (" WITH ADMIN OPTION" if self.grantable else "")
        option = " WITH GRANT OPTION" if self.grantable else ""
        if self.kind == "default privilege":
            return f"{self.grantee}: {self.privilege}{option} on {self.name} (default privilege)"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.grantee}: {self.privilege}{option} on {self.kind} {self.name}{extra}"


@dataclass(frozen=True)
class HbaRule:
    """One effective ``pg_hba.conf`` line (``pg_hba_file_rules``): `type` ``local``, ``host``,
    ``hostssl``, ``hostnossl``, ``hostgssenc``, ``hostnogssenc``; `error` when PostgreSQL could
    not use the line."""

    line: int
    type: str
    databases: tuple[str, ...]
    users: tuple[str, ...]
    address: str
    method: str
    options: tuple[str, ...] = ()
    error: str = ""

    def describe(self) -> str:
        fields = [self.type, ",".join(self.databases), ",".join(self.users), self.address]
        fields += [self.method, *self.options]
        return f"line {self.line}: " + " ".join(field for field in fields if field)


CatalogStatus = Literal["read", "cannot-run"]


@dataclass(frozen=True)
class DbCatalog:
    """What the catalogs of `database` said (``read``), or why they could not be read
    (``cannot-run``, `detail`). `holdings` covers the roles asked about and PUBLIC;
    `owned_sequences` maps each sequence a column owns (``serial``) to its table."""

    status: CatalogStatus
    detail: str = ""
    database: str = ""
    holdings: tuple[Holding, ...] = ()
    owned_sequences: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    hba: tuple[HbaRule, ...] = ()
    settings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sent: str = ""  # what was read, in words
