"""Detectors in free text: each kind found, look-alikes (dates, ids, versions) not."""

from __future__ import annotations

import pytest

from trustproof.data import detect
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import Masks

M = Masks(MaskingKey(b"unit-test-key-0123456789abcdef!!"))


@pytest.mark.parametrize(
    ("text", "kind", "found"),
    [
        ("mail jane.doe@example.com now", "email", "jane.doe@example.com"),
        ("call +44 20 7946 0958 today", "phone", "+44 20 7946 0958"),
        ("call (415) 555-0198", "phone", "(415) 555-0198"),
        ("on 07700 900123 after 6pm", "phone", "07700 900123"),
        ("card 4111-1111-1111-1111 declined", "card", "4111-1111-1111-1111"),
        ("to DE89 3704 0044 0532 0130 00;", "iban", "DE89 3704 0044 0532 0130 00"),
        ("from 81.2.69.160 at", "ipv4", "81.2.69.160"),
    ],
)
def test_each_detector_finds_its_kind(text: str, kind: str, found: str) -> None:
    hits = detect.find(text)
    assert [(h.kind, text[h.start : h.end]) for h in hits] == [(kind, found)]
    replaced = detect.replace(text, M)
    assert found not in replaced
    assert replaced == detect.replace(text, M)


@pytest.mark.parametrize(
    "text",
    [
        "shipped 2024-01-05 10:11:12",
        "order 12345 qty 3",
        "card 4111-1111-1111-1112 (not Luhn)",
        "IBAN DE00 3704 0044 0532 0130 00 (bad check digits)",
        "version 1.2.3.400",
        "",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert detect.find(text) == []
    assert detect.replace(text, M) == text
