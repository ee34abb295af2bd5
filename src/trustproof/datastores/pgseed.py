"""Seeding scrubbed sample rows (`trustproof.data`) into a freshly provisioned database.

Each table's rows go in with one ``COPY table (columns) FROM STDIN`` (text values: PostgreSQL
reads each as its column's type), after the schema and grants and before the seed SQL file, all
tables in one transaction: a sample that does not fit the schema leaves nothing half-loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from trustproof.data.pipeline import ScrubbedTable
from trustproof.datastores.errors import DatastoreError


def copy_statement(table: ScrubbedTable) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table.table.split(".", 1)),
        sql.SQL(", ").join(sql.Identifier(c) for c in table.columns),
    )


def seed_tables(
    conn: psycopg.Connection[TupleRow], tables: Sequence[ScrubbedTable], database: str
) -> None:
    """COPY every table's rows in; `DatastoreError` naming the table and row on a failure (the
    message quotes no value: PostgreSQL's detail can hold one, and it is left out)."""
    if not tables:
        return
    with conn.transaction():
        for table in tables:
            try:
                with conn.cursor().copy(copy_statement(table)) as copy:
                    for row in table.rows:
                        copy.write_row(row)
            except psycopg.Error as exc:
                where = exc.diag.context or ""
                line = where.split("line ", 1)[1].split(maxsplit=1)[0] if "line " in where else "?"
                raise DatastoreError(
                    f"could not seed the scrubbed sample of table {table.table!r} into database "
                    f"{database!r} (row {line.rstrip(',:')}): {exc.diag.message_primary or 'error'}"
                    f" (SQLSTATE {exc.sqlstate})",
                    "the sample's columns must exist in the schema with types that read its "
                    "values; check data.samples and the schema file",
                ) from None
