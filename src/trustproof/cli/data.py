"""`trustproof data scrub IN OUT --rules SPEC`: a production-format sample scrubbed by the spec's
`data.rules`, written in the same format (CSV, JSON lines, COPY text, pg_dump plain file).

The masking key comes from the environment variable `--key-env` names (default: the spec's
`data.key_env`); it is required here — a file scrubbed under a random key could not be reproduced
nor joined with another one scrubbed the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import get_args

import click

from trustproof.cli.base import err, friendly
from trustproof.data.errors import DataError
from trustproof.data.keyed import MaskingKey
from trustproof.data.pipeline import Scrubber
from trustproof.spec.data import SampleFormat
from trustproof.spec.load import load_spec

FORMATS: tuple[str, ...] = get_args(SampleFormat)
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".sql": "pg-dump",
            ".dump": "pg-dump", ".copy": "copy", ".tsv": "copy"}  # fmt: skip


def guess_format(path: Path) -> SampleFormat:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {path.name} from its name",
            f"give --format ({', '.join(FORMATS)})",
        )
    return fmt  # type: ignore[return-value]


@click.group()
def data() -> None:
    """Production-shaped test data: scrub samples with the spec's rules."""


@data.command("scrub")
@click.argument("source", metavar="IN", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("target", metavar="OUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("trustproof.yaml"),
    show_default=True,
    help="The spec whose data.rules apply.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from IN's suffix.")
@click.option(
    "--table", help="The table the rows belong to (csv, jsonl, copy; default: IN's stem)."
)
@click.option("--columns", help="copy: the column names, comma-separated.")
@click.option("--key-env", help="Variable holding the masking key (default: data.key_env).")
@friendly
def scrub_command(  # noqa: PLR0917 (click passes each option)
    source: Path,
    target: Path,
    rules_file: Path,
    fmt: str | None,
    table: str | None,
    columns: str | None,
    key_env: str | None,
) -> None:
    """Scrub IN into OUT (same format); every column a rule names is masked, and personal data
    the detectors find in the other text columns is replaced."""
    spec = load_spec(rules_file, policies=False)
    name = key_env or (spec.data.key_env if spec.data else None)
    if not name:
        raise DataError(
            "no masking key: the spec has no data.key_env and --key-env was not given",
            "export a variable with a long random value and name it with --key-env",
        )
    key = MaskingKey.from_env(name)
    chosen: SampleFormat = fmt if fmt is not None else guess_format(source)  # type: ignore[assignment]
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"could not read {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{source} is not UTF-8 (byte {exc.start})", "save it as UTF-8") from None
    rules = spec.data.rules if spec.data else {}
    scrubbed = Scrubber(rules, key).scrub_text(
        text,
        chosen,
        table=table or (None if chosen == "pg-dump" else source.stem),
        columns=tuple(c.strip() for c in columns.split(",")) if columns else (),
        source=source.name,
    )
    _write(target, scrubbed)
    err.print(f"scrubbed {source} -> {target} ({chosen}, key {name})", markup=False)


def _write(target: Path, text: str) -> None:
    """All or nothing: a temporary file in OUT's folder, renamed over OUT."""
    folder = target.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise DataError(f"could not write {target}: {exc.strerror}") from None


COMMANDS = (data,)
