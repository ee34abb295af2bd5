"""The ``datastore`` family: generated cases against each sandbox PostgreSQL, run through the
`SandboxView` (a fresh connection, a fresh TLS handshake, each time; `trustproof.sandbox.view_db`
holds the SQL each table privilege is exercised with).

Cases come from the spec alone, never by hand. Per datastore boundary of the expected matrix
(`trustproof.plan`):

* ``db.inside-grants`` — each (caller, "verb table") cell the oracle allows: must be allowed;
* ``db.outside-grants`` — every other cell: must be denied_authz (or denied_authn for a caller
  with no role there at all: refusing its login is right too);
* ``db.outside-grants`` variant ``cn-mismatch`` — a valid certificate of workload A, user B:
  denied_authn;
* ``db.no-client-cert`` — TLS (``sslmode=require``), no client certificate: denied_tls or
  denied_authn;
* ``db.untrusted-ca`` — a client certificate from an impostor CA: denied_tls;
* ``db.password`` — a random password over TLS, no certificate: denied_authn or denied_tls;
* ``db.sslmode-disable`` — plaintext: denied_tls;
* ``db.undeclared-privilege`` — per workload role, and for PUBLIC: nothing in the catalogs
  beyond the spec (`trustproof.probes.db_privileges`);
* ``db.effective-hba`` — per datastore: the ``pg_hba.conf`` in force after the seed admits TCP
  clients only with a client certificate.

The connection probes run as the first workload with a role there; ``cn-mismatch`` logs in as the
next one (or as the admin role when there is only one).

Outcomes. A statement refused with SQLSTATE 42501 is denied_authz; an integrity error (class 23)
or one of the verb's "checked first" codes (`CHECKED_FIRST`: PostgreSQL checks the TRUNCATE
privilege before taking the lock and before refusing a table other tables reference, so 0A000
and 55P03 mean the check passed) means the privilege check passed: allowed, with the error in the
evidence. A refused connection carries no SQLSTATE in libpq, so it is classified by the server's
message (`classify_connection_error`), and the SQLSTATE PostgreSQL's source gives that message is
shown: no client certificate, or plaintext, refused by ``pg_hba.conf`` -> denied_tls; a TLS
alert from the server or a hang-up in the handshake -> denied_tls; a certificate whose CN is not
the user, a wrong password, an unknown role, a TLS connection no ``pg_hba.conf`` line admits ->
denied_authn; refused or timed out -> unreachable. When *we* give up (the server's certificate
does not verify, the server has no TLS, our files do not load) the probe could not tell: error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from trustproof.catalogue import Family
from trustproof.datastores import ADMIN_ROLE
from trustproof.probes.base import Plan, Probe
from trustproof.probes.db_privileges import hba_findings, held, undeclared, workload_roles
from trustproof.probes.model import Case, Evidence, Expectation, Outcome, Result
from trustproof.probes.params import Login, LoginAttempt, TablePrivilege
from trustproof.scrub import scrub
from trustproof.view import DbAnswer, DbCredential, DbRequest, SandboxView, SslMode
from trustproof.view.db_catalog import PUBLIC

CONNECT = "connect"
CHECKED_FIRST: Mapping[str, frozenset[str]] = {"truncate": frozenset({"0A000", "55P03"})}
"""Per verb, SQLSTATEs PostgreSQL raises only after the privilege check passed."""
LOGINS: Mapping[LoginAttempt, tuple[DbCredential, SslMode]] = {
    "no-client-cert": ("no-cert", "require"),
    "untrusted-ca": ("untrusted-ca", "verify-full"),
    "password": ("password", "require"),
    "sslmode-disable": ("no-cert", "disable"),
    "cn-mismatch": ("certificate", "verify-full"),
}


@dataclass(frozen=True)
class GrantProbe:
    """``db.inside-grants`` (allowed cells) or ``db.outside-grants`` (the other cells, and a
    login as another role with a valid certificate: variant ``cn-mismatch``)."""

    inside: bool
    family: Family = "datastore"

    @property
    def id(self) -> str:
        return "db.inside-grants" if self.inside else "db.outside-grants"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary in plan.datastores():
            roles = spec.datastores[boundary.name].roles
            for cell in boundary.cells:
                if cell.allowed != self.inside:
                    continue
                verb, table = cell.operation.split(" ", 1)
                expect = Expectation.allow()
                if not self.inside:
                    expect = Expectation.refuse("denied_authz")
                    if cell.caller not in roles:  # no role at all: refused at login is right too
                        expect = Expectation.refuse("denied_authz", "denied_authn")
                params = TablePrivilege(verb, table)
                name, op = boundary.name, cell.operation
                yield Case(self.id, name, "datastore", cell.caller, op, expect, "", params)
            if not self.inside:
                yield from _login_cases(plan, boundary.name, self.id, "cn-mismatch")

    async def run(self, case: Case, target: SandboxView) -> Result:
        return await run_datastore_case(case, target)


@dataclass(frozen=True)
class LoginProbe:
    """A connection probe: log in with a credential or transport that must be refused."""

    id: str
    attempt: LoginAttempt
    family: Family = "datastore"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary in plan.datastores():
            yield from _login_cases(plan, boundary.name, self.id, self.attempt)

    async def run(self, case: Case, target: SandboxView) -> Result:
        return await run_datastore_case(case, target)


REFUSALS: Mapping[LoginAttempt, tuple[Outcome, ...]] = {
    "no-client-cert": ("denied_tls", "denied_authn"),
    "untrusted-ca": ("denied_tls",),
    "password": ("denied_authn", "denied_tls"),
    "sslmode-disable": ("denied_tls",),
    "cn-mismatch": ("denied_authn",),
}


def _login_cases(plan: Plan, name: str, probe: str, attempt: LoginAttempt) -> Iterator[Case]:
    spec = plan.spec
    roles = [str(role) for role in spec.datastores[name].roles]
    callers = roles or [str(service) for service in spec.services]
    if not callers:
        return
    caller = callers[0]
    user = None
    if attempt == "cn-mismatch":
        user = next((role for role in roles if role != caller), ADMIN_ROLE)
    expect = Expectation.refuse(*REFUSALS[attempt])
    variant = "cn-mismatch" if attempt == "cn-mismatch" else ""
    params = Login(attempt, user)
    yield Case(probe, name, "datastore", caller, CONNECT, expect, variant, params)


def request_for(case: Case) -> DbRequest:
    """The datastore attempt of `case` (ValueError for a case that is not one)."""
    if case.kind != "datastore" or case.caller is None:
        raise ValueError(f"not a datastore case with a caller: {case.id}")
    caller, params = case.caller, case.params
    if isinstance(params, TablePrivilege):
        return DbRequest(case.boundary, caller, caller, verb=params.verb, table=params.table)
    if isinstance(params, Login):
        credential, sslmode = LOGINS[params.attempt]
        return DbRequest(case.boundary, caller, params.user or caller, credential, sslmode)
    raise ValueError(f"a datastore case needs TablePrivilege or Login parameters: {case.id}")


async def run_datastore_case(case: Case, target: SandboxView) -> Result:
    """Run `case` through `target`. Refusals are results, never exceptions; a probe that cannot
    tell gives "error"."""
    started = time.perf_counter()
    try:
        request = request_for(case)
    except ValueError as exc:
        result = _result("error", "db", "cannot-run", "nothing (the case could not run)", str(exc))
    else:
        result = classify_answer(request, await target.query(request))
    return replace(result, elapsed_ms=(time.perf_counter() - started) * 1000)


def classify_answer(request: DbRequest, answer: DbAnswer) -> Result:
    """The `Result` of one datastore attempt. Pure: tested without a server."""
    sent, detail, state = answer.sent, answer.detail, answer.sqlstate
    if answer.status == "cannot-run":
        return _result("error", "db", "cannot-run", sent, detail)
    if answer.status == "connect-failed":
        outcome, stage, reason, state = classify_connection_error(detail)
        return _result(
            outcome, stage, reason, sent, f"{detail} (SQLSTATE {state})" if state else detail
        )
    if answer.status == "connected":
        return _result("allowed", "", "connected", sent, detail)
    if answer.status == "executed":
        return _result("allowed", "", "allowed", sent, detail)
    if answer.status == "lacks-privilege":
        return _result("denied_authz", "db", "insufficient-privilege", sent, detail)
    detail += f" (SQLSTATE {state})" if state else ""
    if state == "42501":
        return _result("denied_authz", "db", "insufficient-privilege", sent, detail)
    if state.startswith("23") or state in CHECKED_FIRST.get(request.verb or "", ()):
        detail = f"the privilege check passed, then: {detail}; rolled back"
        return _result("allowed", "", "allowed", sent, detail)
    return _result("error", "db", "sql-error", sent, detail)


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


def _result(outcome: Outcome, stage: str, reason: str, sent: str, detail: str) -> Result:
    return Result(outcome, stage, reason, Evidence(sent=scrub(sent), detail=scrub(detail)))


# -- what the catalogs say (db.undeclared-privilege, db.effective-hba) ----------------------------

PRIVILEGES = "privileges"
HBA = "pg_hba.conf"


@dataclass(frozen=True)
class UndeclaredPrivilegeProbe:
    """``db.undeclared-privilege``: one case per workload role (caller = role) and one for
    PUBLIC (no caller, variant ``PUBLIC``) per datastore; findings from
    `trustproof.probes.db_privileges` make the case an over-permission."""

    id: str = "db.undeclared-privilege"
    family: Family = "datastore"

    def cases(self, plan: Plan) -> Iterator[Case]:
        expect = Expectation.refuse("denied_authz")
        for boundary in plan.datastores():
            name = boundary.name
            for role in workload_roles(plan.spec, name):
                yield Case(self.id, name, "datastore", role, PRIVILEGES, expect)
            yield Case(self.id, name, "datastore", None, PRIVILEGES, expect, PUBLIC)

    async def run(self, case: Case, target: SandboxView) -> Result:
        started = time.perf_counter()
        grantee = case.caller or PUBLIC
        roles = workload_roles(target.spec, case.boundary)
        catalog = await target.db_catalog(case.boundary, roles)
        if catalog.status != "read":
            result = _result("error", "db", "cannot-run", catalog.sent or "nothing", catalog.detail)
        else:
            extra = undeclared(target.spec, case.boundary, grantee, catalog)
            if extra:
                detail = "beyond the spec: " + "; ".join(h.describe() for h in extra)
                result = _result("allowed", "", "undeclared-privilege", catalog.sent, detail)
            else:
                holds = "; ".join(h.describe() for h in held(catalog, grantee)) or "nothing"
                detail = f"nothing beyond the spec; {grantee} holds: {holds}"
                result = _result("denied_authz", "db", "as-declared", catalog.sent, detail)
        return replace(result, elapsed_ms=(time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class EffectiveHbaProbe:
    """``db.effective-hba``: one case per datastore; every ``pg_hba.conf`` rule a TCP client can
    match must demand a client certificate (or reject), with TLS on (`hba_findings`)."""

    id: str = "db.effective-hba"
    family: Family = "datastore"

    def cases(self, plan: Plan) -> Iterator[Case]:
        expect = Expectation.refuse("denied_authn")
        for boundary in plan.datastores():
            yield Case(self.id, boundary.name, "datastore", None, HBA, expect)

    async def run(self, case: Case, target: SandboxView) -> Result:
        started = time.perf_counter()
        catalog = await target.db_catalog(case.boundary, ())
        if catalog.status != "read":
            result = _result("error", "db", "cannot-run", catalog.sent or "nothing", catalog.detail)
        elif findings := hba_findings(catalog):
            detail = "a TCP client gets in without a client certificate: " + "; ".join(findings)
            result = _result("allowed", "", "weak-authentication", catalog.sent, detail)
        else:
            rules = "; ".join(r.describe() for r in catalog.hba)
            detail = f"every TCP rule demands a client certificate or rejects: {rules}"
            result = _result("denied_authn", "db", "certificates-only", catalog.sent, detail)
        return replace(result, elapsed_ms=(time.perf_counter() - started) * 1000)


PROBES: tuple[Probe, ...] = (
    GrantProbe(inside=True),
    LoginProbe("db.no-client-cert", "no-client-cert"),
    LoginProbe("db.untrusted-ca", "untrusted-ca"),
    LoginProbe("db.password", "password"),
    LoginProbe("db.sslmode-disable", "sslmode-disable"),
    GrantProbe(inside=False),
    UndeclaredPrivilegeProbe(),
    EffectiveHbaProbe(),
)
