"""Samples in, same format out: CSV, JSON lines, COPY text, pg_dump; joins hold; the proof's
evidence finds originals and unproduced personal data; spec checks and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.data.errors import DataError
from trustproof.data.formats import copy_decode, copy_encode
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import Masks
from trustproof.data.pipeline import Scrubber
from trustproof.data.samples import run_key, scrub_samples
from trustproof.errors import SpecError
from trustproof.spec import load_spec
from trustproof.spec.data import DataRule

KEY = MaskingKey(b"unit-test-key-0123456789abcdef!!")
SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"
RULES = MappingProxyType(
    {
        "customers.email": DataRule("email"),
        "customers.name": DataRule("name"),
        "customers.since": DataRule("date-shift", entity="customers.id"),
        "orders.email": DataRule("email"),
        "orders.placed": DataRule("date-shift", entity="customers.id", by="customer_id"),
    }
)
CSV = "id,email,name,since,note\n1,jane@example.com,Jane Doe,2020-01-02,call +44 20 7946 0958\n"
DUMP = """--
-- PostgreSQL database dump
SET statement_timeout = 0;
CREATE TABLE public.orders (email text, customer_id integer, placed date);
COPY public.orders (email, customer_id, placed) FROM stdin;
jane@example.com\t1\t2020-01-02
\\N\t2\t2021-05-05
\\.

ALTER TABLE ONLY public.orders ADD CONSTRAINT x PRIMARY KEY (email);
"""


def test_csv_masks_rules_and_free_text_and_joins_hold_with_a_dump() -> None:
    scrubber = Scrubber(RULES, KEY)
    out = scrubber.scrub_text(CSV, "csv", table="customers", source="c.csv").splitlines()
    assert out[0] == "id,email,name,since,note"
    row = out[1].split(",")
    assert row[0] == "1"
    assert row[1] != "jane@example.com"
    assert row[2] != "Jane Doe"
    assert "7946" not in row[4]
    assert row[4].startswith("call +44 ")
    dump = scrubber.scrub_text(DUMP, "pg-dump", table=None, source="d.sql")
    lines = dump.splitlines()
    assert lines[:5] == DUMP.splitlines()[:5]
    assert lines[-1] == DUMP.splitlines()[-1]
    email, customer, placed = lines[5].split("\t")
    assert email == row[1]
    assert customer == "1"
    assert placed == row[3]  # the same entity's dates move together, across tables
    assert lines[6].startswith("\\N\t2\t")


def test_jsonl_keeps_types_and_copy_round_trips() -> None:
    text = (
        '{"email": "jane@example.com", "customer_id": 1, "vip": true, "note": null, '
        '"placed": "2020-01-02"}\n'
    )
    out = json.loads(Scrubber(RULES, KEY).scrub_text(text, "jsonl", table="orders", source="o"))
    assert out["customer_id"] == 1
    assert out["vip"] is True
    assert out["note"] is None
    assert out["email"].endswith(".com")
    assert out["email"] != "jane@example.com"
    row = ["a\tb", None, "back\\slash\nnew", ""]
    assert copy_decode(copy_encode(row)) == row


def test_bad_samples_say_where() -> None:
    scrubber = Scrubber(RULES, KEY)
    with pytest.raises(DataError, match=r"c.csv:2: 2 fields, the header has 5"):
        scrubber.scrub_text(
            CSV.splitlines()[0] + "\n1,x\n", "csv", table="customers", source="c.csv"
        )
    with pytest.raises(DataError, match="INSERT statements"):
        scrubber.scrub_text("INSERT INTO t VALUES (1);\n", "pg-dump", table=None, source="d")
    with pytest.raises(DataError, match=r"names column customers.name, which the sample"):
        scrubber.scrub_text("id,email\n1,a@b.org\n", "csv", table="customers", source="c")
    with pytest.raises(DataError, match="no column 'customer_id'"):
        scrubber.scrub_text("email,placed\na@b.org,2020-01-01\n", "csv", table="orders", source="o")


def test_shop_evidence_finds_originals_and_foreign_personal_data_only() -> None:
    spec = load_spec(SHOP)
    seeding = scrub_samples(spec, KEY)
    tables = {t.table: t for t in seeding.tables["shopdb"]}
    seeded = "\n".join(str(v) for t in tables.values() for row in t.rows for v in row)
    evidence = seeding.evidence
    assert evidence.scan(seeded, "shopdb", detectors=True) == []
    assert "marguerite.okafor@gmail.com" not in seeded
    assert "Marguerite Okafor" not in seeded
    emails = {row[0] for row in tables["newsletter"].rows}
    assert emails <= {row[1] for row in tables["customers"].rows}  # the foreign key holds
    leak = evidence.scan(
        "log: user Marguerite.Okafor@gmail.com paid", "logs/x.log:3", detectors=False
    )
    assert [f.what for f in leak] == ["an original value of customers.email"]
    assert "okafor" not in leak[0].describe().lower()
    inside = evidence.scan("GET /x?user=marguerite.okafor@gmail.com&n=1", "log:1", detectors=False)
    assert [f.what for f in inside] == ["an original value of customers.email"]
    address = evidence.scan('ship to "14 Larkspur Road, Leeds LS6 2AB".', "log:2", detectors=False)
    assert [f.what for f in address] == ["an original value of customers.address"]
    foreign = evidence.scan("contact bob@realmail.net", "shopdb.orders.customer", detectors=True)
    assert [f.what for f in foreign] == ["an email address (detector)"]
    assert "realmail" not in foreign[0].describe()


def test_spec_checks_of_data_and_consistency(tmp_path: Path) -> None:
    text = SHOP.read_text().replace("datastore: shopdb, table: newsletter", "datastore: nodb")
    text = text.replace("entity: customers.id, by: customer_id", "entity: x")
    text = text.replace("file: db/customers.csv", "file: ../../etc/passwd")
    text += (
        "consistency:\n  environments:\n    - {name: a, datastore: shopdb, dsn_env: X}\n"
        "    - {name: b, dsn: 'postgresql://u:pw@127.0.0.1/db'}\n"
        "    - {name: c, dsn: 'garbage'}\n"
    )
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(text)
    for name in ("db", "policies", "services"):
        (tmp_path / name).symlink_to(SHOP.parent / name)
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    shown = caught.value.render()
    for message in (
        "unknown datastore 'nodb'",
        "needs `table:`",
        "date-shift needs entity",
        "3 environments given",
        "the connection string carries a password",
        "not a libpq connection string",
        "gives datastore, dsn_env",
        "data sample '../../etc/passwd' is outside the spec's directory",
    ):
        assert message in shown


def test_cli_scrubs_a_file_and_refuses_without_key(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text((SHOP.parent / "db" / "customers.csv").read_text())
    target = tmp_path / "out.csv"
    runner = CliRunner()
    args = ["data", "scrub", str(source), str(target), "--rules", str(SHOP)]
    refused = runner.invoke(cli, args, env={"SHOP_DATA_KEY": ""})
    assert refused.exit_code == 2
    assert "SHOP_DATA_KEY is not set" in refused.output
    key = "cli-test-key-0123456789abcdefgh"
    ok = runner.invoke(cli, args, env={"SHOP_DATA_KEY": key})
    assert ok.exit_code == 0, ok.output
    out = target.read_text()
    assert "gmail.com" not in out
    assert "Okafor" not in out
    assert key not in ok.output
    assert out.splitlines()[0] == source.read_text().splitlines()[0]
    again = tmp_path / "again.csv"
    runner.invoke(cli, [*args[:3], str(again), *args[4:]], env={"SHOP_DATA_KEY": key})
    assert again.read_text() == out


def test_a_run_without_the_key_masks_with_a_random_one_and_says_so() -> None:
    spec = load_spec(SHOP)
    key, notice = run_key(spec.data, {})
    other, _ = run_key(spec.data, {})
    assert (
        notice
        == "data: SHOP_DATA_KEY is not set; test data is masked with a random key for this run"
    )
    assert Masks(key).email("a@b.org") != Masks(other).email("a@b.org")
    given, quiet = run_key(spec.data, {"SHOP_DATA_KEY": "k" * 32})
    assert quiet == ""
    assert Masks(given).email("a@b.org") == Masks(MaskingKey(b"k" * 32)).email("a@b.org")
