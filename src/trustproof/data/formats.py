"""Reading and writing samples as tables of text values (pure: text in, text out).

* CSV: a header row, then one row per line (RFC 4180 quoting); an empty field is NULL;
* JSON lines: one object per line; columns in order of first appearance; a missing key is NULL;
* COPY text: PostgreSQL's ``COPY ... TO STDOUT`` format (tab-separated, ``\\N`` for NULL,
  backslash escapes), as `copy_decode`/`copy_encode` of one line;
* a pg_dump plain file: its ``COPY table (columns) FROM stdin;`` blocks (`trustproof.data.dump`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustproof.data.errors import DataError

Value = str | None
JsonValue = Any

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_UNESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_ENCODE = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
           "\v": "\\v"}  # fmt: skip
_NEEDS = re.compile(r"[\\\b\f\n\r\t\v]")


@dataclass
class Table:
    """A sample's columns and rows, as text (None: NULL)."""

    columns: tuple[str, ...]
    rows: list[list[Value]] = field(default_factory=list)


def read_csv(text: str, source: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(
            f"{source}: the CSV file is empty", "a CSV sample starts with a header row"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{source}:1: not CSV ({exc})", "check the file's quoting") from None
    columns = tuple(h.strip() for h in header)
    if len(set(columns)) != len(columns) or not all(columns):
        raise DataError(
            f"{source}:1: the header has empty or repeated column names",
            "name every column once",
        )
    table = Table(columns)
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != len(columns):
                raise DataError(
                    f"{source}:{reader.line_num}: {len(row)} fields, the header has {len(columns)}",
                    "every row needs one field per column",
                )
            table.rows.append([v if v != "" else None for v in row])
    except csv.Error as exc:
        raise DataError(
            f"{source}:{reader.line_num}: not CSV ({exc})", "check the file's quoting"
        ) from None
    return table


def write_csv(table: Table) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([["" if v is None else v for v in row] for row in table.rows])
    return out.getvalue()


def read_jsonl(text: str, source: str) -> tuple[tuple[str, ...], list[dict[str, JsonValue]]]:
    """The objects of a JSON-lines file and the union of their keys (first-seen order)."""
    columns: dict[str, None] = {}
    objects: list[dict[str, JsonValue]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{source}:{number}: not JSON ({exc.msg} at column {exc.colno})",
                "a JSON-lines sample has one JSON object per line",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{source}:{number}: a JSON {type(value).__name__}, not an object",
                "a JSON-lines sample has one JSON object per line",
            )
        for key in value:
            columns.setdefault(key, None)
        objects.append(value)
    return tuple(columns), objects


def write_jsonl(objects: Iterable[dict[str, JsonValue]]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n" for o in objects)


def _unescape(m: re.Match[str]) -> str:
    code = m[1]
    if code[0] == "x" and len(code) > 1:
        return chr(int(code[1:], 16))
    if code[0] in "01234567":
        return chr(int(code, 8))
    return _ESCAPES.get(code, code)


def copy_decode(line: str) -> list[Value]:
    """One line of COPY text data (without its newline) -> its fields."""
    return [None if f == "\\N" else _UNESCAPE.sub(_unescape, f) for f in line.split("\t")]


def copy_encode(row: Sequence[Value]) -> str:
    """Fields -> one line of COPY text data (without its newline)."""
    return "\t".join("\\N" if v is None else _NEEDS.sub(lambda m: _ENCODE[m[0]], v) for v in row)


def read_copy(text: str, columns: Sequence[str], source: str) -> Table:
    if not columns:
        raise DataError(
            f"{source}: a COPY sample has no header",
            "list its columns in the sample's `columns:` (or use --columns)",
        )
    table = Table(tuple(columns))
    for number, line in enumerate(_lines(text), 1):
        if line == "\\.":
            break
        row = copy_decode(line)
        if len(row) != len(columns):
            raise DataError(
                f"{source}:{number}: {len(row)} fields, {len(columns)} columns were given",
                "COPY text data has one tab-separated field per column",
            )
        table.rows.append(row)
    return table


def write_copy(table: Table) -> str:
    return "".join(copy_encode(row) + "\n" for row in table.rows)


def _lines(text: str) -> Iterator[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        yield line[:-1] if line.endswith("\r") else line
