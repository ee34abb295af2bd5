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
_CHUNK = 1000
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


def _norm(text: str) -> str:
    return text.strip().casefold()


@dataclass
class Evidence:
    originals: dict[str, str] = field(default_factory=dict)  # normalised value -> where from
    produced: set[str] = field(default_factory=set)
    _patterns: list[re.Pattern[str]] | None = None

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
        self._patterns = None

    def _original(self, value: str, where: str) -> None:
        key = _norm(value)
        if len(key) >= MIN_LENGTH:
            self.originals.setdefault(key, where)

    def _produce(self, value: str, *, whole: bool) -> None:
        if whole:
            self.produced.add(_norm(value))
        for hit in detect.find(value):
            self.produced.add(_norm(value[hit.start : hit.end]))

    def patterns(self) -> list[re.Pattern[str]]:
        if self._patterns is None:
            # Longest first, so a full address wins over a part of it.
            words = sorted(
                (k for k in self.originals if k not in self.produced), key=len, reverse=True
            )
            self._patterns = [
                re.compile("|".join(map(re.escape, words[i : i + _CHUNK])), re.IGNORECASE)
                for i in range(0, len(words), _CHUNK)
            ]
        return self._patterns

    def scan(self, text: str, where: str, *, detectors: bool) -> list[Finding]:
        found: list[Finding] = []
        spans: list[tuple[int, int]] = []
        for pattern in self.patterns():
            for m in pattern.finditer(text):
                source = self.originals.get(_norm(m[0]), "a sensitive column")
                found.append(Finding(where, f"an original value of {source}", shown(m[0])))
                spans.append(m.span())
        if detectors:
            for hit in detect.find(text):
                value = text[hit.start : hit.end]
                if any(a < hit.end and hit.start < b for a, b in spans):
                    continue
                if _norm(value) in self.produced or _harmless(hit.kind, value):
                    continue
                found.append(Finding(where, f"{_article(hit.kind)} (detector)", shown(value)))
        return found


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
