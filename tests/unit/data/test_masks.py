"""Masking: deterministic under a key, different under another, format kept (Luhn, mod-97,
shapes), and never the input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustproof.data.errors import DataError
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import Masks, iban_valid, luhn_check_digit, luhn_valid

KEY = MaskingKey(b"unit-test-key-0123456789abcdef!!")
OTHER = MaskingKey(b"another-test-key-0123456789abcd!")
M, M2 = Masks(KEY), Masks(OTHER)

local = st.from_regex(r"[a-z][a-z0-9._+\-]{2,20}[a-z0-9]", fullmatch=True)
domain = st.from_regex(r"[a-z][a-z0-9\-]{1,15}\.(com|org|co\.uk|de)", fullmatch=True)
emails = st.builds(lambda a, b: f"{a}@{b}", local, domain)


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([13, 15, 16, 19]))
    body = str(draw(st.integers(1, 9))) + "".join(
        str(draw(st.integers(0, 9))) for _ in range(length - 2)
    )
    number = body + luhn_check_digit(body)
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, length = draw(st.sampled_from([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18)]))
    alphabet = "0123456789" if country == "DE" else "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    bban = "".join(draw(st.sampled_from(alphabet)) for _ in range(length - 4))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


phones = st.from_regex(r"\+(1|44|49) \(?[0-9]{3}\)? [0-9]{3}[- ][0-9]{4}", fullmatch=True)


def shape(text: str) -> str:
    return re.sub(r"[a-z]", "a", re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", text)))


@given(emails)
def test_email_keeps_shape_and_tld_and_is_deterministic(value: str) -> None:
    masked = M.email(value)
    assert masked == M.email(value) == M.email(value.upper()).lower()
    assert masked != value
    assert masked != M2.email(value)
    assert shape(masked) == shape(value)
    assert masked.rsplit(".", 1)[1] == value.rsplit(".", 1)[1]


@given(cards())
def test_card_is_luhn_valid_same_length_same_network(value: str) -> None:
    masked = M.card(value)
    digits, before = re.sub(r"\D", "", masked), re.sub(r"\D", "", value)
    assert luhn_valid(digits)
    assert len(digits) == len(before)
    assert digits[0] == before[0]
    assert shape(masked) == shape(value)
    assert digits != before
    assert masked == M.card(value) != M2.card(value)


@given(ibans())
def test_iban_is_valid_same_country_and_length(value: str) -> None:
    assert iban_valid(value)
    masked = M.iban(value)
    assert iban_valid(masked)
    assert masked[:2] == value[:2]
    assert shape(masked) == shape(value)
    assert masked != value
    assert masked == M.iban(value) != M2.iban(value)


@given(phones)
def test_phone_keeps_country_code_and_punctuation(value: str) -> None:
    masked = M.phone(value)
    assert shape(masked) == shape(value)
    assert masked != value
    assert masked.split(" ")[0] == value.split(" ", maxsplit=1)[0]
    assert masked == M.phone(value) != M2.phone(value)


@settings(max_examples=settings.default.max_examples // 4, deadline=None)
@given(st.text(alphabet=st.characters(categories=["L"]), min_size=3, max_size=30))
def test_names_are_deterministic_and_replaced(value: str) -> None:
    masked = M.name(value)
    assert masked == M.name(value)
    assert masked.casefold() != value.strip().casefold()
    assert M.name(value, "first") == M.name(value, "first")


def test_a_name_masks_the_same_in_any_table_and_any_scrubber() -> None:
    assert (
        Masks(KEY).name("Jane Doe") == Masks(KEY).name("Jane Doe") != Masks(OTHER).name("Jane Doe")
    )
    assert len(M.address("1 Main St").split(",")) >= 2


@settings(max_examples=settings.default.max_examples // 2, deadline=None)
@given(st.dates(), st.integers(1, 10_000))
def test_dates_of_one_entity_move_together(day: object, entity: int) -> None:
    a = M.shift_date(f"{day}", entity=f"customers.id={entity}", days=30)
    b = M.shift_date(f"{day}T10:11:12+00:00", entity=f"customers.id={entity}", days=30)
    assert b == f"{a}T10:11:12+00:00"
    offset = M.day_offset(f"customers.id={entity}", 30)
    assert offset != 0
    assert -30 <= offset <= 30


def test_hash_is_keyed_hex() -> None:
    assert M.hash("42") == M.hash("42") != M2.hash("42")
    assert re.fullmatch(r"[0-9a-f]{16}", M.hash("42"))


def test_the_key_is_required_and_never_shown() -> None:
    with pytest.raises(DataError, match="SHOP_KEY is not set"):
        MaskingKey.from_env("SHOP_KEY", {})
    with pytest.raises(DataError, match="at least 16"):
        MaskingKey(b"short")
    secret = "a-very-secret-masking-key-value-1234"
    key = MaskingKey.from_env("K", {"K": secret})
    assert secret not in repr(key)
    assert "fingerprint" in repr(key)
