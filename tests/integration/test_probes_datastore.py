"""The datastore probes against the shop's real PostgreSQL, and their failing twins.

Every generated case must pass against the shop as written. The twins are copies of the shop
whose PostgreSQL differs from the oracle in one known way (a grant too broad, a grant too narrow,
a ``pg_hba.conf`` that trusts everyone): the very same generated cases must then give the specific
verdict that names the difference, and nothing else may change.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import yaml

from trustproof.clock import SystemClock
from trustproof.datastores import PostgresServer
from trustproof.datastores.pgprocess import reload_and_confirm
from trustproof.identity import CertificateAuthority
from trustproof.probes.base import Plan
from trustproof.probes.datastore import (
    EffectiveHbaProbe,
    UndeclaredPrivilegeProbe,
    classify_answer,
    classify_connection_error,
    request_for,
    run_datastore_case,
)
from trustproof.probes.db_privileges import undeclared
from trustproof.probes.model import Case, CaseResult, Result, judge
from trustproof.probes.params import Login, TablePrivilege
from trustproof.probes.registry import generate, probe_for
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.sandbox.view_db import DatastoreClient, statement_for
from trustproof.spec import load_spec
from trustproof.spec.model import Spec
from trustproof.view.db_catalog import DbCatalog

pytestmark = pytest.mark.integration

SHOP_DIR = Path(__file__).resolve().parents[2] / "examples" / "shop"
SHOP = SHOP_DIR / "trustproof.yaml"
CONNECTION_PROBES = {
    "db.no-client-cert | shopdb | storefront | connect": ("denied_tls", "no-client-cert"),
    "db.untrusted-ca | shopdb | storefront | connect": ("denied_tls", "tls-handshake-refused"),
    "db.password | shopdb | storefront | connect": ("denied_tls", "no-client-cert"),
    "db.sslmode-disable | shopdb | storefront | connect": ("denied_tls", "plaintext-rejected"),
    "db.outside-grants | shopdb | storefront | connect | cn-mismatch": (
        "denied_authn",
        "cn-mismatch",
    ),
}


def datastore_cases(spec: Spec) -> list[Case]:
    return [case for case in generate(spec) if case.kind == "datastore"]


def first_refused_grant(spec: Spec) -> Case:
    return next(c for c in datastore_cases(spec) if c.probe == "db.outside-grants")


async def run_all(sandbox: Sandbox) -> dict[str, CaseResult]:
    """Every generated datastore case of the sandbox's spec, concurrently, judged, by case id."""
    cases = datastore_cases(sandbox.spec)
    async with LiveView.open(sandbox) as view:
        results = await asyncio.gather(*(probe_for(case).run(case, view) for case in cases))
    return {
        case.id: CaseResult(case, r, judge(case, r)) for case, r in zip(cases, results, strict=True)
    }


def failures(judged: dict[str, CaseResult]) -> dict[str, str]:
    return {
        cid: f"{cr.verdict}: {cr.result.outcome} {cr.result.evidence.detail}"
        for cid, cr in judged.items()
        if not cr.ok
    }


EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, below the kernel's ephemeral range. A port from that
    range (what binding port 0 hands out) is free only until the sandbox's own listeners and
    outgoing connections, which take theirs from the same range, get there first: a shop service
    failed once to listen on 40399, "Address already in use", under the CI's two workers."""
    low = int(EPHEMERAL.read_text().split()[0]) if EPHEMERAL.exists() else 32768
    candidates = [p for p in random.sample(range(20000, low), 200) if p not in HANDED_OUT]
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        HANDED_OUT.add(port)
        return port
    raise AssertionError(f"no free loopback port in 20000-{low - 1} after 200 tries")


def shop_copy(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None],
    seed: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """A copy of the shop whose trustproof.yaml was edited by `change`, with `seed` appended to
    its seed file and `files` (relative path -> text) written next to it. Its services listen on
    free ports, so that it can run next to another test's shop."""
    root = tmp_path / "shop"
    shutil.copytree(SHOP_DIR, root, ignore=shutil.ignore_patterns("trustproof-reports", ".*"))
    seed_file = root / "db" / "seed.sql"
    seed_file.write_text(seed_file.read_text() + "\n" + seed)
    for relative, text in (files or {}).items():
        (root / relative).write_text(text)
    spec_file = root / "trustproof.yaml"
    document = yaml.safe_load(spec_file.read_text())
    for service in document["services"].values():
        service["port"] = free_port()
    change(document)
    spec_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return spec_file


def snapshot(server: PostgresServer) -> list[tuple[object, ...]]:
    """Rows per table, sequence positions and probe triggers: what a probe must never change."""
    with psycopg.connect(server.admin_settings(), autocommit=True) as conn:
        tables = [
            conn.execute(f"SELECT '{t}', count(*) FROM {t}").fetchone()  # noqa: S608 (fixed names)
            for t in ("products", "orders", "order_items", "payments")
        ]
        sequences = conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
        ).fetchall()
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").fetchall()
    return [*(row for row in tables if row), *sequences, *triggers]


# -- generation (no sockets) ----------------------------------------------------------------------


def test_cases_are_the_oracles_grid_plus_five_connection_probes() -> None:
    cases = datastore_cases(load_spec(SHOP))
    ids = [case.id for case in cases]
    # callers x tables x data verbs + connection probes + catalog probes (3 roles, PUBLIC, hba)
    assert len(ids) == len(set(ids)) == 3 * 4 * 4 + 5 + 5
    inside = {case.id for case in cases if case.probe == "db.inside-grants"}
    assert len(inside) == 9  # the access oracle's grants, one case each
    assert "db.inside-grants | shopdb | orders | update orders" in inside
    by_id = {case.id: case for case in cases}
    refused = by_id["db.outside-grants | shopdb | storefront | insert products"]
    assert (refused.expect.allowed, refused.expect.refusals) == (False, ("denied_authz",))
    assert refused.params == TablePrivilege("insert", "products")
    mismatch = by_id["db.outside-grants | shopdb | storefront | connect | cn-mismatch"]
    assert mismatch.params == Login("cn-mismatch", "orders")  # storefront's cert, orders' role
    assert set(CONNECTION_PROBES) <= set(by_id)
    assert {case.kind for case in cases} == {"datastore"}


@pytest.mark.parametrize(
    ("verb", "expected"),
    [
        ("select", 'SELECT 1 FROM "orders" LIMIT 1'),
        ("insert", 'INSERT INTO "orders" SELECT WHERE false'),
        ("update", 'UPDATE "orders" SET "status" = DEFAULT WHERE false'),
        ("delete", 'DELETE FROM "orders" WHERE false'),
        ("truncate", 'TRUNCATE "orders"'),
        ("references", "SELECT has_table_privilege(current_user, 'orders', 'REFERENCES')"),
    ],
)
def test_each_verb_has_one_side_effect_free_statement(verb: str, expected: str) -> None:
    assert statement_for(verb, "orders", "status") == expected


@pytest.mark.parametrize(
    ("message", "outcome", "reason"),
    [
        ("FATAL:  connection requires a valid client certificate", "denied_tls", "no-client-cert"),
        ("SSL error: tlsv1 alert unknown ca", "denied_tls", "tls-handshake-refused"),
        ("SSL SYSCALL error: EOF detected", "denied_tls", "tls-handshake-refused"),
        (
            'FATAL:  certificate authentication failed for user "orders"',
            "denied_authn",
            "cn-mismatch",
        ),
        (
            'FATAL:  password authentication failed for user "orders"',
            "denied_authn",
            "bad-password",
        ),
        (
            'FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "x", database "y",'
            " SSL encryption",
            "denied_authn",
            "no-hba-entry",
        ),
        ('FATAL:  role "ghost" does not exist', "denied_authn", "no-such-role"),
        ('FATAL:  permission denied for database "shop"', "denied_authz", "no-connect"),
        # We refused the server, not it us: the probe cannot tell whether it would have refused.
        ("SSL error: certificate verify failed", "error", "server-not-verified"),
        (
            'server certificate for "127.0.0.9" does not match host name',
            "error",
            "server-not-verified",
        ),
        ("server does not support SSL, but SSL was required", "error", "server-without-tls"),
        ('could not load private key file "k.pem": key values mismatch', "error", "client-files"),
        ("Connection refused\n\tIs the server running on that host", "unreachable", "unreachable"),
        ("timeout expired", "unreachable", "unreachable"),
        ("something nobody has seen", "error", "connection-failed"),
    ],
)
def test_connection_failures_are_classified_by_the_servers_message(
    message: str, outcome: str, reason: str
) -> None:
    got_outcome, _, got_reason, _ = classify_connection_error(message)
    assert (got_outcome, got_reason) == (outcome, reason)


def test_a_sandbox_that_is_not_running_gives_an_error_result(tmp_path: Path) -> None:
    sandbox = Sandbox.from_file(SHOP, run_dir=tmp_path / "run")  # never started
    case = first_refused_grant(sandbox.spec)
    request = request_for(case)
    result = classify_answer(request, asyncio.run(DatastoreClient(sandbox).query(request)))
    assert (result.outcome, result.reason) == ("error", "cannot-run")
    assert judge(case, result) == "error"


# -- the shop as written: every case passes -------------------------------------------------------


def test_every_generated_case_passes_against_the_shop(tmp_path: Path) -> None:
    async def scenario() -> dict[str, CaseResult]:
        shop = shop_copy(tmp_path, lambda _: None)  # the shop as written, on free ports
        async with Sandbox.from_file(shop, run_dir=tmp_path / "run") as sandbox:
            server = sandbox.datastores.servers["shopdb"]
            before = snapshot(server)
            judged = await run_all(sandbox)
            assert snapshot(server) == before  # nothing written, no sequence advanced
            probes = tmp_path / "run" / "identities" / "_probes"
            assert stat.S_IMODE(probes.stat().st_mode) == 0o700
            keys = list(probes.glob("*/key.pem"))
            assert len(keys) == 4  # one valid certificate per workload + the impostor's
            assert {stat.S_IMODE(key.stat().st_mode) for key in keys} == {0o600}
            async with LiveView.open(sandbox) as view:
                again = await run_datastore_case(first_refused_grant(sandbox.spec), view)
            assert again.outcome == "denied_authz"
            assert len(list(probes.glob("*/key.pem"))) == 4  # written once per caller
        assert not probes.exists()  # removed with the run's secrets
        return judged

    judged = asyncio.run(scenario())
    assert failures(judged) == {}
    assert len(judged) == 58
    hba = judged["db.effective-hba | shopdb | - | pg_hba.conf"].result
    assert (hba.outcome, hba.reason) == ("denied_authn", "certificates-only")
    assert "hostssl shop all 127.0.0.1/255.255.255.255 cert" in hba.evidence.detail
    for cid, (outcome, reason) in CONNECTION_PROBES.items():
        assert (judged[cid].result.outcome, judged[cid].result.reason) == (outcome, reason), cid
    allowed = judged["db.inside-grants | shopdb | orders | update orders"].result
    assert allowed.evidence.sent.endswith(
        'UPDATE "orders" SET "id" = DEFAULT WHERE false; ROLLBACK'
    )
    denied = judged["db.outside-grants | shopdb | orders | delete orders"].result
    assert (denied.outcome, denied.stage) == ("denied_authz", "db")
    assert denied.evidence.detail == "permission denied for table orders (SQLSTATE 42501)"
    password = judged["db.password | shopdb | storefront | connect"].result.evidence
    assert "password (not shown)" in password.sent
    for cr in judged.values():
        text = f"{cr.result.evidence.sent} {cr.result.evidence.detail}"
        assert "PRIVATE KEY" not in text
        assert "password=" not in text


# -- the twins: the same cases, a PostgreSQL that differs from the oracle -------------------------


WRONG_GRANTS = """
GRANT INSERT ON products TO storefront;  -- the oracle says select only
REVOKE UPDATE ON orders FROM orders;     -- the oracle also says update
"""
"""A seed that makes the roles too broad for storefront and too narrow for orders (the roles in
the spec must equal the oracle: `trustproof validate` refuses anything else)."""


def wrong_grants(spec: dict[str, Any]) -> None:
    """Every other privilege used once, in both the roles and the oracle, so that each verb's
    statement runs for real."""
    roles = spec["datastores"]["shopdb"]["roles"]
    oracle = spec["access"]["datastores"]["shopdb"]
    for grants in (roles, oracle):
        grants["orders"]["order_items"] = ["select", "insert", "truncate"]
        grants["orders"]["orders"] = [*grants["orders"]["orders"], "truncate"]  # referenced
        grants["payments"]["payments"] = ["select", "insert", "trigger", "references"]


def test_grants_broader_or_narrower_than_the_oracle_are_named(tmp_path: Path) -> None:
    async def scenario() -> dict[str, CaseResult]:
        spec = shop_copy(tmp_path, wrong_grants, seed=WRONG_GRANTS)
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            server = sandbox.datastores.servers["shopdb"]
            before = snapshot(server)
            judged = await run_all(sandbox)
            assert snapshot(server) == before  # TRUNCATE and CREATE TRIGGER were rolled back
            return judged

    judged = asyncio.run(scenario())
    assert failures(judged) == {
        "db.outside-grants | shopdb | storefront | insert products": (
            "over-permission: allowed succeeded (rolled back)"
        ),
        "db.inside-grants | shopdb | orders | update orders": (
            "under-permission: denied_authz permission denied for table orders (SQLSTATE 42501)"
        ),
        "db.undeclared-privilege | shopdb | storefront | privileges": (
            "over-permission: allowed beyond the spec: storefront: INSERT on table public.products"
        ),
    }
    assert len(judged) == 3 * 4 * 7 + 5 + 5  # every privilege is now mentioned: every verb probed
    truncated = judged["db.inside-grants | shopdb | orders | truncate orders"].result
    assert truncated.outcome == "allowed"
    assert "then: cannot truncate a table referenced in a foreign key constraint" in (
        truncated.evidence.detail
    )
    refused = judged["db.outside-grants | shopdb | storefront | references payments"].result
    assert (refused.outcome, refused.evidence.detail) == (
        "denied_authz",
        "has_table_privilege(current_user, ..., 'REFERENCES') is false",
    )
    for verb in ("truncate", "trigger"):
        cid = f"db.outside-grants | shopdb | storefront | {verb} payments"
        assert judged[cid].result.evidence.detail.endswith("(SQLSTATE 42501)"), cid


def test_a_pg_hba_that_trusts_everyone_fails_every_connection_probe(tmp_path: Path) -> None:
    async def scenario() -> dict[str, CaseResult]:
        spec = shop_copy(tmp_path, lambda _: None)
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            server = sandbox.datastores.servers["shopdb"]
            assert server.home is not None
            hba = server.home / "pg_hba.conf"
            permissive = "hostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n"
            hba.write_text(permissive + hba.read_text())  # first match wins
            await asyncio.to_thread(
                reload_and_confirm, server.admin_settings(), server.log_path, 10, "pg_hba.conf"
            )
            return await run_all(sandbox)

    judged = asyncio.run(scenario())
    as_storefront = "over-permission: allowed connected as storefront"
    assert failures(judged) == {
        "db.no-client-cert | shopdb | storefront | connect": as_storefront,
        "db.password | shopdb | storefront | connect": as_storefront,
        "db.sslmode-disable | shopdb | storefront | connect": as_storefront,
        "db.outside-grants | shopdb | storefront | connect | cn-mismatch": (
            "over-permission: allowed connected as orders"
        ),
        "db.effective-hba | shopdb | - | pg_hba.conf": (
            "over-permission: allowed a TCP client gets in without a client certificate: "
            "line 1: hostssl all all 127.0.0.1/255.255.255.255 trust: trust over TLS: anyone who "
            "can reach the port logs in as any user it names; line 2: host all all "
            "127.0.0.1/255.255.255.255 trust: trust over TCP without TLS (a host line admits "
            "plaintext)"
        ),
    }
    # A certificate that is presented is still verified, whatever pg_hba.conf says.
    assert judged["db.untrusted-ca | shopdb | storefront | connect"].ok


# -- the catalogs: privileges beyond the spec, the pg_hba.conf in force -------------------------


SEEDED_MISTAKES = """
GRANT SELECT ON payments TO storefront;                          -- an extra table
GRANT SELECT ON order_items TO PUBLIC;                           -- a grant to PUBLIC
ALTER ROLE orders CREATEROLE;                                    -- a role attribute
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO payments;  -- future tables
"""


@dataclass
class CatalogOnlyView:
    """Just what the catalog probes use of a view, over one `PostgresServer` (no services, no
    gateways: seconds instead of a whole sandbox). The catalogs are read by the real
    `DatastoreClient.catalog`, which needs nothing of the sandbox but its servers."""

    spec: Spec
    server: PostgresServer

    async def db_catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
        servers = SimpleNamespace(datastores=SimpleNamespace(servers={datastore: self.server}))
        return await DatastoreClient(servers).catalog(datastore, roles)  # type: ignore[arg-type]


def test_each_seeded_privilege_is_caught_by_its_roles_case(tmp_path: Path) -> None:
    spec = load_spec(shop_copy(tmp_path, lambda _: None, seed=SEEDED_MISTAKES))
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    probe = UndeclaredPrivilegeProbe()
    cases = list(probe.cases(Plan.of(spec)))

    async def run(view: CatalogOnlyView) -> list[Result]:
        return await asyncio.gather(*(probe.run(case, view) for case in cases))

    with PostgresServer(spec, "shopdb", ca, tmp_path / "run") as server:
        results = asyncio.run(run(CatalogOnlyView(spec, server)))
    judged = {c.id: CaseResult(c, r, judge(c, r)) for c, r in zip(cases, results, strict=True)}
    beyond = "over-permission: allowed beyond the spec: "
    assert failures(judged) == {
        "db.undeclared-privilege | shopdb | storefront | privileges": (
            f"{beyond}storefront: SELECT on table public.payments"
        ),
        "db.undeclared-privilege | shopdb | - | privileges | PUBLIC": (
            f"{beyond}PUBLIC: SELECT on table public.order_items"
        ),
        "db.undeclared-privilege | shopdb | orders | privileges": f"{beyond}orders: CREATEROLE",
        "db.undeclared-privilege | shopdb | payments | privileges": (
            f"{beyond}payments: SELECT on tables created by trustproof:admin in schema public "
            "(default privilege)"
        ),
    }
    assert len(judged) == 4  # every case failed, each naming only its own mistake


EVERY_KIND = """
GRANT pg_read_all_data TO storefront;                            -- a predefined role
GRANT UPDATE (name) ON products TO storefront;                   -- a column
GRANT SELECT ON products TO storefront WITH GRANT OPTION;        -- a grant option
CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
GRANT EXECUTE ON FUNCTION answer() TO payments;                  -- a function
ALTER ROLE payments PASSWORD 'not-shown-anywhere';               -- a password
CREATE TYPE mood AS ENUM ('ok');
GRANT USAGE ON TYPE mood TO orders;                              -- any other object
GRANT CREATE ON SCHEMA public TO PUBLIC;                         -- PUBLIC on the schema
GRANT TEMPORARY ON DATABASE shop TO PUBLIC;                      -- PUBLIC on the database
"""


def test_every_kind_of_catalog_entry_is_read_from_a_real_server(tmp_path: Path) -> None:
    spec = load_spec(shop_copy(tmp_path, lambda _: None, seed=EVERY_KIND))
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    with PostgresServer(spec, "shopdb", ca, tmp_path / "run") as server:
        view = CatalogOnlyView(spec, server)
        catalog = asyncio.run(view.db_catalog("shopdb", ["storefront", "orders", "payments"]))
    assert catalog.status == "read"
    found = {
        grantee: [h.describe() for h in undeclared(spec, "shopdb", grantee, catalog)]
        for grantee in ("storefront", "orders", "payments", "PUBLIC")
    }
    assert found == {
        "storefront": [
            "storefront: UPDATE on column public.products.name",
            "storefront: member of role pg_read_all_data",
            "storefront: SELECT WITH GRANT OPTION on table public.products",
        ],
        "orders": ["orders: PRIVILEGES on object type mood"],
        "payments": ["payments: EXECUTE on function answer()", "payments: has a password"],
        "PUBLIC": ["PUBLIC: TEMPORARY on database shop", "PUBLIC: CREATE on schema public"],
    }
    assert "not-shown-anywhere" not in repr(catalog)


TEAM_HBA = """\
# The team's pg_hba.conf: certificates for the workloads...
hostssl {{ database }} all {{ client_network }} cert
{% for role in roles %}# {{ role }} logs in with its certificate
{% endfor %}hostnossl all all 0.0.0.0/0 reject
"""
TEAM_CONF = "ssl_min_protocol_version = 'TLSv1.3'\nlog_disconnections = on\n"


def with_team_files(spec: dict[str, Any]) -> None:
    spec["datastores"]["shopdb"]["hba"] = "db/pg_hba.conf.j2"
    spec["datastores"]["shopdb"]["conf"] = "db/postgresql.conf.j2"


def run_team_shop(tmp_path: Path, hba: str, seed: str = "") -> dict[str, CaseResult]:
    files = {"db/pg_hba.conf.j2": hba, "db/postgresql.conf.j2": TEAM_CONF}
    spec = shop_copy(tmp_path, with_team_files, seed=seed, files=files)

    async def scenario() -> dict[str, CaseResult]:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            server = sandbox.datastores.servers["shopdb"]
            with psycopg.connect(server.admin_settings(), autocommit=True) as conn:
                row = conn.execute("SHOW ssl_min_protocol_version").fetchone()
            assert row == ("TLSv1.3",)  # the team's postgresql.conf is in force
            return await run_all(sandbox)

    return asyncio.run(scenario())


def test_the_teams_own_certificate_only_pg_hba_passes_every_case(tmp_path: Path) -> None:
    judged = run_team_shop(tmp_path, TEAM_HBA)
    assert failures(judged) == {}
    detail = judged["db.effective-hba | shopdb | - | pg_hba.conf"].result.evidence.detail
    assert "hostssl shop all 127.0.0.1/255.255.255.255 cert" in detail


def test_a_team_pg_hba_with_host_trust_is_caught(tmp_path: Path) -> None:
    trusting = TEAM_HBA.replace(
        "hostnossl all", "host all all {{ client_network }} trust\nhostnossl all"
    )
    judged = run_team_shop(tmp_path, trusting)
    effective = judged["db.effective-hba | shopdb | - | pg_hba.conf"]
    assert effective.verdict == "over-permission"
    assert "host all all 127.0.0.1/255.255.255.255 trust: trust over TCP without TLS" in (
        effective.result.evidence.detail
    )
    # The login probes run against the team's real configuration, and plaintext gets in.
    assert failures(judged)["db.sslmode-disable | shopdb | storefront | connect"] == (
        "over-permission: allowed connected as storefront"
    )


REWRITE_HBA = """
DO $$ BEGIN
  EXECUTE format('COPY (SELECT %L UNION ALL SELECT %L) TO %L',
    'local all all trust', 'host all all 127.0.0.1/32 md5', current_setting('hba_file'));
END $$;
SELECT pg_reload_conf();
"""


def test_a_superuser_seed_cannot_silently_weaken_authentication(tmp_path: Path) -> None:
    files = {"db/pg_hba.conf.j2": TEAM_HBA, "db/postgresql.conf.j2": TEAM_CONF}
    spec = load_spec(shop_copy(tmp_path, with_team_files, seed=REWRITE_HBA, files=files))
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    case = next(iter(EffectiveHbaProbe().cases(Plan.of(spec))))
    with PostgresServer(spec, "shopdb", ca, tmp_path / "run") as server:
        result = asyncio.run(EffectiveHbaProbe().run(case, CatalogOnlyView(spec, server)))
    assert judge(case, result) == "over-permission"
    assert result.evidence.detail.endswith(
        "line 2: host all all 127.0.0.1/255.255.255.255 md5: md5 over TCP without TLS "
        "(a host line admits plaintext)"
    )
