"""The spec's samples, read from disk and scrubbed: what the sandbox seeds, and the evidence the
proof of scrubbing (`data.unscrubbed-value`) checks the run against.

    key, notice = run_key(spec.data)                # the spec's key, or a random one for this run
    seeding = scrub_samples(spec, key)              # per datastore: tables to seed + evidence
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from trustproof.data.errors import DataError
from trustproof.data.keyed import MaskingKey
from trustproof.data.pipeline import ScrubbedTable, Scrubber, parse_sample
from trustproof.data.proof import Evidence
from trustproof.spec.data import DataSample, DataSettings
from trustproof.spec.model import Spec

MAX_SAMPLE_BYTES = 512 * 1024 * 1024


def run_key(
    settings: DataSettings | None, environ: dict[str, str] | None = None
) -> tuple[MaskingKey, str]:
    """The masking key of a run and a one-line notice ('' when the spec's variable was set).

    Without `key_env`, or with it unset, a random key is made for this run only: the data is
    masked all the same (and more strongly: nobody knows the key), but masked values differ from
    one run to the next."""
    env = dict(os.environ) if environ is None else environ
    name = settings.key_env if settings is not None else None
    if name and env.get(name):
        return MaskingKey.from_env(name, env), ""
    why = f"{name} is not set" if name else "data.key_env is not given"
    return (
        MaskingKey(secrets.token_bytes(32)),
        f"data: {why}; test data is masked with a random key for this run",
    )


def read_sample(spec: Spec, sample: DataSample) -> str:
    path = spec.resolve(sample.file)
    try:
        if path.stat().st_size > MAX_SAMPLE_BYTES:
            raise DataError(
                f"data sample {sample.file} is larger than {MAX_SAMPLE_BYTES // 2**20} MiB",
                "a test-data sample is a small extract of production",
            )
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(
            f"could not read data sample {sample.file} ({path}): {exc.strerror}",
            "the path is relative to the spec file",
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"data sample {sample.file} is not UTF-8 (byte {exc.start})", "save it as UTF-8"
        ) from None


@dataclass
class Seeding:
    """Scrubbed tables per datastore, and the evidence for the proof of scrubbing."""

    tables: dict[str, list[ScrubbedTable]] = field(default_factory=dict)
    evidence: Evidence = field(default_factory=Evidence)
    notice: str = ""


def scrub_samples(spec: Spec, key: MaskingKey, notice: str = "") -> Seeding:
    seeding = Seeding(notice=notice)
    if spec.data is None:
        return seeding
    scrubber = Scrubber(spec.data.rules, key)
    for sample in spec.data.samples:
        text = read_sample(spec, sample)
        raw = parse_sample(
            text, sample.format, table=sample.table, columns=sample.columns, source=sample.file
        )
        for table in raw:
            plan = scrubber.plan(table.table, table.columns)
            rows = scrubber.scrub_rows(table.table, table.columns, table.rows)
            scrubbed = ScrubbedTable(table.table, table.columns, rows)
            seeding.tables.setdefault(sample.datastore, []).append(scrubbed)
            seeding.evidence.add(table, scrubbed, plan)
    return seeding


def seed_data(spec: Spec) -> Seeding:
    """The run's key (see `run_key`), and every sample scrubbed under it."""
    key, notice = run_key(spec.data)
    return scrub_samples(spec, key, notice)


def sample_path(spec: Spec, sample: DataSample) -> Path:
    return spec.resolve(sample.file)
