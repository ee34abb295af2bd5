"""Detectors of personal data inside free text: email addresses, phone numbers, card numbers
(Luhn-checked), IBANs (mod-97-checked) and IPv4 addresses.

`find(text)` lists the hits (kind, start, end) without overlaps; `replace(text, masks)` puts the
format-preserving mask of each hit in its place. Both are pure. The same detectors prove the
scrubbing afterwards (`data.unscrubbed-value`), so a masked card number is Luhn-valid and still
*detected*: the proof compares detected values against the originals, and flags detector hits only
where a column is not masked by a rule (see `trustproof.data.proof`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from trustproof.data.masks import Masks, iban_valid, luhn_valid

Detector = Literal["email", "phone", "card", "iban", "ipv4"]

EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
CARD = re.compile(r"(?<![\d\-])\d(?:[ \-]?\d){12,18}(?![\d\-])")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{2,5}(?:[ .\-]\d{2,8}){1,4}(?![\w\-])"
)
IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_DATEISH = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


@dataclass(frozen=True)
class Hit:
    kind: Detector
    start: int
    end: int


def _phone_like(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or _DATEISH.search(text):
        return False
    return text.startswith("+") or "(" in text or digits >= 9 or text.count("-") >= 2


def _candidates(text: str) -> Iterator[Hit]:
    for m in EMAIL.finditer(text):
        yield Hit("email", m.start(), m.end())
    for m in IBAN.finditer(text):
        if iban_valid(m[0]):
            yield Hit("iban", m.start(), m.end())
    for m in CARD.finditer(text):
        if luhn_valid(re.sub(r"\D", "", m[0])):
            yield Hit("card", m.start(), m.end())
    for m in IPV4.finditer(text):
        yield Hit("ipv4", m.start(), m.end())
    for m in PHONE.finditer(text):
        if _phone_like(m[0]):
            yield Hit("phone", m.start(), m.end())


def find(text: str) -> list[Hit]:
    """Non-overlapping hits, by position; where two overlap the earlier-listed kind wins (an
    email before a phone-like run of its digits, a card before a phone)."""
    if not any(ch.isdigit() or ch == "@" for ch in text):
        return []
    taken: list[Hit] = []
    for hit in _candidates(text):
        if all(hit.end <= t.start or hit.start >= t.end for t in taken):
            taken.append(hit)
    return sorted(taken, key=lambda h: h.start)


def mask_hit(kind: Detector, value: str, masks: Masks) -> str:
    if kind == "email":
        return masks.email(value)
    if kind == "card":
        return masks.card(value)
    if kind == "iban":
        return masks.iban(value)
    if kind == "phone":
        return masks.phone(value)
    digest = masks.key.digest("ipv4", value)
    return f"10.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


def replace(text: str, masks: Masks) -> str:
    """`text` with every detected hit replaced by its mask; text without hits is returned as is."""
    hits = find(text)
    if not hits:
        return text
    out, last = [], 0
    for hit in hits:
        out.append(text[last : hit.start])
        out.append(mask_hit(hit.kind, text[hit.start : hit.end], masks))
        last = hit.end
    out.append(text[last:])
    return "".join(out)
