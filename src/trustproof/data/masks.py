"""Format-preserving masks of single values, each deterministic under the key.

    masks = Masks(key)
    masks.email("Jane.Doe+news@example.co.uk")   # 'Qmvx.Tbe+kqfr@wyzbrlh.co.uk' (same shape)
    masks.card("4111 1111 1111 1111")            # same length and spacing, Luhn-valid
    masks.iban("DE89 3704 0044 0532 0130 00")    # same country and length, check digits valid
    masks.phone("+1 (415) 555-0132")             # country code and punctuation kept
    masks.name("Jane Doe")                       # a realistic name (Faker's lists, by the hash)
    masks.shift_date("2021-03-04", entity="customers.id=42", days=365)

Every mask hashes under its own label and the value as found (so equal values mask equally in
every table, file and datastore); a mask never returns its input unchanged unless told to keep it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar, cast

from trustproof.data.keyed import DigitStream, MaskingKey

if TYPE_CHECKING:
    from faker import Faker
    from faker.providers import BaseProvider

NamePart = str  # "full" | "first" | "last"
AddressPart = str  # "full" | "street" | "city" | "postcode"

IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}  # fmt: skip
"""Lengths of the IBANs of SEPA countries (ISO 13616 registry); others are checked by mod-97."""

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


MEMO_LIMIT = 100_000
"""Masked values remembered per `Masks` (production data repeats names, cities, addresses); the
memo is emptied when full, so memory stays bounded."""
F = TypeVar("F", bound=Callable[..., str])


def _remembered(method: F) -> F:
    """Remember a mask's outputs by its arguments (masks are pure functions of key and input)."""

    @functools.wraps(method)
    def wrapper(self: Masks, value: str, *args: str) -> str:
        key = (method.__name__, value, *args)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = method(self, value, *args)
        return found

    return cast("F", wrapper)


@dataclass(frozen=True)
class _Words:
    """Faker's word lists for one locale, read once (drawing from them with our keyed stream is
    ~100 times faster than reseeding Faker for every value)."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]
    city_suffixes: tuple[str, ...]
    states: tuple[str, ...]

    @classmethod
    def of(cls, fake: Faker) -> _Words:
        providers = fake.get_providers()

        def words(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            for provider in providers:
                found = _attribute(provider, name)
                if found:
                    return found
            return default

        return cls(
            words("first_names", ("Alex", "Sam", "Robin", "Kim")),
            words("last_names", ("Smith", "Garcia", "Novak", "Tanaka")),
            words("street_suffixes", ("Street", "Road", "Avenue", "Lane")),
            words("city_suffixes", ("ton", "ville", "burg", "field")),
            words("states_abbr", ("NY", "CA", "TX", "WA")),
        )

    @staticmethod
    def pick(options: tuple[str, ...], stream: DigitStream) -> str:
        index = (stream.byte() << 16 | stream.byte() << 8 | stream.byte()) % len(options)
        return options[index]


def _attribute(provider: BaseProvider, name: str) -> tuple[str, ...]:
    value = getattr(provider, name, None)
    if isinstance(value, dict | tuple | list):
        return tuple(str(v) for v in value if isinstance(v, str) and v)
    return ()


def luhn_valid(digits: str) -> bool:
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += _DOUBLED[d] if i % 2 == 1 else d
    return total % 10 == 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` + digit Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):  # the check digit will be position 0
        d = ord(ch) - 48
        total += _DOUBLED[d] if i % 2 == 0 else d
    return str(-total % 10)


def iban_valid(text: str) -> bool:
    iban = re.sub(r"[ \-]", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban):
        return False
    if iban[:2] in IBAN_LENGTHS and len(iban) != IBAN_LENGTHS[iban[:2]]:
        return False
    return _mod97(iban[4:] + iban[:4]) == 1


def _mod97(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text)) % 97


class Masks:
    """The value masks under one key. Faker is loaded on the first name or address."""

    def __init__(self, key: MaskingKey, locale: str = "en_US") -> None:
        self.key = key
        self.locale = locale
        self._words: _Words | None = None
        self._memo: dict[tuple[str, ...], str] = {}

    # -- shape-keeping character masks ---------------------------------------------------------

    def _chars(self, text: str, stream: DigitStream) -> str:
        """Letters -> letters (case kept), digits -> digits, everything else kept."""
        fresh = iter(stream.digits(sum(ch.isascii() and ch.isdigit() for ch in text)))
        out = []
        for ch in text:
            if ch.isdigit() and ch.isascii():
                out.append(next(fresh))
            elif ch.isalpha():
                letter = stream.letter()
                out.append(letter.upper() if ch.isupper() else letter)
            else:
                out.append(ch)
        return "".join(out)

    @_remembered
    def email(self, value: str) -> str:
        """Local part and domain labels replaced character by character (letters, digits and
        punctuation where they were); the top-level domain kept. Case-insensitive: the same
        mailbox written in another case masks to the same mailbox."""
        local, at, domain = value.rpartition("@")
        if not at:
            return self.redact_like(value)
        stream = DigitStream(self.key, "email", value.lower())
        labels = domain.split(".")
        tld = labels[-1] if len(labels) > 1 else ""
        masked_labels = (
            [self._chars(label, stream) for label in labels[:-1]]
            if tld
            else [self._chars(domain, stream)]
        )
        masked_domain = ".".join([*masked_labels, tld]) if tld else masked_labels[0]
        return f"{self._chars(local, stream)}@{masked_domain}"

    def redact_like(self, value: str) -> str:
        """Any text, shape kept (letters, digits, punctuation where they were)."""
        return self._chars(value, DigitStream(self.key, "text", value))

    @_remembered
    def phone(self, value: str) -> str:
        """Digits replaced, punctuation kept; a leading ``+CC`` country code and a leading trunk
        ``0`` kept, and the first replaced digit stays 2-9 when it was (a valid area code)."""
        digits = re.sub(r"\D", "", value)
        keep = 0
        if (m := re.match(r"\+(\d{1,3})(?=\D)", value)) or (m := re.match(r"\+1", value)):
            keep = m.end()
        for attempt in range(8):
            stream = DigitStream(self.key, "phone", f"{digits}\x00{attempt}")
            out, seen, trunk = list(value[:keep]), 0, False
            for ch in value[keep:]:
                if not (ch.isdigit() and ch.isascii()):
                    out.append(ch)
                    continue
                if seen == 0 and ch == "0":
                    out.append("0")  # trunk prefix (0 20 7946 0958)
                    trunk = True
                elif seen == (1 if trunk else 0):
                    out.append(stream.digit(2) if ch >= "2" else ch)
                else:
                    out.append(stream.digit())
                seen += 1
            masked = "".join(out)
            if masked != value:
                return masked
        return self._chars(value, DigitStream(self.key, "phone-fallback", value))

    @_remembered
    def card(self, value: str) -> str:
        """Same length and separators, the first digit (the card network) kept, Luhn-valid."""
        digits = re.sub(r"\D", "", value)
        if len(digits) < 2:
            return self.redact_like(value)
        for attempt in range(8):
            stream = DigitStream(self.key, "card", f"{digits}\x00{attempt}")
            body = digits[0] + stream.digits(len(digits) - 2)
            new = body + luhn_check_digit(body)
            if new != digits:
                break
        out, it = [], iter(new)
        for ch in value:
            out.append(next(it) if ch.isdigit() and ch.isascii() else ch)
        return "".join(out)

    @_remembered
    def iban(self, value: str) -> str:
        """Same country, length and grouping; the BBAN's letters and digits replaced in place;
        check digits recomputed (ISO 13616 mod-97)."""
        compact = re.sub(r"[ \-]", "", value).upper()
        if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{1,30}", compact):
            return self.redact_like(value)
        country, bban = compact[:2], compact[4:]
        for attempt in range(8):
            stream = DigitStream(self.key, "iban", f"{compact}\x00{attempt}")
            new_bban = "".join(
                stream.digit() if ch.isdigit() else stream.letter().upper() for ch in bban
            )
            check = 98 - _mod97(new_bban + country + "00")
            new = f"{country}{check:02d}{new_bban}"
            if new != compact:
                break
        out, it = [], iter(new)
        for ch in value:
            if ch in " -":
                out.append(ch)
            else:
                nxt = next(it)
                out.append(nxt.lower() if ch.islower() else nxt)
        return "".join(out)

    # -- realistic replacements (Faker's word lists, picked by the keyed hash) -----------------

    def _lists(self) -> _Words:
        if self._words is None:
            from faker import Faker  # noqa: PLC0415 (a heavy import, only when names are masked)

            self._words = _Words.of(Faker(self.locale))
        return self._words

    @_remembered
    def name(self, value: str, part: NamePart = "full") -> str:
        """A realistic person's name (full, first or last), the same for the same name: first
        and last names from Faker's lists for the locale, picked by the keyed hash."""
        words = self._lists()
        for attempt in range(8):
            stream = DigitStream(self.key, f"name:{attempt}", value.strip().casefold())
            first, last = words.pick(words.first, stream), words.pick(words.last, stream)
            new = {"first": first, "last": last}.get(part, f"{first} {last}")
            if new.casefold() != value.strip().casefold():
                return new
        return self.redact_like(value)

    @_remembered
    def address(self, value: str, part: AddressPart = "full") -> str:
        """A realistic one-line postal address (or its street, city or postcode part)."""
        words = self._lists()
        stream = DigitStream(self.key, "address", value.strip().casefold())
        number = str(1 + int("".join(stream.digit() for _ in range(4))) % 9999)
        street = f"{number} {words.pick(words.last, stream)} {words.pick(words.streets, stream)}"
        city = words.pick(words.first, stream) + words.pick(words.city_suffixes, stream)
        postcode = "".join(stream.digit() for _ in range(5))
        state = words.pick(words.states, stream)
        parts = {"street": street, "city": city, "postcode": postcode}
        return parts.get(part, f"{street}, {city}, {state} {postcode}")

    # -- dates, hashes, redaction --------------------------------------------------------------

    def day_offset(self, entity: str, days: int) -> int:
        """A non-zero shift in [-days, days] for one entity (e.g. ``customers.id=42``)."""
        span = max(days, 1)
        n = self.key.number("date-shift", entity) % (2 * span)
        return n - span if n < span else n - span + 1

    def shift_date(self, value: str, *, entity: str, days: int) -> str:
        """Every ``YYYY-MM-DD`` in `value` moved by the entity's offset; time and zone kept."""
        offset = timedelta(days=self.day_offset(entity, days))

        def shifted(m: re.Match[str]) -> str:
            try:
                day = date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return self.redact_like(m[0])
            try:
                return (day + offset).isoformat()
            except OverflowError:
                return (day - offset).isoformat()

        out, count = _DATE.subn(shifted, value)
        return out if count else self.redact_like(value)

    def hash(self, value: str, length: int = 16) -> str:
        """Hex of the keyed hash (joins hold; the value cannot be recovered without the key)."""
        return self.key.digest("hash", value).hex()[: max(8, min(length, 64))]
