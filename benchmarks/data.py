"""Test data at scale: 100,000 production-shaped rows (emails, names, phones, addresses, cards,
IBANs, dates, free-text notes with personal data in them) scrubbed and seeded into a real
PostgreSQL, against a reference in the same run on the same server:

* scrub      parse the CSV sample and mask every row (`Scrubber`: rules + detectors)
* seed       COPY the scrubbed rows in (`pgseed.seed_tables`, what the sandbox does)
* reference  COPY the same number of unscrubbed rows in the same way (no masking)

Run: `.venv/bin/python benchmarks/data.py [--rows N] [--json FILE]`. The rows are generated here
(fake, deterministic); the server is the shop's datastore, started unprivileged and stopped at the
end; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType

import psycopg

from trustproof.clock import SystemClock
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import luhn_check_digit
from trustproof.data.pipeline import ScrubbedTable, Scrubber, parse_sample
from trustproof.datastores import PostgresServer
from trustproof.datastores.pgseed import seed_tables
from trustproof.identity import CertificateAuthority
from trustproof.spec import load_spec
from trustproof.spec.data import DataRule

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop" / "trustproof.yaml"
COLUMNS = ("id", "email", "full_name", "phone", "address", "card_number", "iban", "birth_date",
           "signed_up_at", "notes")  # fmt: skip
RULES = MappingProxyType(
    {
        "bench.id": DataRule("keep"),
        "bench.email": DataRule("email"),
        "bench.full_name": DataRule("name"),
        "bench.phone": DataRule("phone"),
        "bench.address": DataRule("address"),
        "bench.card_number": DataRule("card"),
        "bench.iban": DataRule("iban"),
        "bench.birth_date": DataRule("date-shift", entity="bench.id"),
        "bench.signed_up_at": DataRule("date-shift", entity="bench.id"),
    }
)
TABLE = """CREATE TABLE IF NOT EXISTS {name} (id integer PRIMARY KEY, email text, full_name text,
    phone text, address text, card_number text, iban text, birth_date date,
    signed_up_at timestamptz, notes text)"""
FIRST = ("Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Tim", "Joan")
LAST = ("Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen")


def sample_csv(rows: int, seed: int = 7) -> str:
    rng = random.Random(seed)  # noqa: S311 (fake data, reproducible)
    lines = [",".join(COLUMNS)]
    for i in range(1, rows + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
        card = body + luhn_check_digit(body)
        bban = f"{rng.randrange(10**8):08d}{rng.randrange(10**10):010d}"
        check = 98 - int(bban + "1314" + "00") % 97
        phone = f"+44 7700 {rng.randrange(10**6):06d}"
        note = f"call {phone} after 6pm" if i % 3 == 0 else "no notes"
        lines.append(
            f"{i},{first.lower()}.{last.lower()}{i}@example.com,{first} {last},{phone},"
            f'"{rng.randrange(1, 999)} High St, Leeds",{card[:4]} {card[4:8]} {card[8:12]} '
            f"{card[12:]},DE{check:02d}{bban},19{rng.randrange(50, 99)}-0{rng.randrange(1, 9)}-1"
            f"{rng.randrange(0, 9)},2021-0{rng.randrange(1, 9)}-12 10:00:00+00,{note}"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    rows = max(1, min(args.rows, 1_000_000))
    text = sample_csv(rows)
    key = MaskingKey(b"benchmark-key-0123456789abcdefgh")

    started = time.perf_counter()
    scrubber = Scrubber(RULES, key)
    scrubbed = scrubber.scrub_sample(text, "csv", table="bench", source="bench.csv")[0]
    scrub_s = time.perf_counter() - started
    plain = parse_sample(text, "csv", table="bench", source="bench.csv")[0]

    spec = load_spec(SHOP)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    with tempfile.TemporaryDirectory() as tmp:
        server = PostgresServer(spec, "shopdb", ca, Path(tmp) / "run")
        try:
            server.start()
            with psycopg.connect(server.admin_settings(), autocommit=True) as conn:
                for name in ("bench", "reference"):
                    conn.execute(TABLE.format(name=name))  # type: ignore[arg-type]
                started = time.perf_counter()
                seed_tables(conn, [scrubbed], "shop")
                seed_s = time.perf_counter() - started
                started = time.perf_counter()
                seed_tables(conn, [ScrubbedTable("reference", plain.columns, plain.rows)], "shop")
                reference_s = time.perf_counter() - started
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM bench), (SELECT count(*) FROM reference)"
                ).fetchone()
        finally:
            server.stop()
    if counts != (rows, rows):
        print(f"seeded row counts {counts}, expected {rows} each", file=sys.stderr)
        return 1
    figures = {
        "rows": rows,
        "scrub_s": round(scrub_s, 3),
        "seed_s": round(seed_s, 3),
        "scrub_and_seed_s": round(scrub_s + seed_s, 3),
        "reference_copy_unscrubbed_s": round(reference_s, 3),
        "scrub_rows_per_s": round(rows / scrub_s),
    }
    print(f"{rows:,} rows, 10 columns (9 masked by rules, notes by the detectors):")
    print(f"  scrub (parse + mask)                {scrub_s:8.2f} s  ({rows / scrub_s:,.0f} rows/s)")
    print(f"  seed scrubbed rows (COPY)           {seed_s:8.2f} s")
    print(f"  scrub + seed                        {scrub_s + seed_s:8.2f} s")
    print(f"  reference: COPY of unscrubbed rows  {reference_s:8.2f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
