"""The scrubbing pipeline: a sample file in, the same format out (or rows to seed), scrubbed.

    scrubber = Scrubber(rules, MaskingKey.from_env("SHOP_DATA_KEY"))
    out_text = scrubber.scrub_text(in_text, "csv", table="customers", source="customers.csv")
    for table in scrubber.scrub_sample(spec, sample):    # rows to seed, by table
        ...

Pure (text in, text out); reading the files is the caller's (`trustproof.data.samples`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustproof.data import formats
from trustproof.data.dump import CopyBlock, read_dump_blocks, scrub_dump
from trustproof.data.errors import DataError
from trustproof.data.formats import Table, Value
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import Masks
from trustproof.data.rules import TablePlan, bare, free_text
from trustproof.spec.data import DataRule, SampleFormat


@dataclass(frozen=True)
class ScrubbedTable:
    """Rows ready to seed into `table` (its columns in order)."""

    table: str
    columns: tuple[str, ...]
    rows: list[list[Value]]


class Scrubber:
    def __init__(self, rules: Mapping[str, DataRule], key: MaskingKey) -> None:
        self.rules = rules
        self.masks = Masks(key)
        self._free = free_text(self.masks)
        self._plans: dict[tuple[str, tuple[str, ...]], TablePlan] = {}

    def plan(self, table: str, columns: Sequence[str]) -> TablePlan:
        cache = (bare(table), tuple(columns))
        plan = self._plans.get(cache)
        if plan is None:
            plan = self._plans[cache] = TablePlan.build(table, columns, self.rules, self.masks)
        return plan

    def scrub_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Value]]
    ) -> list[list[Value]]:
        plan = self.plan(table, columns)
        return [plan.scrub_row(row, self._free) for row in rows]

    def scrub_table(self, table: str, data: Table) -> Table:
        return Table(data.columns, self.scrub_rows(table, data.columns, data.rows))

    def scrub_objects(
        self, table: str, columns: Sequence[str], objects: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """JSON objects scrubbed; non-text values stay as they are unless a rule masks the
        column (then their text is masked and written as a string)."""
        plan = self.plan(table, columns)
        out = []
        for obj in objects:
            text_row: list[Value] = [_text(obj.get(c)) for c in columns]
            scrubbed = plan.scrub_row(text_row, self._free)
            new: dict[str, Any] = {}
            for index, column in enumerate(columns):
                if column not in obj:
                    continue
                original = obj[column]
                masked = plan.masks[index] is not None and scrubbed[index] != text_row[index]
                if isinstance(original, str) or masked:
                    new[column] = scrubbed[index]
                else:
                    new[column] = original
            out.append(new)
        return out

    def scrub_text(
        self,
        text: str,
        fmt: SampleFormat,
        *,
        table: str | None,
        columns: Sequence[str] = (),
        source: str,
    ) -> str:
        """A whole sample in format `fmt`, scrubbed, in the same format."""
        if fmt == "pg-dump":
            lines = text.splitlines(keepends=True)
            return "".join(scrub_dump(lines, self._block_scrubber, source))
        name = _needs_table(table, fmt, source)
        if fmt == "csv":
            return formats.write_csv(self.scrub_table(name, formats.read_csv(text, source)))
        if fmt == "jsonl":
            cols, objects = formats.read_jsonl(text, source)
            return formats.write_jsonl(self.scrub_objects(name, cols, objects))
        data = formats.read_copy(text, columns, source)
        return formats.write_copy(self.scrub_table(name, data))

    def _block_scrubber(self, block: CopyBlock) -> Any:
        plan = self.plan(block.table, block.columns)
        return lambda row: plan.scrub_row(row, self._free)

    def scrub_sample(
        self,
        text: str,
        fmt: SampleFormat,
        *,
        table: str | None,
        columns: Sequence[str] = (),
        source: str,
    ) -> list[ScrubbedTable]:
        """The scrubbed rows of a sample, by table, for seeding."""
        return [
            ScrubbedTable(t.table, t.columns, self.scrub_rows(t.table, t.columns, t.rows))
            for t in parse_sample(text, fmt, table=table, columns=columns, source=source)
        ]


def parse_sample(
    text: str, fmt: SampleFormat, *, table: str | None, columns: Sequence[str] = (), source: str
) -> list[ScrubbedTable]:
    """The sample's rows as found (unscrubbed), by table, as text values."""
    if fmt == "pg-dump":
        tables: dict[tuple[str, tuple[str, ...]], list[list[Value]]] = {}
        for block, row in read_dump_blocks(text.splitlines(), source):
            tables.setdefault((bare(block.table), block.columns), []).append(row)
        return [ScrubbedTable(t, c, rows) for (t, c), rows in tables.items()]
    name = _needs_table(table, fmt, source)
    if fmt == "csv":
        data = formats.read_csv(text, source)
    elif fmt == "jsonl":
        cols, objects = formats.read_jsonl(text, source)
        data = Table(cols, [[_text(o.get(c)) for c in cols] for o in objects])
    else:
        data = formats.read_copy(text, columns, source)
    return [ScrubbedTable(bare(name), data.columns, data.rows)]


def _needs_table(table: str | None, fmt: str, source: str) -> str:
    if not table:
        raise DataError(
            f"{source}: a {fmt} sample needs the table it belongs to",
            "give the sample a `table:` (or --table on the command line)",
        )
    return table


def _text(value: Any) -> Value:
    """A JSON value as the text PostgreSQL would read: NULL, strings as they are, true/false,
    numbers; nested arrays and objects as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
