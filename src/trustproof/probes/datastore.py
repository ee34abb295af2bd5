"""The datastore half of the zero-trust suite: generated cases against each sandbox PostgreSQL, and
the probe that runs one of them for real (a fresh connection, a fresh TLS handshake, each time).

Cases come from the spec alone (`datastore_cases`), never by hand. Per datastore boundary of the
expected matrix (`trustproof.plan`):

* ``db.inside-grants`` — each (caller, "verb table") cell the oracle allows: must be allowed;
* ``db.outside-grants`` — every other cell: must be denied_authz (or denied_authn for a caller
  with no role there at all: refusing its login is right too);
* ``db.outside-grants`` variant ``cn-mismatch`` — a valid certificate of workload A, user B:
  denied_authn;
* ``db.no-client-cert`` — TLS (``sslmode=require``), no client certificate: denied_tls or
  denied_authn;
* ``db.untrusted-ca`` — a client certificate from an impostor CA: denied_tls;
* ``db.password`` — a random password over TLS, no certificate: denied_authn or denied_tls;
* ``db.sslmode-disable`` — plaintext: denied_tls.

The connection probes run as the first workload with a role there; ``cn-mismatch`` logs in as the
next one (or as the admin role when there is only one).

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
* truncate — ``TRUNCATE t``, rolled back. PostgreSQL checks the privilege before taking the lock
  and before refusing a table other tables reference, so 0A000 and 55P03 (``lock_timeout``)
  mean the check passed (the other statements lock first: 55P03 there tells nothing, an error);
* trigger — ``CREATE TRIGGER`` on ``t`` with the built-in ``suppress_redundant_updates_trigger``
  (EXECUTE is PUBLIC's), rolled back;
* references — ``has_table_privilege``, the last resort: exercising it needs a table of one's own
  (``CREATE`` on a schema or ``TEMP``), which workload roles must not have.

Outcomes. A statement refused with SQLSTATE 42501 is denied_authz; an integrity error (class 23)
or one of the verb's "checked first" codes above means the privilege check passed: allowed, with
the error in the evidence. A refused connection carries no SQLSTATE in libpq, so it is classified
by the server's message (`classify_connection_error`), and the SQLSTATE PostgreSQL's source gives
that message is shown: no client certificate, or plaintext, refused by ``pg_hba.conf`` ->
denied_tls; a TLS alert from the server or a hang-up in the handshake -> denied_tls; a certificate
whose CN is not the user, a wrong password, an unknown role, a TLS connection no ``pg_hba.conf``
line admits -> denied_authn; refused or timed out -> unreachable. When *we* give up (the server's
certificate does not verify, the server has no TLS, our files do not load) the probe could not
tell: error. Evidence never holds a key or a password, and every message is scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, LiteralString, NamedTuple

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trustproof.datastores import ADMIN_ROLE
from trustproof.datastores.pgprovision import table_identifier, table_schema
from trustproof.errors import TrustproofError
from trustproof.identity import BrokenMaterial, Svid, SvidFiles, write_svid_files
from trustproof.plan import expected_matrix
from trustproof.probes.model import Case, Evidence, Expectation, Outcome, Result
from trustproof.sandbox.rundir import private_dir
from trustproof.scrub import scrub
from trustproof.spec.model import Spec

if TYPE_CHECKING:
    from trustproof.sandbox.controller import Sandbox

CONNECT = "connect"
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


# -- cases ----------------------------------------------------------------------------------------


def datastore_cases(spec: Spec) -> list[Case]:
    """Every datastore case of `spec`: one per cell of each datastore's expected grid, plus the
    five connection probes per datastore."""
    cases: list[Case] = []
    for boundary in expected_matrix(spec):
        if boundary.kind != "datastore":
            continue
        roles = spec.datastores[boundary.name].roles
        for cell in boundary.cells:
            verb, table = cell.operation.split(" ", 1)
            probe, expect = "db.outside-grants", Expectation.refuse("denied_authz")
            if cell.allowed:
                probe, expect = "db.inside-grants", Expectation.allow()
            elif cell.caller not in roles:  # no role at all: refused at login is right too
                expect = Expectation.refuse("denied_authz", "denied_authn")
            params = {"attempt": "grant", "verb": verb, "table": table}
            op = cell.operation
            cases.append(
                Case(probe, boundary.name, "datastore", cell.caller, op, expect, "", params)
            )
        cases.extend(_connection_cases(spec, boundary.name))
    return cases


def _connection_cases(spec: Spec, name: str) -> list[Case]:
    roles = [str(role) for role in spec.datastores[name].roles]
    callers = roles or [str(service) for service in spec.services]
    if not callers:
        return []
    caller = callers[0]
    other = next((role for role in roles if role != caller), ADMIN_ROLE)

    def case(probe: str, attempt: str, *refusals: Outcome, **params: str) -> Case:
        expect = Expectation.refuse(*refusals)
        variant = "cn-mismatch" if attempt == "cn-mismatch" else ""
        params = {"attempt": attempt, **params}
        return Case(probe, name, "datastore", caller, CONNECT, expect, variant, params)

    return [
        case("db.no-client-cert", "no-client-cert", "denied_tls", "denied_authn"),
        case("db.untrusted-ca", "untrusted-ca", "denied_tls"),
        case("db.password", "password", "denied_authn", "denied_tls"),
        case("db.sslmode-disable", "sslmode-disable", "denied_tls"),
        case("db.outside-grants", "cn-mismatch", "denied_authn", user=other),
    ]


# -- certificate files ----------------------------------------------------------------------------

CertKind = Literal["valid", "untrusted-ca"]


class _ProbeIdentities:
    """The certificate files the probes present, per (kind, workload), for one sandbox: written on
    first use under ``<run>/identities/_probes`` (0700, keys 0600; removed with the run's secrets)
    and renewed at half-life into a *new* directory, so that a connection in flight never reads a
    certificate next to another certificate's key. ``_`` starts no workload name: no collision."""

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


# -- running one case -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """What `_execute` does in its worker thread: connect with `dsn`, then maybe one statement."""

    dsn: str = field(repr=False)  # may hold the random password of db.password
    connection: str  # how we connect, in words, without secrets
    verb: str | None = None
    table: str = ""


async def run_datastore_case(case: Case, sandbox: Sandbox) -> Result:
    """Run `case` against the running `sandbox`: a fresh connection in a worker thread, rolled
    back. Refusals are results, never exceptions; a probe that cannot tell gives "error"."""
    started = time.perf_counter()
    try:
        attempt = _prepare(case, sandbox)
    except (OSError, TrustproofError) as exc:  # writing the certificate files failed
        attempt = f"could not write the probe's certificate files: {exc}"
    if isinstance(attempt, str):
        result = _result("error", "db", "cannot-run", "nothing (the case could not run)", attempt)
    else:
        result = await asyncio.to_thread(_execute, attempt)
    return replace(result, elapsed_ms=(time.perf_counter() - started) * 1000)


def _prepare(case: Case, sandbox: Sandbox) -> _Attempt | str:
    """The DSN and certificate files for `case` (files cached per sandbox), or why it cannot run.
    Runs on the event loop, so the cache needs no lock."""
    server = sandbox.datastores.servers.get(case.boundary)
    if sandbox.fabric is None or server is None or server.port is None:
        return f"the sandbox is not running datastore {case.boundary!r} ({case.id})"
    if case.kind != "datastore" or case.caller is None:
        return f"not a datastore case with a caller: {case.id}"
    caller, attempt = case.caller, str(case.params.get("attempt", ""))
    identities, where = _identities(sandbox), f"connect to {server.url} as"
    if attempt in ("grant", "cn-mismatch", "untrusted-ca"):
        kind: CertKind = "untrusted-ca" if attempt == "untrusted-ca" else "valid"
        files = identities.files(sandbox, kind, caller)
        user = str(case.params.get("user", caller))
        dsn = server.connection_settings(user, cert=files.cert, key=files.key, bundle=files.bundle)
        whose = f"{caller}'{'' if caller.endswith('s') else 's'} certificate"
        whose += " from an untrusted CA" if kind != "valid" else ""
        described = f"{where} {user} with {whose}, sslmode=verify-full"
        if attempt != "grant":
            return _Attempt(_tuned(dsn), described)
        verb, table = str(case.params["verb"]), str(case.params["table"])
        if verb not in STATEMENTS:
            return f"unknown table privilege {verb!r} ({case.id})"
        return _Attempt(_tuned(dsn), described, verb, table)
    absent = identities.root / "absent"  # never created: libpq then sends no certificate
    bundle = identities.files(sandbox, "valid", caller).bundle  # the server is still verified
    no_cert = server.connection_settings(
        caller, cert=absent / "cert.pem", key=absent / "key.pem", bundle=bundle
    )
    if attempt == "no-client-cert":
        dsn = make_conninfo(no_cert, sslmode="require")
        return _Attempt(_tuned(dsn), f"{where} {caller}, sslmode=require, no client certificate")
    if attempt == "password":
        dsn = make_conninfo(no_cert, sslmode="require", password=secrets.token_urlsafe(18))
        text = f"{where} {caller}, sslmode=require, a random password (not shown), no certificate"
        return _Attempt(_tuned(dsn), text)
    if attempt == "sslmode-disable":
        settings = conninfo_to_dict(no_cert)
        plain = {key: settings[key] for key in ("host", "port", "dbname", "user")}
        dsn = make_conninfo("", **plain, sslmode="disable")
        return _Attempt(_tuned(dsn), f"{where} {caller} in plaintext, sslmode=disable")
    return f"unknown datastore attempt {attempt!r} ({case.id})"


def _tuned(dsn: str) -> str:
    """No GSSAPI attempt first; bounded statements and locks; a name in the server's log."""
    return make_conninfo(
        dsn, gssencmode="disable", options=SESSION_OPTIONS, application_name="trustproof-probe"
    )


def _execute(attempt: _Attempt) -> Result:
    """Blocking: one connection, at most one statement, always rolled back, always closed."""
    try:
        conn = psycopg.connect(attempt.dsn, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        message = _first_line(str(exc))
        outcome, stage, reason, state = classify_connection_error(message)
        detail = f"{message} (SQLSTATE {state})" if state else message
        planned = f"; then {statement_for(attempt.verb, attempt.table)}" if attempt.verb else ""
        return _result(outcome, stage, reason, attempt.connection + planned, detail)
    try:
        if attempt.verb is None:
            row = conn.execute("SELECT current_user").fetchone()
            who = row[0] if row else "?"
            return _result("allowed", "", "connected", attempt.connection, f"connected as {who}")
        return _run_statement(conn, attempt.verb, attempt.table, attempt.connection)
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        conn.close()


def _run_statement(conn: psycopg.Connection[Any], verb: str, table: str, how: str) -> Result:
    sent = f"{how}; {statement_for(verb, table)}; ROLLBACK"
    try:
        column = None
        if verb == "update":
            name = (table_schema(table), table.rsplit(".", maxsplit=1)[-1])
            row = conn.execute(FIRST_COLUMN, name).fetchone()
            if row is None:
                return _result("error", "db", "no-such-table", sent, f"no table {table!r} found")
            column = str(row[0])
        sent = f"{how}; {statement_for(verb, table, column)}; ROLLBACK"
        cursor = conn.execute(_statement(verb, table, column))
        held = cursor.fetchone() if verb == "references" else (True,)
        if not (held and held[0] is True):
            detail = "has_table_privilege(current_user, ..., 'REFERENCES') is false"
            return _result("denied_authz", "db", "insufficient-privilege", sent, detail)
        return _result("allowed", "", "allowed", sent, "succeeded (rolled back)")
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        detail = _first_line(str(exc)) + (f" (SQLSTATE {state})" if state else "")
        if state == "42501":
            return _result("denied_authz", "db", "insufficient-privilege", sent, detail)
        if state.startswith("23") or state in CHECKED_FIRST.get(verb, ()):
            detail = f"the privilege check passed, then: {detail}; rolled back"
            return _result("allowed", "", "allowed", sent, detail)
        return _result("error", "db", "sql-error", sent, detail)


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


# -- classification -------------------------------------------------------------------------------


class _Rule(NamedTuple):
    pattern: str  # searched in libpq's message
    outcome: Outcome
    stage: str
    reason: str
    sqlstate: str = ""  # what PostgreSQL's source attaches to that server message


_CONNECTION_RULES = (
    _Rule(r"root certificate file|could not (load|open|read)", "error", "tls", "client-files"),
    _Rule(r"certificate verify failed|server certificate", "error", "tls", "server-not-verified"),
    _Rule(r"server does not support SSL", "error", "tls", "server-without-tls"),
    _Rule(r"requires a valid client certificate", "denied_tls", "db", "no-client-cert", "28000"),
    _Rule(r"pg_hba\.conf.*no encryption", "denied_tls", "db", "plaintext-rejected", "28000"),
    _Rule(r"certificate authentication failed", "denied_authn", "db", "cn-mismatch", "28000"),
    _Rule(r"password authentication failed", "denied_authn", "db", "bad-password", "28P01"),
    _Rule(r"pg_hba\.conf", "denied_authn", "db", "no-hba-entry", "28000"),
    _Rule(r'role ".*" does not exist', "denied_authn", "db", "no-such-role", "28000"),
    _Rule(r"not permitted to log in", "denied_authz", "db", "login-not-permitted", "28000"),
    _Rule(r"permission denied for database", "denied_authz", "db", "no-connect", "42501"),
    _Rule(r"alert|SSL|closed the connection", "denied_tls", "tls", "tls-handshake-refused"),
    _Rule(
        r"refused|timeout expired|route to host|unreachable|translate host",
        "unreachable",
        "transport",
        "unreachable",
    ),
)


def classify_connection_error(message: str) -> tuple[Outcome, str, str, str]:
    """(outcome, stage, reason, SQLSTATE or "") for libpq's message about a failed connection;
    the first matching rule decides. Pure: every rule can be tested without a server."""
    for rule in _CONNECTION_RULES:
        if re.search(rule.pattern, message):
            return rule.outcome, rule.stage, rule.reason, rule.sqlstate
    return "error", "db", "connection-failed", ""


def _first_line(message: str) -> str:
    """libpq's message without the ``connection failed: connection to server at ... failed:``
    prefix (the evidence already says where), first line only, single-spaced."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    line = line.rsplit(" failed: ", 1)[-1]
    return re.sub(r"\s{2,}", " ", line)


def _result(outcome: Outcome, stage: str, reason: str, sent: str, detail: str) -> Result:
    return Result(outcome, stage, reason, Evidence(sent=scrub(sent), detail=scrub(detail)))
