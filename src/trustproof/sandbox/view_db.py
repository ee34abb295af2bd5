"""Datastore attempts of the live `SandboxView` (`trustproof.sandbox.view`): a fresh libpq
connection in a worker thread per attempt, at most one statement, always rolled back.

Certificate files. libpq reads the client certificate and key from files, so the ones the probes
present are written per (kind, workload) for one sandbox under ``<run>/identities/_probes``
(0700, keys 0600; removed with the run's secrets) and renewed at half-life into a *new*
directory, so that a connection in flight never reads a certificate next to another
certificate's key. ``_`` starts no workload name: no collision.

SQL per verb. Each runs in a transaction that is always rolled back, so nothing it does survives,
and, found by experiment on PostgreSQL 15, needs exactly the one privilege it probes:

* select — ``SELECT 1 FROM t LIMIT 1``;
* insert — ``INSERT INTO t SELECT WHERE false``: zero rows, so no default is evaluated. Not
  ``INSERT ... DEFAULT VALUES``: its ``nextval()`` advances a ``serial`` sequence even when rolled
  back (and a NOT NULL column turns it into a 23502); not ``INSERT ... SELECT * FROM t``, which
  needs SELECT as well;
* update — ``UPDATE t SET c = DEFAULT WHERE false`` (``c``: the first column, read from
  ``pg_attribute``, which needs no privilege). ``SET c = c`` would read ``c`` and need SELECT;
* delete — ``DELETE FROM t WHERE false`` (no column referenced, so no SELECT needed);
* truncate — ``TRUNCATE t``, rolled back (what its errors mean: `trustproof.probes.datastore`);
* trigger — ``CREATE TRIGGER`` on ``t`` with the built-in ``suppress_redundant_updates_trigger``
  (EXECUTE is PUBLIC's), rolled back;
* references — ``has_table_privilege``, the last resort: exercising it needs a table of one's own
  (``CREATE`` on a schema or ``TEMP``), which workload roles must not have.

The answer is raw (`DbAnswer`: connected, executed, refused with its SQLSTATE, lacks-privilege,
connect-failed with libpq's message); the probe classifies it. Evidence never holds a key or a
password, and every message is scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, LiteralString

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trustproof.datastores.pgcatalog import read_catalog
from trustproof.datastores.pgprovision import table_identifier, table_schema
from trustproof.errors import TrustproofError
from trustproof.identity import BrokenMaterial, Svid, SvidFiles, write_svid_files
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.rundir import private_dir
from trustproof.scrub import scrub
from trustproof.view import DbAnswer, DbRequest
from trustproof.view.db_catalog import DbCatalog

CONNECT_TIMEOUT = 5
SESSION_OPTIONS = "-c statement_timeout=5s -c lock_timeout=2s"

STATEMENTS: Mapping[str, LiteralString] = {
    "select": "SELECT 1 FROM {table} LIMIT 1",
    "insert": "INSERT INTO {table} SELECT WHERE false",
    "update": "UPDATE {table} SET {column} = DEFAULT WHERE false",
    "delete": "DELETE FROM {table} WHERE false",
    "truncate": "TRUNCATE {table}",
    "trigger": "CREATE TRIGGER trustproof_probe BEFORE UPDATE ON {table} FOR EACH ROW"
    " EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()",
    "references": "SELECT has_table_privilege(current_user, {name}, 'REFERENCES')",
}
"""Per table privilege, the statement that exercises it (see the module docstring)."""

CHECKED_FIRST: Mapping[str, frozenset[str]] = {"truncate": frozenset({"0A000", "55P03"})}
"""Per verb, SQLSTATEs PostgreSQL raises only after the privilege check passed."""

FIRST_COLUMN = """\
SELECT a.attname FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum LIMIT 1"""


CertKind = Literal["valid", "untrusted-ca"]


class _ProbeIdentities:
    """The certificate files the probes present, per (kind, workload), for one sandbox (see the
    module docstring)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.root = private_dir(sandbox.run.path / "identities" / "_probes")
        self._written: dict[tuple[CertKind, str], tuple[Svid, SvidFiles]] = {}

    def files(self, sandbox: Sandbox, kind: CertKind, name: str) -> SvidFiles:
        fabric = sandbox.fabric
        assert fabric is not None  # noqa: S101 (checked by the caller)
        cached = self._written.get((kind, name))
        if cached is not None:
            svid, files = cached
            if sandbox.clock.now() < svid.not_before + (svid.not_after - svid.not_before) / 2:
                return files
        if kind == "valid":
            svid = fabric.issue(name)
        else:
            broken = BrokenMaterial(fabric.ca, sandbox.clock, ttl=fabric.certificate_ttl)
            svid = broken.untrusted_ca(name)
        directory = self.root / f"{kind}-{name}-{svid.serial:x}"
        files = write_svid_files(directory, svid, fabric.ca.bundle_pem())
        self._written[(kind, name)] = (svid, files)
        return files


_IDENTITIES: weakref.WeakKeyDictionary[Sandbox, _ProbeIdentities] = weakref.WeakKeyDictionary()


def _identities(sandbox: Sandbox) -> _ProbeIdentities:
    found = _IDENTITIES.get(sandbox)
    if found is None:
        found = _IDENTITIES[sandbox] = _ProbeIdentities(sandbox)
    return found


@dataclass(frozen=True)
class _Attempt:
    """What `_execute` does in its worker thread: connect with `dsn`, then maybe one statement."""

    dsn: str = field(repr=False)  # may hold the random password of a password attempt
    connection: str  # how we connect, in words, without secrets
    verb: str | None = None
    table: str = ""


class DatastoreClient:
    """Runs `DbRequest`s against the sandbox's datastores."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def query(self, request: DbRequest) -> DbAnswer:
        try:
            attempt = self._prepare(request)
        except (OSError, TrustproofError) as exc:  # writing the certificate files failed
            attempt = f"could not write the probe's certificate files: {exc}"
        if isinstance(attempt, str):
            return DbAnswer(
                "cannot-run", scrub(attempt), sent="nothing (the attempt could not run)"
            )
        return await asyncio.to_thread(_execute, attempt)

    async def catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
        """What the catalogs of `datastore` say (`pgcatalog.read_catalog`), read as the admin
        over the private socket; ``cannot-run`` with the reason when they cannot be read."""
        server = self.sandbox.datastores.servers.get(datastore)
        if server is None or server.pid is None:
            return DbCatalog("cannot-run", f"the sandbox is not running datastore {datastore!r}")
        try:
            dsn = server.admin_settings()
        except TrustproofError as exc:
            return DbCatalog("cannot-run", scrub(str(exc)))
        return await asyncio.to_thread(_read_catalog, dsn, tuple(roles), server.url)

    def _prepare(self, request: DbRequest) -> _Attempt | str:
        """The DSN and certificate files (cached per sandbox), or why it cannot run. Runs on the
        event loop, so the cache needs no lock."""
        sandbox = self.sandbox
        server = sandbox.datastores.servers.get(request.datastore)
        if sandbox.fabric is None or server is None or server.port is None:
            return f"the sandbox is not running datastore {request.datastore!r}"
        caller, user = request.caller, request.user
        identities, where = _identities(sandbox), f"connect to {server.url} as"
        if request.credential in ("certificate", "untrusted-ca"):
            kind: CertKind = "valid" if request.credential == "certificate" else "untrusted-ca"
            files = identities.files(sandbox, kind, caller)
            dsn = server.connection_settings(
                user, cert=files.cert, key=files.key, bundle=files.bundle
            )
            whose = f"{caller}'{'' if caller.endswith('s') else 's'} certificate"
            whose += " from an untrusted CA" if kind != "valid" else ""
            described = f"{where} {user} with {whose}, sslmode=verify-full"
            if request.verb is None:
                return _Attempt(_tuned(dsn), described)
            if request.verb not in STATEMENTS:
                return f"unknown table privilege {request.verb!r}"
            return _Attempt(_tuned(dsn), described, request.verb, request.table)
        absent = identities.root / "absent"  # never created: libpq then sends no certificate
        bundle = identities.files(sandbox, "valid", caller).bundle  # the server is still verified
        no_cert = server.connection_settings(
            user, cert=absent / "cert.pem", key=absent / "key.pem", bundle=bundle
        )
        if request.sslmode == "disable":
            settings = conninfo_to_dict(no_cert)
            plain = {key: settings[key] for key in ("host", "port", "dbname", "user")}
            dsn = make_conninfo("", **plain, sslmode="disable")
            return _Attempt(_tuned(dsn), f"{where} {user} in plaintext, sslmode=disable")
        if request.credential == "password":
            dsn = make_conninfo(no_cert, sslmode="require", password=secrets.token_urlsafe(18))
            text = f"{where} {user}, sslmode=require, a random password (not shown), no certificate"
            return _Attempt(_tuned(dsn), text)
        dsn = make_conninfo(no_cert, sslmode="require")
        return _Attempt(_tuned(dsn), f"{where} {user}, sslmode=require, no client certificate")


def _read_catalog(dsn: str, roles: tuple[str, ...], url: str) -> DbCatalog:
    """Blocking: one admin connection, one read-only transaction, always closed."""
    sent = f"read the catalogs of {url} as the admin over the unix socket"
    try:
        with psycopg.connect(_tuned(dsn), connect_timeout=CONNECT_TIMEOUT) as conn:
            return read_catalog(conn, roles)
    except psycopg.Error as exc:
        return DbCatalog("cannot-run", scrub(_first_line(str(exc))), sent=sent)


def _tuned(dsn: str) -> str:
    """No GSSAPI attempt first; bounded statements and locks; a name in the server's log."""
    return make_conninfo(
        dsn, gssencmode="disable", options=SESSION_OPTIONS, application_name="trustproof-probe"
    )


def _execute(attempt: _Attempt) -> DbAnswer:
    """Blocking: one connection, at most one statement, always rolled back, always closed."""
    try:
        conn = psycopg.connect(attempt.dsn, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        planned = f"; then {statement_for(attempt.verb, attempt.table)}" if attempt.verb else ""
        return _answer("connect-failed", attempt.connection + planned, _first_line(str(exc)))
    try:
        if attempt.verb is None:
            row = conn.execute("SELECT current_user").fetchone()
            who = row[0] if row else "?"
            return _answer("connected", attempt.connection, f"connected as {who}")
        return _run_statement(conn, attempt.verb, attempt.table, attempt.connection)
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        conn.close()


def _run_statement(conn: psycopg.Connection[Any], verb: str, table: str, how: str) -> DbAnswer:
    sent = f"{how}; {statement_for(verb, table)}; ROLLBACK"
    try:
        column = None
        if verb == "update":
            name = (table_schema(table), table.rsplit(".", maxsplit=1)[-1])
            row = conn.execute(FIRST_COLUMN, name).fetchone()
            if row is None:
                return _answer("cannot-run", sent, f"no table {table!r} found")
            column = str(row[0])
        sent = f"{how}; {statement_for(verb, table, column)}; ROLLBACK"
        cursor = conn.execute(_statement(verb, table, column))
        held = cursor.fetchone() if verb == "references" else (True,)
        if not (held and held[0] is True):
            detail = "has_table_privilege(current_user, ..., 'REFERENCES') is false"
            return _answer("lacks-privilege", sent, detail)
        return _answer("executed", sent, "succeeded (rolled back)")
    except psycopg.Error as exc:
        return _answer("refused", sent, _first_line(str(exc)), exc.sqlstate or "")


def _answer(status: Any, sent: str, detail: str, sqlstate: str = "") -> DbAnswer:
    return DbAnswer(status, scrub(detail), sqlstate, scrub(sent))


def _statement(verb: str, table: str, column: str | None = None) -> sql.Composed:
    """`STATEMENTS[verb]` for `table`; `column` (any column of it) is for update only."""
    return sql.SQL(STATEMENTS[verb]).format(
        table=table_identifier(table),
        column=sql.Identifier(column) if column else sql.SQL("<first column>"),
        name=sql.Literal(table),
    )


def statement_for(verb: str, table: str, column: str | None = None) -> str:
    """The statement that exercises `verb` on `table`, as text (for evidence and docs)."""
    return _statement(verb, table, column).as_string(None)


def _first_line(message: str) -> str:
    """libpq's message without the ``connection failed: connection to server at ... failed:``
    prefix (the evidence already says where), first line only, single-spaced."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    line = line.rsplit(" failed: ", 1)[-1]
    return re.sub(r"\s{2,}", " ", line)
