"""Verifying (and decrypting) an audit log, no I/O: `verify(data, kek)` walks the chain and
names the first bad entry.

What it tells apart, at the first entry that does not fit:

* ``edited``      a line that does not parse, a record whose ciphertext no longer authenticates
                  at its place, or a line whose successor's chain hash no longer matches it;
* ``deleted``     entries missing (the numbers jump ahead and the missing ones are nowhere);
* ``reordered``   the expected entry is further down the file;
* ``inserted``    an entry numbered again (a replayed copy, or a record that does not
                  authenticate followed by the genuine one of that number), or anything after the
                  closing checkpoint;
* ``forged-checkpoint``  a checkpoint whose signature is not the log's, or whose record count
                  is not the chain's; with the KEK, also a header signing key that is not the one
                  derived from the log's data key;
* ``truncated``   the log ends without its closing checkpoint (also what a killed writer leaves:
                  `sealed_through` says how far checkpoints vouch for it), or with a cut line;
* ``header``      no usable header; ``wrong-key`` a KEK the log was not written with.

Without the KEK (`kek=None`) the chain and the checkpoint signatures are checked against the
header's own key, and nothing is decrypted: enough to catch edits, moves and cuts, not a whole
log rewritten under a new key — only the KEK's holder can rule that out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trustproof.audit import checkpoint, crypto
from trustproof.audit.chain import Entry, Header, digest, parse_entry, record_aad

TamperKind = Literal[
    "header",
    "wrong-key",
    "edited",
    "deleted",
    "reordered",
    "inserted",
    "truncated",
    "forged-checkpoint",
]


@dataclass(frozen=True)
class Problem:
    kind: TamperKind
    seq: int | None  # the first bad entry (None: the header or the whole file)
    line: int  # 1-based line of the file
    message: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "the header"
        return f"{self.kind}: {where} (line {self.line}): {self.message}"


@dataclass(frozen=True)
class Record:
    seq: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Verification:
    run: str = ""
    entries: int = 0
    records: int = 0
    checkpoints: int = 0
    sealed_through: int = 0  # the last entry a valid checkpoint vouches for
    sealed_records: int = 0
    closed: bool = False
    decrypted: bool = False
    problem: Problem | None = None
    contents: tuple[Record, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.problem is None


def split_lines(data: bytes) -> tuple[list[bytes], bool]:
    """The lines, and whether the last one was cut (no newline after it)."""
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    if not torn:
        lines.pop()
    return lines, torn


def verify(data: bytes, kek: bytes | None = None) -> Verification:
    lines, torn = split_lines(data)
    if not lines or not lines[0]:
        return Verification(problem=Problem("header", None, 1, "the file is empty"))
    try:
        header = Header.parse(lines[0])
    except ValueError as exc:
        return Verification(problem=Problem("header", None, 1, str(exc)))
    walk = _Walk(header, digest(lines[0]), kek)
    return walk.result(walk.keys() or walk.entries(lines[1:], torn))


class _Walk:
    def __init__(self, header: Header, header_digest: str, kek: bytes | None) -> None:
        self.header = header
        self.kek = kek
        self.cipher: crypto.RecordCipher | None = None
        self.prev = header_digest
        self.seq = self.records = self.checkpoints = 0
        self.sealed_through = self.sealed_records = 0
        self.closed = False
        self.contents: list[Record] = []

    def result(self, problem: Problem | None) -> Verification:
        return Verification(
            run=self.header.run,
            entries=self.seq,
            records=self.records,
            checkpoints=self.checkpoints,
            sealed_through=self.sealed_through,
            sealed_records=self.sealed_records,
            closed=self.closed,
            decrypted=self.cipher is not None,
            problem=problem,
            contents=tuple(self.contents),
        )

    def keys(self) -> Problem | None:
        if self.kek is None:
            return None
        if crypto.kek_id(self.kek) != self.header.kek_id:
            return Problem("wrong-key", None, 1, "the log was written under another KEK")
        try:
            data_key = crypto.unwrap(self.kek, self.header.data_key)
        except crypto.AuditKeyError:
            return Problem("header", None, 1, "the wrapped data key was changed")
        derived = crypto.public_bytes(crypto.signing_key(data_key).public_key())
        if derived != self.header.signing_key:
            return Problem(
                "forged-checkpoint",
                None,
                1,
                "the header's checkpoint key is not this log's: checkpoints signed with it "
                "are forgeries",
            )
        self.cipher = crypto.RecordCipher(data_key)
        return None

    def entries(self, lines: list[bytes], torn: bool) -> Problem | None:
        parsed: list[Entry | None] = []
        for line in lines:
            try:
                parsed.append(parse_entry(line))
            except ValueError:
                parsed.append(None)
        for index, entry in enumerate(parsed):
            line_no = index + 2
            if torn and index == len(parsed) - 1:
                return self._truncated(line_no, "its last line is cut short")
            problem = self._one(entry, lines[index], line_no, parsed[index + 1 :])
            if problem is not None:
                return problem
        if not self.closed:
            return self._truncated(len(lines) + 1, "it ends without its closing checkpoint")
        return None

    def _truncated(self, line: int, how: str) -> Problem:
        return Problem(
            "truncated",
            self.seq + 1,
            line,
            f"{how} (truncated, or the writer was killed): entries 1-{self.seq} are intact, "
            f"sealed by a checkpoint through entry {self.sealed_through} "
            f"({self.sealed_records} records)",
        )

    def _one(
        self, entry: Entry | None, raw: bytes, line: int, later: list[Entry | None]
    ) -> Problem | None:
        expected = self.seq + 1
        if self.closed:
            what = "an entry after the closing checkpoint"
            return Problem("inserted", expected, line, what)
        if entry is None:
            return Problem("edited", expected, line, "the line is not a well-formed entry")
        if entry.seq != expected:
            return _out_of_place(entry, expected, line, later)
        if entry.prev != self.prev:
            return Problem(
                "edited",
                expected - 1 if expected > 1 else None,
                line - 1,
                f"entry {expected}'s chain hash does not match the line before it: "
                "that line was changed",
            )
        problem = (
            self._record(entry, line, later) if entry.type == "r" else self._checkpoint(entry, line)
        )
        if problem is None:
            self.seq = expected
            self.prev = digest(raw)
        return problem

    def _record(self, entry: Entry, line: int, later: list[Entry | None]) -> Problem | None:
        if self.cipher is not None:
            aad = record_aad(self.header.run, entry.seq, entry.prev)
            clear = self.cipher.open(entry.nonce, entry.ciphertext, aad)
            if clear is None:
                again = bool(later) and later[0] is not None and later[0].seq == entry.seq
                kind: TamperKind = "inserted" if again else "edited"
                what = (
                    "an entry that is not the log's, before the genuine one"
                    if again
                    else ("the record does not authenticate: its content or place was changed")
                )
                return Problem(kind, entry.seq, line, what)
            try:
                data = json.loads(clear)
            except ValueError:
                return Problem("edited", entry.seq, line, "not a record inside")
            self.contents.append(Record(entry.seq, data if isinstance(data, dict) else {}))
        self.records += 1
        return None

    def _checkpoint(self, entry: Entry, line: int) -> Problem | None:
        signed = checkpoint.valid(
            self.header.signing_key, entry.signature, entry.seal(self.header.run)
        )
        if not signed:
            return Problem("forged-checkpoint", entry.seq, line, "the signature is not the log's")
        if entry.records != self.records:
            return Problem(
                "forged-checkpoint",
                entry.seq,
                line,
                f"it counts {entry.records} records where the chain has {self.records}",
            )
        self.checkpoints += 1
        self.sealed_through, self.sealed_records = entry.seq, self.records
        self.closed = entry.final
        return None


def _out_of_place(entry: Entry, expected: int, line: int, later: list[Entry | None]) -> Problem:
    if entry.seq < expected:
        return Problem(
            "inserted", entry.seq, line, f"entry {entry.seq} again where {expected} belongs"
        )
    for offset, other in enumerate(later):
        if other is not None and other.seq == expected:
            return Problem(
                "reordered",
                expected,
                line,
                f"entry {entry.seq} stands where {expected} belongs; {expected} is on line "
                f"{line + 1 + offset}",
            )
    missing = f"{expected}" if entry.seq == expected + 1 else f"{expected}-{entry.seq - 1}"
    return Problem("deleted", expected, line, f"entry {missing} missing before entry {entry.seq}")
