"""Scrubbing a pg_dump plain-format file: every ``COPY table (columns) FROM stdin;`` block's rows
are scrubbed, everything else passes through unchanged.

A dump that carries data any other way (``INSERT`` statements from ``pg_dump --inserts``) is
refused: those rows would pass through unscrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from trustproof.data.errors import DataError
from trustproof.data.formats import Value, copy_decode, copy_encode

COPY_HEAD = re.compile(
    r'^COPY\s+(?P<table>(?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)\s*'
    r"(?:\((?P<columns>[^)]*)\))?\s+FROM\s+stdin;\s*$",
    re.IGNORECASE,
)
INSERT = re.compile(r"^\s*INSERT\s+INTO\s", re.IGNORECASE)

RowScrubber = Callable[[Sequence[Value]], list[Value]]


@dataclass(frozen=True)
class CopyBlock:
    table: str  # unquoted, schema-qualified as the dump wrote it (public.customers)
    columns: tuple[str, ...]


def _ident(text: str) -> str:
    text = text.strip()
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def parse_head(line: str) -> CopyBlock | None:
    m = COPY_HEAD.match(line)
    if m is None:
        return None
    table = ".".join(_ident(part) for part in re.findall(r'"[^"]+"|[\w$]+', m["table"]))
    columns = tuple(_ident(c) for c in (m["columns"] or "").split(",") if c.strip())
    return CopyBlock(table, columns)


def scrub_dump(
    lines: Iterable[str], scrubber_for: Callable[[CopyBlock], RowScrubber], source: str
) -> Iterator[str]:
    """The dump's lines (with their newlines) with the rows of every COPY block scrubbed."""
    scrub: RowScrubber | None = None
    block: CopyBlock | None = None
    for number, line in enumerate(lines, 1):
        if scrub is None:
            head = parse_head(line.rstrip("\n"))
            if head is not None:
                if not head.columns:
                    raise DataError(
                        f"{source}:{number}: COPY {head.table} lists no columns",
                        "pg_dump writes them; a hand-written COPY must name its columns",
                    )
                block, scrub = head, scrubber_for(head)
            elif INSERT.match(line):
                raise DataError(
                    f"{source}:{number}: the dump holds data as INSERT statements, which are "
                    "not scrubbed",
                    "dump with COPY (pg_dump's default: drop --inserts/--column-inserts)",
                )
            yield line
            continue
        body = line.rstrip("\n").removesuffix("\r")
        if body == "\\.":
            scrub, block = None, None
            yield line
            continue
        row = copy_decode(body)
        if block is not None and len(row) != len(block.columns):
            raise DataError(
                f"{source}:{number}: {len(row)} fields in COPY {block.table}, which has "
                f"{len(block.columns)} columns",
                "the dump is damaged or was edited by hand",
            )
        yield copy_encode(scrub(row)) + "\n"
    if scrub is not None and block is not None:
        raise DataError(
            f"{source}: the COPY block of {block.table} does not end (no \\. line)",
            "the dump is truncated",
        )


def read_dump_blocks(lines: Iterable[str], source: str) -> Iterator[tuple[CopyBlock, list[Value]]]:
    """Every row of every COPY block in a dump, with its block (for seeding and the proof)."""
    block: CopyBlock | None = None
    for number, line in enumerate(lines, 1):
        body = line.rstrip("\n").removesuffix("\r")
        if block is None:
            block = parse_head(body)
            if block is None and INSERT.match(body):
                raise DataError(
                    f"{source}:{number}: the dump holds data as INSERT statements, which are "
                    "not scrubbed",
                    "dump with COPY (pg_dump's default: drop --inserts/--column-inserts)",
                )
            continue
        if body == "\\.":
            block = None
            continue
        yield block, copy_decode(body)
