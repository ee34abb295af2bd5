"""The spec's ``data:`` and ``consistency:`` sections: production-shaped test data (samples,
scrubbed by per-column rules, seeded) and the comparison of two environments' PostgreSQL. Part
of the typed model (`trustproof.spec.model.Spec` holds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from trustproof.spec.fields import doc, empty
from trustproof.spec.values import EnvName, Name, RelPath, TableName

DataKind = Literal[
    "email", "name", "address", "phone", "card", "iban", "date-shift", "redact", "keep", "hash"
]
SampleFormat = Literal["csv", "jsonl", "pg-dump", "copy"]
ConsistencyCheck = Literal["schema", "grants", "row-counts", "checksums"]


@dataclass(frozen=True)
class DataRule:
    """How one column is masked (deterministic under the key: equal values mask equally)."""

    kind: DataKind = doc(
        "email, phone, card (Luhn-valid), iban (mod-97-valid): same shape, characters replaced; "
        "name, address: realistic values (Faker seeded by the keyed hash); date-shift: dates "
        "moved by a per-entity offset; redact: replaced by `text`; hash: keyed hex digest; keep: "
        "unchanged (columns without a rule have detected personal data replaced)."
    )
    part: Literal["full", "first", "last", "street", "city", "postcode"] = doc(
        "name: full, first or last; address: full, street, city or postcode.", default="full"
    )
    entity: str = doc(
        "date-shift: the entity whose dates move together, as table.column (e.g. customers.id).",
        default="",
    )
    by: str = doc(
        "date-shift: the column of this row holding the entity's key (default: the entity's "
        "column name).",
        default="",
    )
    days: int = doc("date-shift: the largest shift, in days either way.", default=365)
    text: str = doc("redact: the replacement text.", default="REDACTED")
    length: int = doc("hash: hex characters kept (8-64).", default=16)


@dataclass(frozen=True)
class DataSample:
    """A production-format sample, scrubbed by the rules and seeded after the schema."""

    datastore: Name = doc("The datastore it is seeded into.")
    file: RelPath = doc("The sample file, relative to the spec file.")
    format: SampleFormat = doc(
        "csv (a header row; an empty field is NULL), jsonl (one object per line), pg-dump (a "
        "pg_dump plain file: its COPY blocks), copy (PostgreSQL COPY text data).",
    )
    table: TableName | None = doc(
        "The table (csv, jsonl, copy; a pg-dump names its own).", default=None
    )
    columns: tuple[str, ...] = doc(
        "copy: the column names, in order (a COPY file has no header).", default=()
    )


@dataclass(frozen=True)
class DataSettings:
    """Production-shaped test data: samples, scrubbed by per-column rules, seeded."""

    key_env: EnvName | None = doc(
        "Environment variable holding the masking key (never written in the spec). Unset at run "
        "time: a random key for that run (masked values then differ between runs).",
        default=None,
    )
    samples: tuple[DataSample, ...] = doc("Samples seeded after the schema.", default=())
    rules: Mapping[str, DataRule] = doc(
        "'table.column' -> how it is masked.", default_factory=empty
    )


@dataclass(frozen=True)
class ConsistencyEnvironment:
    name: Name = doc("What reports call this environment.")
    datastore: Name | None = doc("A datastore of this sandbox.", default=None)
    dsn_env: EnvName | None = doc(
        "Environment variable holding a libpq connection string of another environment.",
        default=None,
    )
    dsn: str = doc("A libpq connection string without a password (prefer dsn_env).", default="")


@dataclass(frozen=True)
class ConsistencySettings:
    """Two environments' PostgreSQL compared: schema, grants, row counts, checksums."""

    environments: tuple[ConsistencyEnvironment, ...] = doc(
        "Exactly two environments: each a datastore of the sandbox or a connection string."
    )
    compare: tuple[ConsistencyCheck, ...] = doc(
        "What is compared.", default=("schema", "grants", "row-counts", "checksums")
    )
    database: str = doc(
        "With a connection string and no dbname in it: the database to read.", default=""
    )
