"""Two real PostgreSQL servers, both seeded through the scrubbing pipeline from the shop's sample;
the second then drifts (a column type, a missing index, a grant, changed rows) and the comparison
names each difference. Its twin: the two untouched servers compare equal. Plus the proof of
scrubbing over a real seeded database."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import psycopg
import pytest

from trustproof.clock import SystemClock
from trustproof.consistency.pgcompare import compare
from trustproof.consistency.pgsnapshot import read_snapshot
from trustproof.data.keyed import MaskingKey
from trustproof.data.pipeline import Scrubber
from trustproof.data.samples import Seeding, scrub_samples
from trustproof.datastores import PostgresServer
from trustproof.identity import CertificateAuthority
from trustproof.spec import load_spec

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
KEY = MaskingKey(b"integration-key-0123456789abcdef")


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


def test_each_drift_is_named(
    servers: tuple[PostgresServer, PostgresServer, Seeding, Scrubber],
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
