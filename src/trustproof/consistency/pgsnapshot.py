"""What one environment's PostgreSQL holds, read for comparison (`pgcompare`): schema (tables,
columns and types, constraints, indexes), roles and table grants, row counts, and per-table
multisets of masked-row digests (order-independent checksums).

Rows are masked (`trustproof.data.Scrubber`: the spec's rules, detectors on every other text
column) *before* they are hashed or kept as samples, so a production environment can be compared
with a sandbox seeded from its scrubbed sample, and nothing unmasked leaves this module.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from trustproof.data.formats import copy_encode
from trustproof.data.pipeline import Scrubber
from trustproof.errors import TrustproofError

_USER = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
COLUMNS = f"""SELECT n.nspname || '.' || c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
    a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {_USER}
ORDER BY 1, a.attnum"""  # noqa: S608 (constant fragments)
CONSTRAINTS = f"""SELECT n.nspname || '.' || c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER} ORDER BY 1, 2"""  # noqa: S608
INDEXES = f"""SELECT n.nspname || '.' || c.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER} ORDER BY 1, 2"""  # noqa: S608
ROLES = """SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
    rolbypassrls FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"""
GRANTS = f"""SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
    n.nspname || '.' || c.relname, a.privilege_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {_USER} AND a.grantee <> c.relowner
ORDER BY 1, 2, 3"""  # noqa: S608


class SnapshotError(TrustproofError):
    """An environment could not be read (its connection string is never quoted)."""

    exit_code = 3


@dataclass
class Snapshot:
    name: str
    columns: dict[tuple[str, str], tuple[str, bool, str]] = field(default_factory=dict)
    constraints: dict[tuple[str, str], str] = field(default_factory=dict)
    indexes: dict[tuple[str, str], str] = field(default_factory=dict)
    roles: dict[str, tuple[bool, ...]] = field(default_factory=dict)
    grants: set[tuple[str, str, str]] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    digests: dict[str, Counter[str]] = field(default_factory=dict)
    samples: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> digest -> row

    @property
    def tables(self) -> set[str]:
        return {table for table, _ in self.columns}


def read_snapshot(
    name: str, dsn: str, scrubber: Scrubber, *, rows: bool = True, timeout: float = 10.0
) -> Snapshot:
    """Read environment `name` at `dsn` in one read-only transaction."""
    snap = Snapshot(name)
    try:
        with psycopg.connect(dsn, autocommit=False, connect_timeout=int(timeout)) as conn:
            conn.read_only = True
            for table, column, kind, notnull, default in conn.execute(COLUMNS).fetchall():
                snap.columns[(table, column)] = (kind, notnull, default)
            for table, con, definition in conn.execute(CONSTRAINTS).fetchall():
                snap.constraints[(table, con)] = definition
            for table, index, definition in conn.execute(INDEXES).fetchall():
                snap.indexes[(table, index)] = definition
            for role, *attributes in conn.execute(ROLES).fetchall():
                snap.roles[role] = tuple(attributes)
            snap.grants = {tuple(r) for r in conn.execute(GRANTS).fetchall()}
            for table in sorted(snap.tables):
                _read_rows(conn, snap, table, scrubber, keep=rows)
    except psycopg.Error as exc:
        raise SnapshotError(
            f"could not read environment {name!r}: "
            f"{exc.diag.message_primary or type(exc).__name__}",
            "check that it is up and that the connection string's user may read the catalogs "
            "and tables",
        ) from None
    return snap


def _read_rows(
    conn: psycopg.Connection[Any], snap: Snapshot, table: str, scrubber: Scrubber, keep: bool
) -> None:
    schema, _, bare = table.partition(".")
    columns = [c for (t, c) in snap.columns if t == table]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
        sql.Identifier(schema, bare),
    )
    digests: Counter[str] = Counter()
    samples: dict[str, str] = {}
    name = bare if schema == "public" else table
    with conn.cursor(name=f"tp_consistency_{len(snap.digests)}") as cursor:
        cursor.itersize = 2000
        cursor.execute(query)
        for row in cursor:
            masked = scrubber.scrub_rows(name, columns, [list(row)])[0]
            line = copy_encode(masked)
            digest = hashlib.sha256(line.encode()).hexdigest()
            digests[digest] += 1
            if keep and len(samples) < 10_000:
                samples.setdefault(digest, line.replace("\t", " | "))
    snap.counts[table] = sum(digests.values())
    snap.digests[table] = digests
    snap.samples[table] = samples


def checksum(digests: Counter[str]) -> str:
    """An order-independent checksum of a table's rows: the sum of their digests mod 2**128."""
    total = sum(int(d[:32], 16) * n for d, n in digests.items()) % 2**128
    return f"{total:032x}"


def columns_of(snap: Snapshot, table: str) -> Sequence[str]:
    return [c for (t, c) in snap.columns if t == table]
