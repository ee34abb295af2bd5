"""`--shard K/N` in a run: the slice of the plan this shard runs, and the plan's fingerprint.

Every shard generates the whole plan (the same spec, selection and backend give the same cases
everywhere), then keeps what `trustproof.shard` assigns to it: the cases by their ids, and the
scenarios and trust-chaos experiments by theirs, so that the shards together run everything a
full run would, each thing exactly once. The fingerprint names that whole plan — every case id
with its expectation, the selection, the scenario and chaos switches, the spec file's bytes and
trustproof's version — and is written into every run's ``results.json``; `trustproof report
merge` joins only shards whose fingerprints agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from trustproof import __version__
from trustproof.probes.model import Case
from trustproof.shard import Shard, fingerprint
from trustproof.spec.model import Spec

T = TypeVar("T")


def plan_fingerprint(
    spec: Spec,
    cases: Sequence[Case],
    *,
    select: Sequence[str] = (),
    deselect: Sequence[str] = (),
    scenarios: bool = True,
    chaos: bool = True,
) -> str:
    """The fingerprint of the whole (unsharded) plan `cases` was chosen into."""
    try:
        spec_text = hashlib.sha256(spec.path.read_bytes()).hexdigest()
    except OSError:  # a spec built in memory (tests): its cases still name the plan
        spec_text = "-"
    return fingerprint(
        [
            f"trustproof {__version__}",
            f"spec {spec_text}",
            f"select {sorted(select)} deselect {sorted(deselect)}",
            f"scenarios {scenarios} chaos {chaos and spec.chaos.enabled}",
            *(f"case {case.id} -> {case.expect.describe()}" for case in cases),
        ]
    )


def shard_cases(cases: Sequence[Case], shard: Shard | None) -> list[Case]:
    """The cases shard `shard` runs (all of them when not sharded), in plan order."""
    return [c for c in cases if shard is None or shard.owns(c.id)]


def shard_items(items: Sequence[T], ids: Sequence[str], shard: Shard | None) -> list[T]:
    """The scenarios or experiments (`items`, whose ids are `ids`) shard `shard` runs."""
    return [item for item, sid in zip(items, ids, strict=True) if shard is None or shard.owns(sid)]
