"""Which shard of a sharded run does what: `trustproof run --shard K/N` on N CI runners.

Sans-I/O and deterministic: a case (or a scenario, or a chaos experiment: anything with an id)
belongs to shard ``1 + H(id) mod N``, where H is the first eight bytes of the SHA-256 of the id's
UTF-8 text — not Python's `hash()`, which is salted per process, and not the id's position in
the plan, so that adding a case moves no other case from one shard to another, and every runner
computes the same split. Every id lands in exactly one shard; the shards are as balanced as a
hash spreads ids (a few percent apart on the shop's hundreds of cases; a handful of scenarios
can fall unevenly, and a shard may even get none).

`fingerprint` names the plan the shards were cut from (`trustproof report merge` refuses to join
shards whose fingerprints differ: different specs, selections or trustproof versions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustproof.errors import UsageError

__all__ = [
    "MAX_SHARDS",
    "Shard",
    "fingerprint",
    "parse",
    "select",
    "shard_from_json",
    "shard_of",
]

MAX_SHARDS = 1000
_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `total` (1 ≤ index ≤ total), as ``--shard K/N`` names it."""

    index: int
    total: int

    def __post_init__(self) -> None:
        check(self.index, self.total)

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def owns(self, item_id: str) -> bool:
        """Whether the case, scenario or experiment `item_id` runs in this shard."""
        return shard_of(item_id, self.total) == self.index

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "total": self.total}


def shard_of(item_id: str, total: int) -> int:
    """The shard (1-based) of `item_id` among `total` shards."""
    if total < 1:
        raise ValueError(f"a run has at least one shard, not {total}")
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % total


def select(case_ids: Iterable[str], k: int, n: int) -> list[str]:
    """The ids of `case_ids` that shard `k` of `n` runs, in their given order."""
    check(k, n)
    return [case_id for case_id in case_ids if shard_of(case_id, n) == k]


def check(k: int, n: int) -> None:
    """`UsageError` unless 1 ≤ k ≤ n ≤ `MAX_SHARDS`."""
    hint = "write --shard K/N with 1 <= K <= N, e.g. --shard 2/3 for the second of three runners"
    if n < 1:
        raise UsageError(f"shard {k}/{n}: a run has at least one shard", hint)
    if n > MAX_SHARDS:
        raise UsageError(f"shard {k}/{n}: at most {MAX_SHARDS} shards", hint)
    if not 1 <= k <= n:
        raise UsageError(f"shard {k}/{n}: K must be between 1 and {n} (shards count from 1)", hint)


def parse(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; anything else is a `UsageError` saying what is wrong."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise UsageError(
            f"shard {text!r} is not of the form K/N",
            "write --shard K/N with 1 <= K <= N, e.g. --shard 2/3 (in CI: the runner's index "
            "and the number of runners)",
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_json(raw: object) -> Shard | None:
    """A shard as JSON holds it (``{"index": K, "total": N}``; None: not sharded)."""
    if raw is None:
        return None
    values = raw if isinstance(raw, dict) else {}
    index, total = values.get("index"), values.get("total")
    if not (isinstance(index, int) and isinstance(total, int)) or bool in (
        type(index),
        type(total),
    ):
        raise UsageError(
            f"shard {str(raw)[:60]} is not {{'index': K, 'total': N}}",
            "ask for a shard as --shard K/N",
        )
    return Shard(int(str(index)), int(str(total)))


def fingerprint(parts: Iterable[str]) -> str:
    """``sha256:<hex>`` of `parts` (each length-prefixed, so no two lists of parts collide by
    where they split): what names one plan across shards."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return "sha256:" + digest.hexdigest()
