"""Provisioning a fresh cluster from the spec: database, schema, a role per workload, grants, seed.

Everything runs as the admin over the private unix socket, in this order:

1. ``CREATE DATABASE`` (the spec's `database`, else the datastore's name);
2. the schema SQL file, as written, in a session of its own (one implicit transaction);
3. one role per calling workload (role = workload name = certificate CN): ``LOGIN`` and every
   other attribute denied, and no password, so certificate authentication is the only way in;
4. ``REVOKE ALL ON DATABASE ... FROM PUBLIC`` and ``GRANT CONNECT`` to each role;
   ``REVOKE ALL ON SCHEMA public FROM PUBLIC`` and ``GRANT USAGE`` on the schemas of each role's
   tables; then each table's privileges exactly as the spec lists them;
5. ``USAGE`` on the sequences a ``serial`` column owns, for roles with ``INSERT`` on its table:
   the column's default calls ``nextval()``, which checks the *caller's* privilege on the sequence,
   so without it the granted ``INSERT`` fails. ``USAGE`` is the least that allows ``nextval`` (and
   ``currval``); ``SELECT`` on a sequence would only add reading it as a relation. Identity columns
   need nothing: their sequence is internal and not privilege-checked;
6. the scrubbed samples of the spec's `data:` section (`pgseed`), then the seed SQL file.

Nothing else is granted. An error in the user's SQL is reported as ``FILE:LINE:COL: message``
(when PostgreSQL gives a position) as a `DatastoreError`, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from trustproof.data.pipeline import ScrubbedTable
from trustproof.datastores.errors import DatastoreError
from trustproof.datastores.pgconfig import admin_dsn
from trustproof.datastores.pgseed import seed_tables

ROLE_ATTRIBUTES = (
    "LOGIN",
    "NOSUPERUSER",
    "NOCREATEDB",
    "NOCREATEROLE",
    "NOINHERIT",
    "NOREPLICATION",
    "NOBYPASSRLS",
)
"""A workload role may log in and do nothing else; no PASSWORD clause, so it has none."""

OWNED_SEQUENCES = """\
SELECT n.nspname, s.relname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = to_regclass(%s) AND d.deptype = 'a'
ORDER BY 1, 2"""
"""Sequences owned by a column of the table (``serial``: dependency type 'a', auto)."""

Grants = Mapping[str, Sequence[str]]
Connection = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class SqlFile:
    """A SQL file from the spec: `label` is how messages name it (as the spec wrote it)."""

    label: str
    path: Path

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 ({exc.reason})"
            raise DatastoreError(
                f"could not read the SQL file {self.label} ({self.path}): {reason}",
                "the path is relative to the spec file; SQL files must be UTF-8",
            ) from exc


@dataclass(frozen=True)
class Provisioning:
    """What to create; `roles` maps role -> table -> privileges; `name` is for messages."""

    name: str
    database: str
    roles: Mapping[str, Grants]
    schema: SqlFile | None = None
    seed: SqlFile | None = None
    samples: Sequence[ScrubbedTable] = ()  # scrubbed test data (`trustproof.data`), before seed


# -- SQL generation (pure) -------------------------------------------------------------------


def table_identifier(table: str) -> sql.Identifier:
    """``orders`` -> ``"orders"`` (found through the search path, as the schema file did);
    ``billing.invoices`` -> ``"billing"."invoices"``."""
    return sql.Identifier(*table.split(".", 1))


def table_schema(table: str) -> str:
    return table.split(".", 1)[0] if "." in table else "public"


def create_role(role: str) -> sql.Composed:
    return sql.SQL("CREATE ROLE {} {}").format(
        sql.Identifier(role), sql.SQL(" ".join(ROLE_ATTRIBUTES))
    )


def database_grants(database: str, roles: Iterable[str]) -> list[sql.Composed]:
    db = sql.Identifier(database)
    statements = [sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db)]
    statements += [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(role))
        for role in roles
    ]
    return statements


def schema_grants(roles: Mapping[str, Grants]) -> list[sql.Composed]:
    """Close ``public`` to PUBLIC, then open each schema a role's tables live in to that role."""
    statements = [sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC").format()]
    for role, tables in roles.items():
        schemas = sorted({"public", *(table_schema(t) for t in tables)})
        statements += [
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
            for schema in schemas
        ]
    return statements


def table_grant(role: str, table: str, privileges: Sequence[str]) -> sql.Composed:
    keywords = sql.SQL(", ").join(sql.SQL(p.upper()) for p in _known(privileges))
    return sql.SQL("GRANT {} ON TABLE {} TO {}").format(
        keywords, table_identifier(table), sql.Identifier(role)
    )


def sequence_grant(role: str, schema: str, sequence: str) -> sql.Composed:
    return sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
        sql.Identifier(schema, sequence), sql.Identifier(role)
    )


PRIVILEGES = frozenset(
    {"select", "insert", "update", "delete", "truncate", "references", "trigger"}
)


def _known(privileges: Sequence[str]) -> list[str]:
    """The privileges, lower-cased, de-duplicated and checked: they become SQL keywords."""
    unknown = [p for p in privileges if p.lower() not in PRIVILEGES]
    if unknown:
        raise DatastoreError(
            f"unknown table privilege {unknown[0]!r} (expected one of "
            f"{', '.join(sorted(PRIVILEGES))})",
            "the spec validator should have refused this; please report it",
        )
    return list(dict.fromkeys(p.lower() for p in privileges))


# -- errors ----------------------------------------------------------------------------------


def line_and_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of PostgreSQL's 1-based character `position` in `text`."""
    before = text[: max(position - 1, 0)]
    line = before.count("\n") + 1
    return line, len(before) - before.rfind("\n")


def sql_file_error(file: SqlFile, text: str, database: str, exc: psycopg.Error) -> DatastoreError:
    """``FILE:LINE:COL: message (SQLSTATE x)`` for an error in the user's SQL file."""
    diag = exc.diag
    where = file.label
    if diag.statement_position and diag.statement_position.isdigit():
        line, column = line_and_column(text, int(diag.statement_position))
        where = f"{file.label}:{line}:{column}"
    message = diag.message_primary or str(exc).strip()
    detail = f"\n    detail: {diag.message_detail}" if diag.message_detail else ""
    state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
    hint = diag.message_hint or (
        f"fix the SQL in {file.label}; it runs as a superuser in database {database!r}, in a "
        "session of its own, as one implicit transaction"
    )
    return DatastoreError(f"{where}: {message}{state}{detail}", hint)


# -- applying (I/O) --------------------------------------------------------------------------


def provision(plan: Provisioning, socket_dir: Path, port: int) -> None:
    """Create and fill the database described by `plan` on the server at `socket_dir`/`port`."""
    with _connect(admin_dsn(socket_dir, port), "postgres") as conn:
        _execute(
            conn,
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(plan.database)),
            f"create the database {plan.database!r}",
        )
    dsn = admin_dsn(socket_dir, port, plan.database)
    if plan.schema is not None:
        with _connect(dsn, plan.database) as conn:
            run_sql_file(conn, plan.schema, plan.database)
    # A fresh session: whatever the schema file SET (search_path, role) must not leak into the
    # grants, which name tables as the workloads' own sessions will find them.
    with _connect(dsn, plan.database) as conn:
        with conn.transaction():
            for role in plan.roles:
                _execute(conn, create_role(role), f"create the role {role!r}")
            for statement in [
                *database_grants(plan.database, plan.roles),
                *schema_grants(plan.roles),
            ]:
                _execute(conn, statement, "restrict the database and schema to the roles")
            for role, tables in plan.roles.items():
                for table, privileges in tables.items():
                    _grant_table(conn, plan, role, table, privileges)
        seed_tables(conn, plan.samples, plan.database)
        if plan.seed is not None:
            run_sql_file(conn, plan.seed, plan.database)


def run_sql_file(conn: Connection, file: SqlFile, database: str) -> None:
    """Run a whole SQL file in one round trip (simple query protocol, one implicit transaction)."""
    text = file.read()
    try:
        conn.execute(text)  # no parameters: sent as is, `%` and all
    except psycopg.Error as exc:
        raise sql_file_error(file, text, database, exc) from exc


def _grant_table(
    conn: Connection,
    plan: Provisioning,
    role: str,
    table: str,
    privileges: Sequence[str],
) -> None:
    where = f"datastores.{plan.name}.roles.{role}.{table}"
    quoted = table_identifier(table).as_string(conn)
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (quoted,)).fetchone()
    if not found or not found[0]:
        schema = plan.schema.label if plan.schema else "the schema (none is set)"
        raise DatastoreError(
            f"{where}: the spec grants {', '.join(privileges)} on table {table!r}, which does not "
            f"exist after running {schema}",
            "create the table in the schema file, or fix its name in the spec",
        )
    _execute(conn, table_grant(role, table, privileges), f"grant {where}")
    if "insert" in (p.lower() for p in privileges):
        for schema, sequence in conn.execute(OWNED_SEQUENCES, (quoted,)).fetchall():
            _execute(conn, sequence_grant(role, schema, sequence), f"grant {where} (sequence)")


def _connect(dsn: str, database: str) -> Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatastoreError(
            f"could not connect as the admin to database {database!r} over the unix socket: "
            f"{str(exc).strip()}",
            "see the PostgreSQL log in the run directory",
        ) from exc


def _execute(conn: Connection, statement: sql.Composed, what: str) -> None:
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc).strip()
        raise DatastoreError(
            f"could not {what}: {message}",
            exc.diag.message_hint or "see the PostgreSQL log in the run directory",
        ) from exc
