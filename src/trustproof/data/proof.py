"""Proof of scrubbing, the pure part: what must never be found after seeding, and the search.

`Evidence` is built while the samples are scrubbed: the *originals* (every value of a column a
rule masks, and every personal datum the detectors found in free text) and the *produced* values
(what the masks put in their place). Then:

* `scan(text, detectors=True)` for a datastore value: an original anywhere in it, or a detector
  hit (email, phone, card, IBAN, IPv4) that the masks did not produce (personal data that came
  from elsewhere: a hand-written seed, a service writing what it received);
* `scan(text, detectors=False)` for logs, reports and results: originals only (they hold
  addresses, ports and timestamps the detectors would take for phone numbers and IPs).

Dates moved by date-shift are not originals: a date is not unique to a person, and another
entity's shifted date may equal it. Values shorter than `MIN_LENGTH` are too common to mean
anything and are not searched either. Findings show values masked (`shown`), never as found.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from trustproof.data import detect
from trustproof.data.pipeline import ScrubbedTable
from trustproof.data.rules import TablePlan

MIN_LENGTH = 5
_WORD = re.compile(r"\S+")
_EDGE = "\"'()[]{}<>,;:.!?"
NOT_ORIGINALS = frozenset({"keep", "date-shift"})


@dataclass(frozen=True)
class Finding:
    where: str
    what: str  # "an original value of customers.email" | "an email address (detector)"
    shown: str  # the value, masked

    def describe(self) -> str:
        return f"{self.where}: {self.what} ({self.shown})"


def shown(value: str) -> str:
    """A found value as a message may show it: its first character, then letters as ``*`` and
    digits as ``#`` (punctuation kept), and its length."""
    body = "".join("#" if c.isdigit() else "*" if c.isalnum() else c for c in value[1:])
    return f"{value[:1]}{body} ({len(value)} chars)"


def _key(text: str) -> str:
    """A value as it is looked up: case-folded words, punctuation at their edges dropped."""
    return " ".join(w for w in (t.strip(_EDGE) for t in text.casefold().split()) if w)


@dataclass
class Evidence:
    """Originals are looked up by word n-grams (and detector hits) in a set, so a scan costs
    the same for six originals or six hundred thousand."""

    originals: dict[str, str] = field(default_factory=dict)  # lookup key -> where from
    produced: set[str] = field(default_factory=set)
    longest: int = 1  # words in the longest original

    def add(self, raw: ScrubbedTable, scrubbed: ScrubbedTable, plan: TablePlan) -> None:
        for before, after in zip(raw.rows, scrubbed.rows, strict=True):
            for i, (old, new) in enumerate(zip(before, after, strict=True)):
                kind = plan.kinds[i]
                where = f"{raw.table}.{raw.columns[i]}"
                if new is not None:
                    self._produce(new, whole=kind is not None)
                if old is None or kind in NOT_ORIGINALS:
                    continue
                if kind is not None:
                    self._original(old, where)
                else:
                    for hit in detect.find(old):
                        self._original(old[hit.start : hit.end], where)

    def _original(self, value: str, where: str) -> None:
        key = _key(value)
        if len(key) >= MIN_LENGTH:
            self.originals.setdefault(key, where)
            self.longest = max(self.longest, key.count(" ") + 1)

    def _produce(self, value: str, *, whole: bool) -> None:
        if whole:
            self.produced.add(_key(value))
        for hit in detect.find(value):
            self.produced.add(_key(value[hit.start : hit.end]))

    def _is_original(self, key: str) -> bool:
        return key in self.originals and key not in self.produced

    def scan(self, text: str, where: str, *, detectors: bool) -> list[Finding]:
        found: list[Finding] = []
        spans: list[tuple[int, int]] = []
        words = [  # (start, end) of each word without its edge punctuation, and its key
            (
                m.start() + len(m[0]) - len(m[0].lstrip(_EDGE)),
                m.end() - len(m[0]) + len(m[0].rstrip(_EDGE)),
                w,
            )
            for m in _WORD.finditer(text)
            if (w := m[0].casefold().strip(_EDGE))
        ]
        i = 0
        while i < len(words):
            for n in range(min(self.longest, len(words) - i), 0, -1):
                key = " ".join(w for _, _, w in words[i : i + n])
                if self._is_original(key):
                    span = (words[i][0], words[i + n - 1][1])
                    spans.append(span)
                    found.append(self._finding(where, key, text[span[0] : span[1]]))
                    i += n - 1
                    break
            i += 1
        for hit in detect.find(text):
            if any(a < hit.end and hit.start < b for a, b in spans):
                continue
            value = text[hit.start : hit.end]
            key = _key(value)
            if self._is_original(key):
                found.append(self._finding(where, key, value))
            elif detectors and key not in self.produced and not _harmless(hit.kind, value):
                found.append(Finding(where, f"{_article(hit.kind)} (detector)", shown(value)))
        return found

    def _finding(self, where: str, key: str, value: str) -> Finding:
        return Finding(where, f"an original value of {self.originals[key]}", shown(value))


def _harmless(kind: str, value: str) -> bool:
    """Detector hits that are not personal: loopback, private and documentation addresses."""
    if kind != "ipv4":
        return False
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def _article(kind: str) -> str:
    return {
        "email": "an email address",
        "phone": "a phone number",
        "card": "a card number",
        "iban": "an IBAN",
        "ipv4": "an IPv4 address",
    }.get(kind, kind)
