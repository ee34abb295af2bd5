"""Two real PostgreSQL servers, both seeded through the scrubbing pipeline from the shop's sample;
the second then drifts (a column type, a missing index, a grant, changed rows) and the comparison
names each difference. Its twin: the two untouched servers compare equal. Plus the proof of
scrubbing over a real seeded database."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from trustproof.audit.servicelog import ServiceLog, ServiceLogSink, read_service_log
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.clock import SystemClock
from trustproof.consistency import DATA_SCENARIOS, SCENARIOS
from trustproof.consistency.pgcompare import compare
from trustproof.consistency.pgsnapshot import read_snapshot
from trustproof.data.formats import copy_decode
from trustproof.data.keyed import MaskingKey
from trustproof.data.pipeline import Scrubber, parse_sample
from trustproof.data.samples import Seeding, scrub_samples
from trustproof.datastores import PostgresServer
from trustproof.datastores.pgseed import seed_tables
from trustproof.identity import CertificateAuthority
from trustproof.spec import Spec, load_spec
from trustproof.spec.data import ConsistencyEnvironment, ConsistencySettings

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
KEY = MaskingKey(b"integration-key-0123456789abcdef")


class State:
    spec: Spec


@dataclasses.dataclass
class FakeSandbox:
    """What the scenarios read of a live sandbox: its datastores (servers, seeding), its run,
    its encrypted service logs (`Sandbox.service_log`)."""

    datastores: object
    run: object

    def service_log(self, path: Path) -> ServiceLog:
        return read_service_log(path, KEK)


KEK = bytes(range(32))


def service_log(run: Path, name: str, text: str) -> None:
    (run / "logs").mkdir(exist_ok=True)
    sink = ServiceLogSink(run / "logs" / f"{name}.log.tpa", KEK)
    sink.write(text)
    sink.close()


@dataclasses.dataclass
class View:
    spec: Spec
    sandbox: FakeSandbox


def scenario_env(
    servers: tuple[PostgresServer, ...], seeding: Seeding, run: Path, target_env: str = ""
) -> ScenarioEnv:
    """A view on `servers`; the target environment is datastore shopcopy, or with `target_env`
    the connection string in that variable (as another environment is given)."""
    target = (
        ConsistencyEnvironment("target", dsn_env=target_env)  # type: ignore[arg-type]
        if target_env
        else ConsistencyEnvironment("target", datastore="shopcopy")  # type: ignore[arg-type]
    )
    spec = dataclasses.replace(
        State.spec,
        consistency=ConsistencySettings(
            (ConsistencyEnvironment("primary", datastore="shopdb"), target)  # type: ignore[arg-type]
        ),
    )
    stores = dataclasses.make_dataclass("Stores", ["servers", "seeding"])(
        {s.name: s for s in servers}, seeding
    )
    sandbox = FakeSandbox(stores, dataclasses.make_dataclass("Run", ["path"])(run))
    return ScenarioEnv(View(spec, sandbox))  # type: ignore[arg-type]


def run_scenario(sid: str, env: ScenarioEnv) -> ScenarioResult:
    scenario = dict((*SCENARIOS, *DATA_SCENARIOS))[sid]
    return asyncio.run(scenario(env, Recorder(sid)))


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PostgresServer, PostgresServer, Seeding, Scrubber]]:
    spec = load_spec(SHOP)
    store = spec.datastores["shopdb"]
    spec = dataclasses.replace(
        spec,
        datastores=MappingProxyType(
            {"shopdb": store, "shopcopy": dataclasses.replace(store, database=None)}
        ),
    )
    assert spec.data is not None
    seeding = scrub_samples(spec, KEY)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    root = tmp_path_factory.mktemp("consistency")
    made = [
        PostgresServer(spec, name, ca, root / name, samples=seeding.tables["shopdb"])
        for name in ("shopdb", "shopcopy")
    ]
    State.spec = spec
    try:
        for server in made:
            server.start()
            with psycopg.connect(server.admin_settings(), autocommit=True) as conn:
                conn.execute("UPDATE orders SET created_at = '2024-01-01'")  # seed.sql's now()
        yield made[0], made[1], seeding, Scrubber(spec.data.rules, KEY)
    finally:
        for server in made:
            server.stop()


def test_seeded_data_is_scrubbed_and_joins_hold(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber],
) -> None:
    primary, _, seeding, _ = servers
    with psycopg.connect(primary.admin_settings(), autocommit=True) as conn:
        rows = conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
        joined = conn.execute(
            "SELECT count(*) FROM newsletter n JOIN customers c USING (email)"
        ).fetchone()
        text = "\n".join(str(v) for row in rows for v in row)
    assert len(rows) == 6
    assert joined == (3,)
    assert "Okafor" not in text
    assert "gmail.com" not in text
    assert "4539 1488" not in text
    assert seeding.evidence.scan(text, "shopdb.customers", detectors=True) == []
    planted = "note for Marguerite Okafor: card 4539 1488 0343 6467"
    findings = seeding.evidence.scan(planted, "shopdb.customers.notes", detectors=True)
    assert {f.what for f in findings} == {
        "an original value of customers.full_name",
        "an original value of customers.card_number",
    }


def test_identical_environments_compare_equal(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber],
) -> None:
    primary, copy, _, scrubber = servers
    a = read_snapshot("primary", primary.admin_settings(), scrubber)
    b = read_snapshot("target", copy.admin_settings(), scrubber)
    diff = compare(a, b)
    assert (diff.schema, diff.grants, diff.row_counts, diff.checksums) == ([], [], [], [])
    assert a.counts["public.customers"] == 6


def test_scan_and_consistency_scenarios_pass_on_clean_identical_environments(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber], tmp_path: Path
) -> None:
    primary, copy, seeding, _ = servers
    service_log(tmp_path, "orders", "GET /orders 200\nplaced order 1\n")
    env = scenario_env((primary, copy), seeding, tmp_path)
    scan = run_scenario("data.unscrubbed-value", env)
    assert scan.verdict == "pass", scan.summary
    assert scan.figures["values.shopdb"] > 50
    for sid in (
        "consistency.schema",
        "consistency.grants",
        "consistency.row-counts",
        "consistency.checksums",
    ):
        result = run_scenario(sid, env)
        assert result.verdict == "pass", (sid, result.summary)


def test_scan_fails_naming_where_an_original_or_foreign_datum_is(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber], tmp_path: Path
) -> None:
    primary, copy, seeding, _ = servers
    service_log(tmp_path, "orders", "ok\nnew customer t.lindqvist@outlook.com\n")
    with psycopg.connect(copy.admin_settings(), autocommit=True) as conn:
        conn.execute("UPDATE orders SET customer = 'call +46 70 999 12 34' WHERE id = 1")
    try:
        result = run_scenario(
            "data.unscrubbed-value", scenario_env((primary, copy), seeding, tmp_path)
        )
    finally:
        with psycopg.connect(copy.admin_settings(), autocommit=True) as conn:
            conn.execute("UPDATE orders SET customer = 'alice' WHERE id = 1")
    assert result.verdict == "fail"
    # found in the encrypted service log, decrypted in memory
    assert "orders.log.tpa:2: an original value of customers.email" in "\n".join(result.evidence)
    assert (
        "datastore shopcopy, public.orders.customer, row 1: a phone number (detector)"
        in "\n".join(result.evidence)
    )
    assert "lindqvist" not in result.summary.lower()
    assert "999" not in result.summary


def test_each_drift_is_named(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, copy, _, scrubber = servers
    with psycopg.connect(copy.admin_settings(), autocommit=True) as conn:
        conn.execute("ALTER TABLE customers ALTER COLUMN phone TYPE varchar(40)")
        conn.execute("ALTER TABLE customers DROP CONSTRAINT customers_email_key CASCADE")
        conn.execute("CREATE INDEX customers_name ON customers (full_name)")
        conn.execute("GRANT SELECT ON customers TO storefront")
        conn.execute("UPDATE customers SET notes = 'changed' WHERE id = 2")
        conn.execute("DELETE FROM order_items")
    a = read_snapshot("primary", primary.admin_settings(), scrubber)
    b = read_snapshot("target", copy.admin_settings(), scrubber)
    diff = compare(a, b)
    schema = "\n".join(diff.schema)
    assert "column public.customers.phone: text in primary, character varying(40) in target" in (
        schema
    )
    assert "index customers_email_key on public.customers: in primary, missing in target" in schema
    assert "index customers_name on public.customers: in target, missing in primary" in schema
    assert "constraint customers_email_key on public.customers: in primary, missing in target" in (
        schema
    )
    assert diff.grants == [
        "grant SELECT on public.customers to storefront: in target, missing in primary"
    ]
    assert diff.row_counts == ["rows in public.order_items: 1 in primary, 0 in target"]
    changed = [d for d in diff.checksums if d.startswith("checksum of public.customers")]
    assert len(changed) == 1
    assert "1 rows only in primary, 1 only in target" in changed[0]
    assert "changed" in changed[0]
    assert "Lindqvist" not in changed[0]
    monkeypatch.setenv("TARGET_DSN", copy.admin_settings())  # another environment's DSN
    env = scenario_env((primary,), servers[2], Path("/nonexistent"), target_env="TARGET_DSN")
    for sid, expected in (
        ("consistency.schema", "character varying(40)"),
        ("consistency.grants", "grant SELECT on public.customers to storefront"),
        ("consistency.row-counts", "rows in public.order_items: 1 in primary, 0 in target"),
        ("consistency.checksums", "checksum of public.customers"),
    ):
        result = run_scenario(sid, env)
        assert result.verdict == "fail", sid
        assert expected in "\n".join(result.evidence), sid
    monkeypatch.delenv("TARGET_DSN")
    unset = run_scenario("consistency.schema", env)
    assert unset.verdict == "error"
    assert unset.summary == "environment 'target': the variable TARGET_DSN is not set"


def test_a_real_pg_dump_is_scrubbed_like_the_sample_and_the_rest_passes_through(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber],
) -> None:
    """The unscrubbed sample loaded into a scratch database and dumped by the real pg_dump:
    scrubbing the dump gives exactly the rows the pipeline seeded from the CSV (same key, same
    masks), no original survives, and every line outside the COPY data is unchanged."""
    primary, _, seeding, scrubber = servers
    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, "pg_dump is installed with PostgreSQL (scripts/bootstrap.sh)"
    raw = parse_sample(
        (SHOP.parent / "db" / "customers.csv").read_text(),
        "csv",
        table="customers",
        source="customers.csv",
    )
    with psycopg.connect(primary.admin_settings("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE rawdump")
    with psycopg.connect(primary.admin_settings("rawdump"), autocommit=True) as conn:
        conn.execute((SHOP.parent / "db" / "schema.sql").read_text())  # type: ignore[arg-type]
        seed_tables(conn, raw, "rawdump")
    dsn = conninfo_to_dict(primary.admin_settings("rawdump"))
    dump = subprocess.run(
        [pg_dump, "--no-owner", "--table=customers", "-h", str(dsn["host"]), "-p",
         str(dsn["port"]), "-U", str(dsn["user"]), "rawdump"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "Marguerite Okafor" in dump
    out = scrubber.scrub_text(dump, "pg-dump", table=None, source="rawdump.sql")
    assert seeding.evidence.scan(out, "rawdump.sql", detectors=False) == []
    before, after = dump.splitlines(), out.splitlines()
    start = next(i for i, line in enumerate(before) if line.startswith("COPY public.customers"))
    end = before.index("\\.", start)
    assert before[: start + 1] == after[: start + 1]
    assert before[end:] == after[end:]
    seeded = {t.table: t for t in seeding.tables["shopdb"]}["customers"]
    assert [copy_decode(line) for line in after[start + 1 : end]] == seeded.rows
