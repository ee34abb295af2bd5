"""Production-shaped test data, scrubbed: deterministic keyed masking (core: no sockets, no
processes; the only I/O is reading sample files).

* `keyed` — the masking key (from the environment variable the spec names) and its HMAC-SHA256;
* `masks` — format-preserving masks of one value: email, phone, card (Luhn), IBAN (mod-97), name
  and address (Faker seeded by the keyed hash), date shifts per entity, hash;
* `detect` — detectors of personal data in free text (email, phone, card, IBAN, IPv4);
* `rules` — the spec's per-column rules made ready for one table, and row scrubbing;
* `formats`, `dump` — CSV, JSON lines, COPY text and pg_dump plain files;
* `pipeline` — a sample in, the same format (or rows to seed) out;
* `samples` — the spec's samples read and scrubbed for seeding, with the run's key;
* `proof` — the evidence and search behind ``data.unscrubbed-value``;
* `errors` — `DataError`.
"""

from __future__ import annotations

from trustproof.data.errors import DataError
from trustproof.data.keyed import MaskingKey
from trustproof.data.masks import Masks
from trustproof.data.pipeline import Scrubber

__all__ = ["DataError", "MaskingKey", "Masks", "Scrubber"]
